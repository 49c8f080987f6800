import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import {
  type DenoiserFn,
  noiseLevels,
  sampleEdm,
  type SamplerOptions,
} from "../diffusion/sampler.ts";
import { table4Sampler } from "../diffusion/settings.ts";

await initCompute("wasm");

/**
 * The exact denoiser of data distributed N(mean_c, std_c²) per channel:
 * E[x₀ | x] = mean + std²/(std² + σ²)·(x − mean).
 */
function gaussianDenoiser(mean: number[], std: number[]): DenoiserFn {
  return (noisy, sigma) => {
    const m = tf.tensor1d(mean);
    const variance = tf.square(tf.tensor1d(std));
    const gain = tf.div(variance, tf.add(variance, sigma * sigma));
    return tf.add(m, tf.mul(gain, tf.sub(noisy, m)));
  };
}

function channelMoments(
  samples: Float32Array,
  channels: number,
): { mean: number[]; std: number[] } {
  const rows = samples.length / channels;
  const mean = new Array(channels).fill(0);
  const squares = new Array(channels).fill(0);
  for (let i = 0; i < samples.length; i++) mean[i % channels] += samples[i] / rows;
  for (let i = 0; i < samples.length; i++) {
    squares[i % channels] += (samples[i] - mean[i % channels]) ** 2 / rows;
  }
  return { mean, std: squares.map(Math.sqrt) };
}

Deno.test("noise levels follow Karras et al.'s ρ-spacing and end at 0", () => {
  const levels = noiseLevels(table4Sampler);
  assert.equal(levels.length, 257);
  assert.ok(Math.abs(levels[0] - 80) < 1e-9);
  assert.ok(Math.abs(levels[255] - 0.002) < 1e-12);
  assert.equal(levels[256], 0);
  for (let i = 1; i < levels.length; i++) assert.ok(levels[i] < levels[i - 1]);
});

for (const solver of ["heun", "euler"] as const) {
  Deno.test(`the ${solver} sampler driven by an exact Gaussian score reproduces that Gaussian`, () => {
    const mean = [2, -1, 0.5];
    const std = [0.5, 1.5, 0.1];
    const options: SamplerOptions = {
      ...table4Sampler,
      steps: solver === "heun" ? 48 : 512,
      solver,
    };
    const before = tf.memory().numTensors;
    const samples = sampleEdm(gaussianDenoiser(mean, std), [1000, 4, 3], options, 11);
    assert.equal(tf.memory().numTensors, before);
    assert.ok(samples.every(Number.isFinite));
    const moments = channelMoments(samples, 3);
    for (let c = 0; c < 3; c++) {
      assert.ok(
        Math.abs(moments.mean[c] - mean[c]) < 0.1 * std[c] + 0.01,
        `channel ${c} mean ${moments.mean[c]}`,
      );
      assert.ok(Math.abs(moments.std[c] / std[c] - 1) < 0.08, `channel ${c} std ${moments.std[c]}`);
    }
  });
}

Deno.test("guidance is added before each step and the same seed gives the same samples", () => {
  const denoiser = gaussianDenoiser([0], [1]);
  const options: SamplerOptions = { ...table4Sampler, steps: 32 };
  const plain = sampleEdm(denoiser, [400, 2, 1], options, 5);
  assert.deepEqual(sampleEdm(denoiser, [400, 2, 1], options, 5), plain);
  let calls = 0;
  const pushed = sampleEdm(denoiser, [400, 2, 1], options, 5, (sample, _sigma, step, steps) => {
    calls++;
    assert.equal(steps, 32);
    return step < steps - 1 ? tf.onesLike(sample) : null;
  });
  assert.equal(calls, 32);
  const meanOf = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(meanOf(pushed) > meanOf(plain) + 0.2, `${meanOf(pushed)} vs ${meanOf(plain)}`);
});
