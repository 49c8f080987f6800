/**
 * The denoiser's whole-network kernels (compute/kernels_unet.ts) against the
 * specification, diffusion/unet1d.ts's composition of TF.js ops: outputs and
 * every gradient, on each kernel set that has them, at smoke sizes.
 */
import { assertEquals, assertOk, relativeError } from "./assert.ts";
import {
  fusedKernelSets,
  initCompute,
  type KernelSet,
  kernelSet,
  setKernelSet,
  tf,
} from "../core/compute.ts";
import { setUNetChunkFloats } from "../compute/kernels_unet.ts";
import { Rng } from "../core/rng.ts";
import { edmLoss, edmLossAndGradients } from "../diffusion/edm.ts";
import { referenceTrainOptions } from "../diffusion/settings.ts";
import { DenoiserTrainer, trainDenoiser } from "../diffusion/train.ts";
import {
  fusedUNetActive,
  initUNetParams,
  setUNetPath,
  type UNetConfig,
  unetForward,
} from "../diffusion/unet1d.ts";

await initCompute("wasm");
const sets = fusedKernelSets();

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

Deno.test("the tape-free EDM step gives the tape's loss and gradients", () => {
  const config = configs[0];
  const batch = 8;
  const rng = new Rng(5);
  const size = batch * config.trajectoryLength * config.rowWidth;
  const clean = randomArray(rng, size);
  const noise = randomArray(rng, size);
  const sigma = Float32Array.from({ length: batch }, () => Math.exp(-1.2 + 1.2 * rng.normal()));
  for (const set of sets) {
    const params = initUNetParams(config, 6);
    const names = Object.keys(params);
    const shape: [number, number, number] = [batch, config.trajectoryLength, config.rowWidth];
    const reference = under(set, "ops", () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() =>
          edmLoss(
            config,
            params,
            tf.tensor3d(clean, shape),
            tf.tensor1d(sigma),
            tf.tensor3d(noise, shape),
          )
        );
        return {
          loss: value.dataSync()[0],
          gradients: names.map((name) => grads[params[name].name].dataSync() as Float32Array),
        };
      }));
    const before = tf.memory().numTensors;
    const { loss, gradients } = under(
      set,
      "auto",
      () => edmLossAndGradients(config, params, clean, sigma, noise),
    );
    const lossError = Math.abs(loss - reference.loss) / reference.loss;
    assertOk(lossError < 1e-5, `loss ${loss} against ${reference.loss} [${set}]`);
    names.forEach((name, i) => {
      const error = relativeError(gradients[i].dataSync(), reference.gradients[i]);
      assertOk(error < 1e-5, `gradient of ${name} [${set}]: error ${error}`);
    });
    tf.dispose(gradients);
    assertEquals(tf.memory().numTensors, before);
    tf.dispose(Object.values(params));
  }
});

Deno.test("training on the fused path: the tape's losses to rounding, and the same numbers twice", () => {
  const config = configs[0];
  const rng = new Rng(8);
  const windowSize = config.trajectoryLength * config.rowWidth;
  const train = randomArray(rng, 64 * windowSize);
  const validation = randomArray(rng, 16 * windowSize);
  const options = referenceTrainOptions(20, 16, { validationPoints: 2, validationWindows: 16 });
  for (const set of sets) {
    const run = (path: "auto" | "ops") =>
      under(set, path, () => {
        const trained = trainDenoiser(config, train, validation, options, 4);
        tf.dispose(Object.values(trained.params));
        return trained.history;
      });
    const [fused, again, reference] = [run("auto"), run("auto"), run("ops")];
    assertEquals(again, fused, `bit-identical reruns [${set}]`);
    fused.forEach((point, i) => {
      const error = Math.abs(point.validationLoss - reference[i].validationLoss) /
        reference[i].validationLoss;
      assertOk(error < 1e-3, `validation loss at step ${point.step} [${set}]: ${error}`);
    });
  }
});

Deno.test("the trainer's step leaves no tensor behind on the fused path", () => {
  const config = configs[0];
  const rng = new Rng(9);
  const windowSize = config.trajectoryLength * config.rowWidth;
  const options = referenceTrainOptions(10, 16, { validationPoints: 1, validationWindows: 16 });
  for (const set of sets) {
    under(set, "auto", () => {
      const trainer = new DenoiserTrainer(
        config,
        randomArray(rng, 64 * windowSize),
        randomArray(rng, 16 * windowSize),
        options,
        2,
      );
      trainer.step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) assertOk(Number.isFinite(trainer.step()));
      assertEquals(tf.memory().numTensors, before);
      trainer.dispose();
    });
  }
});
