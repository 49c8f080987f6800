import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import type { D4rlDataset, PolicyView } from "../core/types.ts";
import { denoise } from "../diffusion/edm.ts";
import {
  actionScore,
  type GuidanceOptions,
  guidanceWeight,
  normalizePerWindow,
  policyGuidance,
} from "../diffusion/guidance.ts";
import { sampleEdm } from "../diffusion/sampler.ts";
import { referenceTrainOptions, table4Sampler } from "../diffusion/settings.ts";
import { trainDenoiser } from "../diffusion/train.ts";
import type { UNetConfig } from "../diffusion/unet1d.ts";
import { cutWindows, normalizeRows, rowLayout, rowStats } from "../diffusion/windows.ts";
import { actionTransform } from "../diffusion/action_transform.ts";

await initCompute("wasm");

const paperGuidance: GuidanceOptions = {
  strength: 1,
  schedule: "cosine",
  cosineWeight: 0.3,
  atDenoisedEstimate: true,
  normalize: true,
};

/** A 2-D point steered toward the origin with noisy actions; episodes end at a timeout or a terminal at the goal. */
function pointDataset(episodes: number, length: number, seed: number): D4rlDataset {
  const rng = new Rng(seed);
  const observations: number[] = [];
  const actions: number[] = [];
  const rewards: number[] = [];
  const terminals: number[] = [];
  const timeouts: number[] = [];
  for (let e = 0; e < episodes; e++) {
    let x = rng.range(-1, 1);
    let y = rng.range(-1, 1);
    for (let t = 0; t < length; t++) {
      const ax = Math.max(-1, Math.min(1, -2 * x + 0.3 * rng.normal()));
      const ay = Math.max(-1, Math.min(1, -2 * y + 0.3 * rng.normal()));
      observations.push(x, y);
      actions.push(ax, ay);
      x += 0.1 * ax;
      y += 0.1 * ay;
      const distance = Math.hypot(x, y);
      rewards.push(-distance);
      const atGoal = distance < 0.02;
      terminals.push(atGoal ? 1 : 0);
      timeouts.push(!atGoal && t === length - 1 ? 1 : 0);
      if (atGoal) break;
    }
  }
  return {
    size: rewards.length,
    observationDim: 2,
    actionDim: 2,
    observations: Float32Array.from(observations),
    actions: Float32Array.from(actions),
    rewards: Float32Array.from(rewards),
    terminals: Uint8Array.from(terminals),
    timeouts: Uint8Array.from(timeouts),
    infos: {},
    metadata: {},
  };
}

/** A Gaussian policy whose mean depends on the state, for gradient checks. */
const statePolicy: PolicyView = {
  actionDistribution(observations, count) {
    const mean = new Float32Array(count * 2);
    const std = new Float32Array(count * 2);
    for (let i = 0; i < count; i++) {
      mean[2 * i] = Math.tanh(observations[2 * i] - observations[2 * i + 1]);
      mean[2 * i + 1] = 0.3;
      std[2 * i] = 0.5;
      std[2 * i + 1] = 0.2 + 0.1 * Math.abs(observations[2 * i]);
    }
    return { mean, std };
  },
};

for (const transform of [actionTransform("atanh"), actionTransform("none")]) {
  Deno.test(`guidance gradient matches finite differences of Σ log π over the action block only (${transform.name} actions)`, () => {
    const layout = rowLayout(2, 2, { actionTransform: transform });
    const stats = {
      mean: Float32Array.from([0.1, -0.2, 0.3, -0.1, 0, 0]),
      std: Float32Array.from([1, 2, 0.5, 0.8, 1, 1]),
    };
    const rng = new Rng(3);
    const windows = Float64Array.from({ length: 2 * 3 * layout.rowWidth }, () => rng.normal());
    const score = (w: Float64Array) =>
      actionScore(Float32Array.from(w), 6, layout, stats, statePolicy);
    const { gradient } = score(windows);
    const epsilon = 1e-2;
    let checked = 0;
    for (let i = 0; i < windows.length; i++) {
      const column = i % layout.rowWidth;
      const up = Float64Array.from(windows);
      const down = Float64Array.from(windows);
      up[i] += epsilon;
      down[i] -= epsilon;
      if (column < 2 || column >= 4) {
        // States are held fixed and the other entries are not guided.
        assert.equal(gradient[i], 0, `entry ${i} (column ${column}) must get no gradient`);
        continue;
      }
      const stored = windows[i] * stats.std[column] + stats.mean[column];
      // Raw actions are clipped at ±1: a difference across the kink is no derivative.
      if (
        transform.name === "none" && Math.abs(Math.abs(stored) - 1) < epsilon * stats.std[column]
      ) {
        continue;
      }
      const numeric = (6 * (score(up).meanLogLikelihood - score(down).meanLogLikelihood)) /
        (2 * epsilon);
      assert.ok(
        Math.abs(numeric - gradient[i]) < 2e-2 * Math.max(1, Math.abs(numeric)),
        `entry ${i}: ${numeric} vs ${gradient[i]}`,
      );
      checked += 1;
    }
    assert.ok(checked >= 8, `only ${checked} of 12 action entries checked`);
  });
}

Deno.test("guidance schedules: the code's cosine form, eq. 14, constant; unit normalisation per window", () => {
  const n = 256;
  assert.ok(
    Math.abs(guidanceWeight(paperGuidance, 0, n, 80, 80) - (1 + 0.3 * Math.sin(Math.PI / n))) <
      1e-12,
  );
  assert.ok(
    Math.abs(
      guidanceWeight(paperGuidance, 128, n, 1, 80) - (0.5 + 0.3 * Math.sin((Math.PI * 129) / n)),
    ) < 1e-12,
  );
  assert.equal(guidanceWeight(paperGuidance, n - 1, n, 0.002, 80), 0);
  const eq14 = { ...paperGuidance, strength: 2, schedule: "eq14" as const };
  assert.ok(
    Math.abs(guidanceWeight(eq14, 64, n, 3, 80) - 2 * (3 + 0.3 * 80 * Math.sin(Math.PI / 4))) <
      1e-9,
  );
  assert.equal(
    guidanceWeight({ ...paperGuidance, schedule: "constant", strength: 0.7 }, 10, n, 5, 80),
    0.7,
  );
  const gradient = Float32Array.from([3, 4, 0, 0, 0, 0]);
  normalizePerWindow(gradient, 3);
  [0.6, 0.8, 0, 0, 0, 0].forEach((v, i) => assert.ok(Math.abs(gradient[i] - v) < 1e-6));
});

Deno.test("action log-likelihood under a fixed target policy rises monotonically with λ (Figure 5)", () => {
  const dataset = pointDataset(60, 40, 1);
  const trajectoryLength = 8;
  const windows = cutWindows(dataset, { trajectoryLength, stride: 2 });
  const layout = windows.layout;
  const stats = rowStats(windows.data, layout.rowWidth);
  const normalized = normalizeRows(windows.data, stats);
  const config: UNetConfig = {
    rowWidth: layout.rowWidth,
    features: 16,
    numBlocks: 2,
    trajectoryLength,
  };
  const windowSize = trajectoryLength * layout.rowWidth;
  const validationCount = 16;
  const trained = trainDenoiser(
    config,
    normalized.subarray(validationCount * windowSize),
    normalized.subarray(0, validationCount * windowSize),
    referenceTrainOptions(120, 32, { validationPoints: 1, validationWindows: validationCount }),
    5,
  );
  // A target policy far from the behaviour (which steers toward the origin).
  const target: PolicyView = {
    actionDistribution(_observations, count) {
      const mean = new Float32Array(count * 2);
      for (let i = 0; i < count; i++) {
        mean[2 * i] = 0.6;
        mean[2 * i + 1] = -0.6;
      }
      return { mean, std: new Float32Array(count * 2).fill(0.3) };
    },
  };
  const denoiser = (x: tf.Tensor3D, sigma: number) =>
    denoise(config, trained.params, x, tf.fill([x.shape[0]], sigma) as tf.Tensor1D);
  const sampler = { ...table4Sampler, steps: 16 };
  const count = 128;
  const before = tf.memory().numTensors;
  const likelihoods = [0, 0.25, 0.5, 1, 2].map((strength) => {
    const guidance = policyGuidance(
      target,
      layout,
      stats,
      denoiser,
      { ...paperGuidance, strength },
      sampler.sigmaMax,
    );
    const sample = sampleEdm(
      denoiser,
      [count, trajectoryLength, layout.rowWidth],
      sampler,
      9,
      strength > 0 ? guidance : undefined,
    );
    assert.ok(sample.every(Number.isFinite));
    return actionScore(sample, count * trajectoryLength, layout, stats, target).meanLogLikelihood;
  });
  assert.equal(tf.memory().numTensors, before);
  for (let i = 1; i < likelihoods.length; i++) {
    assert.ok(
      likelihoods[i] > likelihoods[i - 1],
      `log-likelihoods over λ: ${likelihoods.map((l) => l.toFixed(3)).join(", ")}`,
    );
  }
  tf.dispose(Object.values(trained.params));
});
