/**
 * Compute paths side by side: native BLAS (`blas`), pure wasm (`wasm`) and
 * TF.js as shipped (`shipped`), switched inside one process, against PyTorch
 * anchors run in the same sitting (ratios from one sitting compare; absolute
 * times from different runs do not).
 *
 * Every training bench runs the product's own code at the anchors' sizes:
 * the TD3+BC and IQL agents' `update` (observation 17, action 6, batch 256,
 * 256-256 networks; TD3+BC moves its actor and targets every second update,
 * as the anchor does), the denoiser's training step (diffusion/train.ts:
 * U-Net widths F, 2F, 4F, batch 32, length 16, 25 channels) at F = 64 and
 * 128, and one sampling step of 256 windows at F = 64, unguided and
 * policy-guided; and, without an anchor, the denoiser's step at the `quick`
 * preset's sizes (F = 64, two levels, batch 64, rows of 8;
 * benchmarks/unet_bench.ts times its two paths side by side). Single
 * products at training sizes come first. At the end a table gives each
 * median and its ratio to PyTorch.
 *
 * The anchors are two PyTorch scripts kept outside the repository, each
 * timing one step and printing `median=<ms>`: `torch_td3bc_step.py [threads]`
 * (a TD3+BC update at the sizes above: critics every step, actor and targets
 * every second) and `torch_unet_step.py FEATURES BATCH LENGTH CHANNELS` (one
 * EDM training step of the same three-level U-Net). Put both in a folder,
 * name it with `PGD_ANCHOR_DIR`, and name a Python that has PyTorch with
 * `PGD_ANCHOR_PYTHON`:
 *
 *     PGD_ANCHOR_DIR=path/to/anchors PGD_ANCHOR_PYTHON=python3 \
 *       deno bench --allow-all benchmarks/compute_bench.ts
 *
 * An anchor that does not run is reported on stderr and its ratios read `-`;
 * the product's own timings are unaffected. docs/measurements.md has
 * figures from earlier sittings.
 *
 * Environment: `PGD_BENCH_ANCHORS=off` skips the PyTorch runs;
 * `PGD_BENCH_SHIPPED=off` skips the (slow) shipped-kernel runs of the
 * training steps; `PGD_ANCHOR_PYTHON` names the Python (default
 * `/usr/bin/python3`); `PGD_ANCHOR_DIR` names the folder holding the two
 * anchor scripts. Without it the PyTorch runs are skipped, and the closing
 * table says so.
 *
 * @module
 */
import {
  initCompute,
  type KernelSet,
  nativeKernelsAvailable,
  setKernelSet,
  tf,
} from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { randomAgentBatch } from "./random_batch.ts";
import { type Anchor, anchorMs, explainAnchors, runAnchor } from "./anchors.ts";
import type { PolicyView } from "../core/types.ts";
import type { AgentPlugin } from "../core/contracts/agent.ts";
import { td3bc } from "../plugins/agents/td3_bc.ts";
import { iql } from "../plugins/agents/iql.ts";
import { denoise } from "../diffusion/edm.ts";
import { policyGuidance } from "../diffusion/guidance.ts";
import { type DenoiserFn, noiseLevels, samplerStep } from "../diffusion/sampler.ts";
import { referenceTrainOptions, table4Sampler } from "../diffusion/settings.ts";
import { DenoiserTrainer } from "../diffusion/train.ts";
import { initUNetParams, type UNetConfig } from "../diffusion/unet1d.ts";
import { rowLayout } from "../diffusion/windows.ts";

const info = await initCompute("wasm");
const paths: KernelSet[] = nativeKernelsAvailable()
  ? ["blas", "wasm", "shipped"]
  : ["wasm", "shipped"];
const env = (name: string) => Deno.env.get(name)?.toLowerCase();
const runShippedSteps = env("PGD_BENCH_SHIPPED") !== "off";

// ---------------------------------------------------------------------------
// Timings kept here, so that the closing table can show medians and ratios.

const samples = new Map<string, number[]>();

/**
 * Wraps `body` to record its time per call divided by `unitsPerCall` (a TD3+BC
 * call runs two updates, since the actor and targets move every second one).
 */
function timed(name: string, body: () => void, unitsPerCall = 1): () => void {
  const list: number[] = [];
  samples.set(name, list);
  return () => {
    const start = performance.now();
    body();
    list.push((performance.now() - start) / unitsPerCall);
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// ---------------------------------------------------------------------------
// PyTorch anchors (benchmarks/anchors.ts), run before the benches and again after them.

const anchors: Record<string, Anchor> = {
  td3bc: { script: "torch_td3bc_step.py", args: ["1"], runs: [] },
  unet64: { script: "torch_unet_step.py", args: ["64", "32", "16", "25"], runs: [] },
  unet128: { script: "torch_unet_step.py", args: ["128", "32", "16", "25"], runs: [] },
};
explainAnchors();

for (const anchor of Object.values(anchors)) runAnchor(anchor);

// ---------------------------------------------------------------------------
// The product's own training steps at the anchors' sizes.

function randomTensor(rng: Rng, shape: number[]): tf.Tensor {
  const size = shape.reduce((p, d) => p * d, 1);
  return tf.tensor(Float32Array.from({ length: size }, () => rng.normal()), shape);
}

const normals = (rng: Rng, size: number) => Float32Array.from({ length: size }, () => rng.normal());

/** An agent's update on a fixed random batch (obs 17, act 6, batch 256), as the anchor times it. */
function makeAgentUpdate(plugin: AgentPlugin, seed: number): () => void {
  const batch = randomAgentBatch(new Rng(seed));
  const { observationDim, actionDim } = batch;
  const agent = plugin.create({ observationDim, actionDim, seed, preset: "paper" });
  return () => void agent.update(batch);
}

const layout = rowLayout(17, 6); // 25 channels, as the anchor's
const trajectoryLength = 16;

/**
 * One denoiser training step (EDM loss, backward, Adam, EMA) at features F:
 * by default the anchor's three-level U-Net (batch 32, 25 channels).
 */
function makeUnetStep(
  seed: number,
  features: number,
  { numBlocks = 3, batchSize = 32, rowWidth = layout.rowWidth, emaEvery }: {
    numBlocks?: number;
    batchSize?: number;
    rowWidth?: number;
    emaEvery?: number;
  } = {},
): () => void {
  const rng = new Rng(seed);
  const config: UNetConfig = { rowWidth, features, numBlocks, trajectoryLength };
  const windowFloats = trajectoryLength * rowWidth;
  const trainer = new DenoiserTrainer(
    config,
    normals(rng, 256 * windowFloats),
    normals(rng, batchSize * windowFloats),
    referenceTrainOptions(1_000_000, batchSize, {
      validationPoints: 1,
      validationWindows: batchSize,
      ...(emaEvery ? { emaEvery } : {}),
    }),
    seed,
  );
  return () => void trainer.step();
}

/**
 * One sampling step (Heun, churn) of 256 windows at F = 64, policy-guided
 * (guidance at the denoised estimate: one more denoiser pass) or not.
 */
function makeSamplingStep(seed: number, guided: boolean): () => void {
  const rng = new Rng(seed);
  const config: UNetConfig = {
    rowWidth: layout.rowWidth,
    features: 64,
    numBlocks: 3,
    trajectoryLength,
  };
  const params = initUNetParams(config, seed);
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
  const levels = noiseLevels(table4Sampler);
  const guidance = policyGuidance(policy, layout, stats, denoiser, {
    strength: 1,
    schedule: "cosine",
    cosineWeight: 0.3,
    atDenoisedEstimate: true,
    normalize: true,
  }, table4Sampler.sigmaMax);
  const stepIndex = 100; // mid-trajectory: churn and Heun's correction both on
  const sample = tf.mul(
    randomTensor(rng, [256, trajectoryLength, layout.rowWidth]),
    levels[stepIndex],
  );
  return () =>
    samplerStep(
      denoiser,
      sample as tf.Tensor3D,
      levels,
      stepIndex,
      table4Sampler,
      1,
      guided ? guidance : undefined,
    ).dispose();
}

// ---------------------------------------------------------------------------
// The benches.

const productShapes: [number, number, number, boolean, boolean][] = [
  [256, 17, 256, false, false],
  [256, 256, 256, false, false],
  [256, 256, 256, true, false],
  [256, 256, 256, false, true],
  [256, 256, 6, false, false],
  [512, 384, 128, false, false],
  [1024, 1024, 1024, false, false],
];

for (const [m, k, n, transposeA, transposeB] of productShapes) {
  const rng = new Rng(m + k + n);
  const a = randomTensor(rng, transposeA ? [k, m] : [m, k]);
  const b = randomTensor(rng, transposeB ? [n, k] : [k, n]);
  const shape = `${m}x${k}x${n}${transposeA ? " Aᵀ" : ""}${transposeB ? " Bᵀ" : ""}`;
  for (const path of paths) {
    if (path === "shipped" && m === 1024 && (transposeA || transposeB)) continue;
    const name = `matMul ${shape} [${path}]`;
    const body = timed(name, () => tf.tidy(() => void tf.matMul(a, b, transposeA, transposeB)));
    Deno.bench({
      name,
      group: `matMul ${shape}`,
      baseline: path === paths[0],
      fn: () => {
        setKernelSet(path);
        body();
      },
    });
  }
}

function trainingBench(
  group: string,
  make: () => () => void,
  iterations: number,
  anchor: Anchor | undefined,
  shippedTrains = true,
  stepsPerCall = 1,
): void {
  for (const path of paths) {
    if (path === "shipped" && (!runShippedSteps || !shippedTrains)) continue;
    let step: (() => void) | undefined;
    const name = `${group} [${path}]`;
    const body = timed(name, () => {
      for (let i = 0; i < stepsPerCall; i++) step!();
    }, stepsPerCall);
    Deno.bench({
      name,
      group,
      baseline: path === paths[0],
      n: path === "shipped" ? Math.ceil(iterations / 4) : iterations,
      warmup: 5,
      fn: () => {
        setKernelSet(path);
        step ??= make();
        body();
      },
    });
  }
  anchorRows.push([group, anchor]);
}

const anchorRows: [string, Anchor | undefined][] = [];
// Two updates per timed call: one critic-only, one with the actor and targets.
trainingBench("TD3+BC update", () => makeAgentUpdate(td3bc(), 1), 60, anchors.td3bc, true, 2);
trainingBench("IQL update", () => makeAgentUpdate(iql(), 2), 60, undefined, true);
// The shipped wasm kernels cannot train a convolution: Conv2DBackpropFilter is missing.
trainingBench("U-Net step F=64", () => makeUnetStep(3, 64), 30, anchors.unet64, false);
trainingBench("U-Net step F=128", () => makeUnetStep(4, 128), 20, anchors.unet128, false);
// The quick preset's denoiser: two levels, batch 64, maze2d's rows of 8, the EMA every step.
trainingBench(
  "U-Net step quick (F=64, 2 levels, batch 64, rows 8)",
  () => makeUnetStep(6, 64, { numBlocks: 2, batchSize: 64, rowWidth: 8, emaEvery: 1 }),
  30,
  undefined,
  false,
);
trainingBench(
  "sampling step, 256 windows, F=64",
  () => makeSamplingStep(5, false),
  10,
  undefined,
  false,
);
trainingBench(
  "guided sampling step, 256 windows, F=64",
  () => makeSamplingStep(5, true),
  10,
  undefined,
  false,
);

globalThis.addEventListener("unload", () => {
  for (const anchor of Object.values(anchors)) runAnchor(anchor);
  const lines = [
    `compute path: ${info.path}`,
    "work | path | median ms | min ms | × PyTorch (median)",
  ];
  for (const [group, anchor] of anchorRows) {
    const torch = anchor && anchorMs(anchor);
    if (anchor) {
      const runs = anchor.runs.map((ms) => ms.toFixed(2)).join(", ") || "not run";
      lines.push(`${group} | torch (runs: ${runs}) | ${torch?.toFixed(2) ?? "-"} | - | 1.00`);
    }
    for (const path of paths) {
      const list = samples.get(`${group} [${path}]`);
      if (!list || list.length === 0) continue;
      const kept = list.slice(Math.min(5, list.length - 1));
      const ms = median(kept);
      const ratio = torch ? (ms / torch).toFixed(2) : "-";
      lines.push(
        `${group} | ${path} | ${ms.toFixed(2)} | ${Math.min(...kept).toFixed(2)} | ${ratio}`,
      );
    }
  }
  console.log(lines.join("\n"));
});
