/**
 * The denoiser's whole-network kernels (compute/kernels_unet.ts) against the
 * specification, diffusion/unet1d.ts's composition of TF.js ops: outputs and
 * every gradient, on each kernel set that has them, at smoke sizes.
 */
import { assertEquals, assertOk, relativeError } from "./assert.ts";
import {
  initCompute,
  type KernelSet,
  kernelSet,
  nativeKernelsAvailable,
  setKernelSet,
  tf,
} from "../core/compute.ts";
import { setUNetChunkFloats } from "../compute/kernels_unet.ts";
import { Rng } from "../core/rng.ts";
import {
  fusedUNetActive,
  initUNetParams,
  setUNetPath,
  type UNetConfig,
  unetForward,
} from "../diffusion/unet1d.ts";

await initCompute("wasm");
const sets: KernelSet[] = nativeKernelsAvailable() ? ["blas", "wasm"] : ["wasm"];

function randomArray(rng: Rng, size: number): Float32Array {
  return Float32Array.from({ length: size }, () => rng.normal());
}

/** Runs `body` on `set` with the U-Net on `path`, restoring both. */
function under<T>(set: KernelSet, path: "auto" | "ops", body: () => T): T {
  const previous = kernelSet()!;
  setKernelSet(set);
  setUNetPath(path);
  try {
    return body();
  } finally {
    setUNetPath("auto");
    setKernelSet(previous);
  }
}

// Per-step GroupNorm with two channels a group is ill-conditioned (two values
// always normalise to ±1): there the op path's own kernel sets differ by 1e-3,
// so per-step statistics are checked at four channels a group. With one
// channel a group, GroupNorm would remove the noise embedding's projection
// (a constant per example and channel), and its gradients would be rounding
// noise: every config has at least two.
const configs: UNetConfig[] = [
  { rowWidth: 5, features: 16, numBlocks: 2, trajectoryLength: 8 },
  { rowWidth: 3, features: 16, numBlocks: 1, trajectoryLength: 4 },
  { rowWidth: 7, features: 16, numBlocks: 3, trajectoryLength: 16 },
  { rowWidth: 4, features: 32, numBlocks: 2, trajectoryLength: 8, normPerStep: true },
];

/** Fresh parameters with GroupNorm scales and shifts moved off 1 and 0, so that their gradients matter. */
function randomParams(config: UNetConfig, seed: number): Record<string, tf.Variable> {
  const params = initUNetParams(config, seed);
  const rng = new Rng(seed + 1000);
  for (const [name, param] of Object.entries(params)) {
    if (!/\.(gamma|beta)$/.test(name)) continue;
    const values = param.dataSync() as Float32Array;
    param.assign(tf.tensor(values.map((v) => v + 0.3 * rng.normal()), param.shape));
  }
  return params;
}

/** The output and the gradients of `x`, `c_noise` and every parameter of a weighted sum of it. */
function outputAndGradients(config: UNetConfig, seed: number): Float32Array[] {
  return tf.tidy(() => {
    const rng = new Rng(seed);
    const params = randomParams(config, seed);
    const names = Object.keys(params);
    const batch = 3;
    const shape: [number, number, number] = [batch, config.trajectoryLength, config.rowWidth];
    const size = batch * config.trajectoryLength * config.rowWidth;
    const x = tf.tensor3d(randomArray(rng, size), shape);
    const cNoise = tf.tensor1d(randomArray(rng, batch));
    const weights = tf.tensor3d(randomArray(rng, size), shape);
    const output = unetForward(config, params, x, cNoise);
    const gradients = tf.grads((...inputs: tf.Tensor[]) => {
      const [xs, cs, ...rest] = inputs;
      const record = Object.fromEntries(names.map((name, i) => [name, rest[i]]));
      return tf.sum(
        tf.mul(unetForward(config, record, xs as tf.Tensor3D, cs as tf.Tensor1D), weights),
      );
    })([x, cNoise, ...names.map((name) => params[name])]);
    const values = [output, ...gradients].map((t) => t.dataSync() as Float32Array);
    tf.dispose(Object.values(params));
    return values;
  });
}

Deno.test("the fused U-Net equals the composition of TF.js ops: output and every gradient", () => {
  for (const set of sets) {
    for (const [c, config] of configs.entries()) {
      const reference = under(set, "ops", () => outputAndGradients(config, 10 + c));
      const fused = under(set, "auto", () => {
        assertOk(fusedUNetActive(), `the whole-network kernels run on '${set}'`);
        return outputAndGradients(config, 10 + c);
      });
      assertEquals(fused.length, reference.length);
      reference.forEach((expected, i) => {
        const error = relativeError(fused[i], expected);
        assertOk(error < 1e-5, `${JSON.stringify(config)} [${set}] value ${i}: error ${error}`);
      });
    }
  }
});

Deno.test("outside a tape the fused forward pass keeps nothing, in chunks or whole", () => {
  const config = configs[0];
  const whole = under("wasm", "auto", () => outputAndGradients(config, 3)[0]);
  // A bound of one example's workspace: three chunks of one window.
  const previous = setUNetChunkFloats(1);
  try {
    const before = tf.memory().numTensors;
    const chunked = under("wasm", "auto", () =>
      tf.tidy(() => {
        const rng = new Rng(3);
        const params = randomParams(config, 3);
        const size = 3 * config.trajectoryLength * config.rowWidth;
        const out = unetForward(
          config,
          params,
          tf.tensor3d(randomArray(rng, size), [3, config.trajectoryLength, config.rowWidth]),
          tf.tensor1d(randomArray(rng, 3)),
        ).dataSync() as Float32Array;
        tf.dispose(Object.values(params));
        return out;
      }));
    assertEquals(tf.memory().numTensors, before);
    assertOk(relativeError(chunked, whole) < 1e-6, "three chunks of one window equal one batch");
  } finally {
    setUNetChunkFloats(previous);
  }
});
