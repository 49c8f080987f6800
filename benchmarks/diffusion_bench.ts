/**
 * Cost of trajectory diffusion at the sizes of
 * `shared/anchors/torch_unet_step.py` (batch 32, length 16, 25 channels,
 * 3 levels): one denoiser training step (forward, backward, Adam) at
 * features 64 and 128, and one sampling step (Heun + churn) of 256 windows at
 * features 64, with and without policy guidance (guidance adds one denoiser
 * pass at the clean estimate and the policy's Gaussian).
 *
 * Compare with the anchor in the same sitting:
 * `/usr/bin/python3 shared/anchors/torch_unet_step.py 64 32 16 25` (and 128).
 */
import { initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import type { PolicyView } from "../core/types.ts";
import { denoise } from "../diffusion/edm.ts";
import { policyGuidance } from "../diffusion/guidance.ts";
import { type DenoiserFn, noiseLevels, samplerStep, table4Sampler } from "../diffusion/sampler.ts";
import { DenoiserTrainer, type TrainOptions } from "../diffusion/train.ts";
import { initUNetParams, type UNetConfig } from "../diffusion/unet1d.ts";
import { rowLayout } from "../diffusion/windows.ts";

const info = await initCompute("wasm");
console.log(`compute: ${info.path}`);

const batchSize = 32;
const trajectoryLength = 16;
const layout = rowLayout(17, 6); // 25 channels, as HalfCheetah's rows
const rng = new Rng(0);
const normals = (size: number) => Float32Array.from({ length: size }, () => rng.normal());
const windowSize = trajectoryLength * layout.rowWidth;

const trainOptions: TrainOptions = {
  trainingSteps: 1_000_000,
  batchSize,
  learningRate: 2e-3,
  learningRateSchedule: "warmup-cosine",
  warmupFraction: 0.1,
  warmupStartFactor: 0.1,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  emaDecay: 0.995,
  emaEvery: 10,
  logSigmaMean: -1.2,
  logSigmaStd: 1.2,
  validationPoints: 1,
  validationWindows: 32,
};

for (const features of [64, 128]) {
  const config: UNetConfig = {
    rowWidth: layout.rowWidth,
    features,
    numBlocks: 3,
    trajectoryLength,
  };
  const trainer = new DenoiserTrainer(
    config,
    normals(256 * windowSize),
    normals(32 * windowSize),
    trainOptions,
    features,
  );
  Deno.bench(
    `denoiser train step: features ${features}, batch 32, length 16, 25 channels`,
    { group: "train step" },
    () => {
      trainer.step();
    },
  );
}

const samplingWindows = 256;
const config: UNetConfig = {
  rowWidth: layout.rowWidth,
  features: 64,
  numBlocks: 3,
  trajectoryLength,
};
const params = initUNetParams(config, 1);
const denoiser: DenoiserFn = (noisy, sigma) =>
  denoise(config, params, noisy, tf.fill([noisy.shape[0]], sigma) as tf.Tensor1D);
const policy: PolicyView = {
  actionDistribution(observations, count) {
    const mean = new Float32Array(count * 6);
    for (let i = 0; i < mean.length; i++) mean[i] = Math.tanh(observations[(i % count) * 17]);
    return { mean, std: new Float32Array(count * 6).fill(1) };
  },
};
const stats = {
  mean: new Float32Array(layout.rowWidth),
  std: new Float32Array(layout.rowWidth).fill(1),
};
const sampler = table4Sampler;
const levels = noiseLevels(sampler);
const guidance = policyGuidance(
  policy,
  layout,
  stats,
  denoiser,
  { strength: 1, schedule: "cosine", cosineWeight: 0.3, atDenoisedEstimate: true, normalize: true },
  sampler.sigmaMax,
);
// A mid-trajectory step: churn on, Heun's correction on.
const stepIndex = 100;
const sample = tf.mul(
  tf.tensor3d(normals(samplingWindows * windowSize), [
    samplingWindows,
    trajectoryLength,
    layout.rowWidth,
  ]),
  levels[stepIndex],
) as tf.Tensor3D;

Deno.bench(
  "sampling step, unguided: 256 windows, features 64",
  { group: "sampling step", baseline: true },
  () => {
    samplerStep(denoiser, sample, levels, stepIndex, sampler, 1).dispose();
  },
);

Deno.bench(
  "sampling step, policy-guided: 256 windows, features 64",
  { group: "sampling step" },
  () => {
    samplerStep(denoiser, sample, levels, stepIndex, sampler, 1, guidance).dispose();
  },
);
