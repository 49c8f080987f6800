import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { denoise, preconditioning } from "../diffusion/edm.ts";
import { referenceTrainOptions } from "../diffusion/settings.ts";
import { learningRateAt, trainDenoiser } from "../diffusion/train.ts";
import {
  conv1dSame,
  initUNetParams,
  parameterCount,
  setConvolutionPath,
  type UNetConfig,
  unetForward,
  validateUNetConfig,
} from "../diffusion/unet1d.ts";

await initCompute("wasm");

function randomArray(size: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: size }, () => rng.normal());
}

const trainOptions = referenceTrainOptions(150, 16, {
  validationPoints: 3,
  validationWindows: 64,
});

Deno.test("conv1d as slices and a matrix product equals TF.js conv1d, values and gradients", () => {
  const both = (kernel: number, path: "slices" | "conv1d") =>
    tf.tidy(() => {
      setConvolutionPath(path);
      const x = tf.tensor3d(randomArray(2 * 8 * 5, 1), [2, 8, 5]);
      const weight = tf.tensor3d(randomArray(kernel * 5 * 6, 2), [kernel, 5, 6]);
      const bias = tf.tensor1d(randomArray(6, 3));
      const upstream = tf.tensor3d(randomArray(2 * 8 * 6, 4), [2, 8, 6]);
      const f = (a: tf.Tensor, w: tf.Tensor) =>
        tf.sum(tf.mul(conv1dSame(a as tf.Tensor3D, w as tf.Tensor3D, bias), upstream));
      const [gradX, gradW] = tf.grads(f)([x, weight]);
      return [conv1dSame(x, weight, bias), gradX, gradW].map((t) => t.dataSync());
    });
  try {
    for (const kernel of [1, 2, 3]) {
      const slices = both(kernel, "slices");
      const reference = both(kernel, "conv1d");
      slices.forEach((values, part) =>
        values.forEach((v, i) =>
          assert.ok(
            Math.abs(v - reference[part][i]) < 1e-3,
            `kernel ${kernel}, part ${part}, entry ${i}`,
          )
        )
      );
    }
  } finally {
    setConvolutionPath("auto");
  }
});

Deno.test("the U-Net has the paper's size at Table 3 and keeps the window's shape", () => {
  // Table 3's U-Net (features 1024, three levels) has about 178M parameters
  // for a locomotion row of 23 entries (docs/algorithm.md, "The U-Net").
  const paper = parameterCount({
    rowWidth: 23,
    features: 1024,
    numBlocks: 3,
    trajectoryLength: 16,
  });
  assert.ok(paper > 170e6 && paper < 185e6, `${paper} parameters`);
  const config: UNetConfig = { rowWidth: 7, features: 16, numBlocks: 3, trajectoryLength: 16 };
  const params = initUNetParams(config, 1);
  const before = tf.memory().numTensors;
  const out = tf.tidy(() =>
    unetForward(
      config,
      params,
      tf.tensor3d(randomArray(3 * 16 * 7, 4), [3, 16, 7]),
      tf.tensor1d([0, 0.5, -1]),
    )
  );
  assert.deepEqual(out.shape, [3, 16, 7]);
  assert.ok(out.dataSync().every(Number.isFinite));
  out.dispose();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose(Object.values(params));
  assert.throws(
    () => validateUNetConfig({ ...config, trajectoryLength: 10 }),
    /divisible by 2\^\(numBlocks−1\) = 4/,
  );
  assert.throws(() => validateUNetConfig({ ...config, features: 12 }), /multiple of 8/);
});

Deno.test("EDM preconditioning: σ → 0 passes the input through, σ_data = 1 values at σ = 1", () => {
  const small = preconditioning(1e-4);
  assert.ok(Math.abs(small.cSkip - 1) < 1e-7 && small.cOut < 2e-4);
  const one = preconditioning(1);
  assert.ok(Math.abs(one.cSkip - 0.5) < 1e-12);
  assert.ok(Math.abs(one.cOut - Math.SQRT1_2) < 1e-12);
  assert.ok(Math.abs(one.cIn - Math.SQRT1_2) < 1e-12);
  assert.equal(one.cNoise, 0);
  const config: UNetConfig = { rowWidth: 3, features: 8, numBlocks: 1, trajectoryLength: 4 };
  const params = initUNetParams(config, 2);
  tf.tidy(() => {
    const x = tf.tensor3d(randomArray(12, 5), [1, 4, 3]);
    const denoised = denoise(config, params, x, tf.tensor1d([1e-5])).dataSync();
    const input = x.dataSync();
    denoised.forEach((v, i) => assert.ok(Math.abs(v - input[i]) < 1e-3));
  });
  tf.dispose(Object.values(params));
});

Deno.test("learning rate warms up from 0.1× to the peak over 10% of steps, then decays to 0", () => {
  assert.ok(Math.abs(learningRateAt(0, 100, trainOptions) - 2e-4) < 1e-12);
  assert.ok(Math.abs(learningRateAt(10, 100, trainOptions) - 2e-3) < 1e-12);
  assert.ok(learningRateAt(55, 100, trainOptions) < 2e-3);
  assert.ok(learningRateAt(100, 100, trainOptions) < 1e-12);
  assert.equal(learningRateAt(0, 100, { ...trainOptions, learningRateSchedule: "cosine" }), 2e-3);
});

/**
 * `count` windows of 8 steps × 4 channels of a smooth signal with per-window
 * phase and amplitude: learnable structure.
 */
function sineWindows(rng: Rng, count: number): Float32Array {
  const out = new Float32Array(count * 8 * 4);
  for (let w = 0; w < count; w++) {
    const phase = rng.range(0, 2 * Math.PI);
    const amplitude = rng.range(0.5, 1.5);
    for (let t = 0; t < 8; t++) {
      for (let c = 0; c < 4; c++) {
        out[(w * 8 + t) * 4 + c] = amplitude * Math.sin(phase + 0.4 * t + c);
      }
    }
  }
  return out;
}

Deno.test("training: the held-out validation loss falls and no tensor is left behind", () => {
  const config: UNetConfig = { rowWidth: 4, features: 16, numBlocks: 2, trajectoryLength: 8 };
  const rng = new Rng(7);
  const makeWindows = (count: number) => sineWindows(rng, count);
  const before = tf.memory().numTensors;
  const trained = trainDenoiser(config, makeWindows(512), makeWindows(64), trainOptions, 3);
  const first = trained.history[0].validationLoss;
  const last = trained.history[trained.history.length - 1].validationLoss;
  assert.ok(last < 0.7 * first, `validation loss ${first} → ${last}`);
  assert.equal(trained.history[trained.history.length - 1].step, trainOptions.trainingSteps);
  tf.dispose(Object.values(trained.params));
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("per-step GroupNorm: each time step normalised as a window of its own; it trains", () => {
  const before = tf.memory().numTensors;
  const forward = (config: UNetConfig, batch: number) => {
    const params = initUNetParams(config, 2);
    const size = batch * config.trajectoryLength * config.rowWidth;
    const out = tf.tidy(() =>
      unetForward(
        config,
        params,
        tf.tensor3d(randomArray(size, 5), [batch, config.trajectoryLength, config.rowWidth]),
        tf.tensor1d(randomArray(batch, 6)),
      ).dataSync()
    );
    tf.dispose(Object.values(params));
    return out;
  };
  // A window of one step: the two normalisations are the same computation.
  const single: UNetConfig = { rowWidth: 5, features: 16, numBlocks: 1, trajectoryLength: 1 };
  assert.deepEqual(forward({ ...single, normPerStep: true }, 3), forward(single, 3));
  // Longer windows: statistics per step differ from statistics over the window.
  const longer: UNetConfig = { rowWidth: 5, features: 16, numBlocks: 2, trajectoryLength: 8 };
  const perStep = forward({ ...longer, normPerStep: true }, 3);
  const perWindow = forward(longer, 3);
  assert.ok(perStep.every(Number.isFinite));
  assert.notDeepEqual(perStep, perWindow);
  assert.equal(tf.memory().numTensors, before);

  // The sine windows of the training test above. With features 16 a group holds two channels, so
  // per-step statistics are coarse: it learns, more slowly (150 steps: 1.06 → 0.87, per window 0.68).
  const rng = new Rng(7);
  const windows = (count: number) => sineWindows(rng, count);
  const trained = trainDenoiser(
    { rowWidth: 4, features: 16, numBlocks: 2, trajectoryLength: 8, normPerStep: true },
    windows(512),
    windows(64),
    trainOptions,
    3,
  );
  const first = trained.history[0].validationLoss;
  const last = trained.history[trained.history.length - 1].validationLoss;
  assert.ok(last < 0.85 * first, `validation loss ${first} → ${last}`);
  tf.dispose(Object.values(trained.params));
  assert.equal(tf.memory().numTensors, before);
});
