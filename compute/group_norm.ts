/**
 * Group normalisation over channels-last tensors as one kernel forward and
 * one backward. Composed of TF.js ops it takes about a dozen ops forward
 * and two dozen backward (moments, broadcasts, their reductions); on the
 * wasm backend it is two passes over the heap each way. Other backends get
 * the same arithmetic as TF.js ops.
 *
 * @module
 */
import { tf } from "./tf.ts";
import { asWasmBackend, floatOffset, heapF32, sizeOf } from "./heap.ts";

type TensorInfo = tf.TensorInfo;

/** Kernel name of the forward pass. */
export const groupNormKernelName = "PgdGroupNorm";
/** Kernel name of the backward pass. */
export const groupNormGradKernelName = "PgdGroupNormGrad";

interface Layout {
  /** Batch size. */
  batch: number;
  /** Positions per example (product of the middle axes). */
  positions: number;
  /** Channels (last axis). */
  channels: number;
  /** Channels per group. */
  groupSize: number;
  groups: number;
}

function layoutOf(shape: number[], groups: number): Layout {
  const channels = shape[shape.length - 1];
  return {
    batch: shape[0],
    positions: sizeOf(shape.slice(1, -1)),
    channels,
    groupSize: channels / groups,
    groups,
  };
}

// Forward: per (example, group) mean and 1/σ, then y = (x − mean)/σ · γ + β.
const forwardKernel: tf.KernelFunc = (args) => {
  const { x, gamma, beta } = args.inputs as Record<string, TensorInfo>;
  const { groups, epsilon } = args.attrs as unknown as { groups: number; epsilon: number };
  const backend = asWasmBackend(args.backend);
  const { batch, positions, channels, groupSize } = layoutOf(x.shape, groups);
  const y = backend.makeOutput([...x.shape], "float32");
  const mean = backend.makeOutput([batch, groups], "float32");
  const inverseStd = backend.makeOutput([batch, groups], "float32");
  const heap = heapF32(backend);
  const xo = floatOffset(backend, x);
  const yo = floatOffset(backend, y);
  const go = floatOffset(backend, gamma);
  const bo = floatOffset(backend, beta);
  const mo = floatOffset(backend, mean);
  const so = floatOffset(backend, inverseStd);
  const count = positions * groupSize;
  for (let n = 0; n < batch; n++) {
    const example = xo + n * positions * channels;
    for (let g = 0; g < groups; g++) {
      let sum = 0;
      for (let p = 0; p < positions; p++) {
        const start = example + p * channels + g * groupSize;
        for (let j = 0; j < groupSize; j++) sum += heap[start + j];
      }
      const mu = sum / count;
      let squares = 0;
      for (let p = 0; p < positions; p++) {
        const start = example + p * channels + g * groupSize;
        for (let j = 0; j < groupSize; j++) {
          const d = heap[start + j] - mu;
          squares += d * d;
        }
      }
      const rstd = 1 / Math.sqrt(squares / count + epsilon);
      heap[mo + n * groups + g] = mu;
      heap[so + n * groups + g] = rstd;
      for (let p = 0; p < positions; p++) {
        const offset = n * positions * channels + p * channels + g * groupSize;
        for (let j = 0; j < groupSize; j++) {
          const c = g * groupSize + j;
          heap[yo + offset + j] = (heap[xo + offset + j] - mu) * rstd * heap[go + c] + heap[bo + c];
        }
      }
    }
  }
  return [y, mean, inverseStd];
};

// Backward, with x̂ = (x − mean)/σ: dβ = Σ dy, dγ = Σ dy·x̂, and
// dx = (1/σ)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·γ, means per group.
const backwardKernel: tf.KernelFunc = (args) => {
  const { dy, x, gamma, mean, inverseStd } = args.inputs as Record<string, TensorInfo>;
  const { groups } = args.attrs as unknown as { groups: number };
  const backend = asWasmBackend(args.backend);
  const { batch, positions, channels, groupSize } = layoutOf(x.shape, groups);
  const dx = backend.makeOutput([...x.shape], "float32");
  const dGamma = backend.makeOutput([channels], "float32");
  const dBeta = backend.makeOutput([channels], "float32");
  const heap = heapF32(backend);
  const dyo = floatOffset(backend, dy);
  const xo = floatOffset(backend, x);
  const go = floatOffset(backend, gamma);
  const mo = floatOffset(backend, mean);
  const so = floatOffset(backend, inverseStd);
  const dxo = floatOffset(backend, dx);
  const dgo = floatOffset(backend, dGamma);
  const dbo = floatOffset(backend, dBeta);
  heap.fill(0, dgo, dgo + channels);
  heap.fill(0, dbo, dbo + channels);
  const count = positions * groupSize;
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const mu = heap[mo + n * groups + g];
      const rstd = heap[so + n * groups + g];
      let sumDxHat = 0;
      let sumDxHatXHat = 0;
      for (let p = 0; p < positions; p++) {
        const offset = n * positions * channels + p * channels + g * groupSize;
        for (let j = 0; j < groupSize; j++) {
          const c = g * groupSize + j;
          const gradient = heap[dyo + offset + j];
          const xHat = (heap[xo + offset + j] - mu) * rstd;
          const dxHat = gradient * heap[go + c];
          sumDxHat += dxHat;
          sumDxHatXHat += dxHat * xHat;
          heap[dbo + c] += gradient;
          heap[dgo + c] += gradient * xHat;
        }
      }
      const meanDxHat = sumDxHat / count;
      const meanDxHatXHat = sumDxHatXHat / count;
      for (let p = 0; p < positions; p++) {
        const offset = n * positions * channels + p * channels + g * groupSize;
        for (let j = 0; j < groupSize; j++) {
          const c = g * groupSize + j;
          const xHat = (heap[xo + offset + j] - mu) * rstd;
          const dxHat = heap[dyo + offset + j] * heap[go + c];
          heap[dxo + offset + j] = rstd * (dxHat - meanDxHat - xHat * meanDxHatXHat);
        }
      }
    }
  }
  return [dx, dGamma, dBeta];
};

/** The group-norm kernels for the wasm backend, by kernel name. */
export function makeGroupNormKernels(): Map<string, tf.KernelFunc> {
  return new Map([[groupNormKernelName, forwardKernel], [groupNormGradKernelName, backwardKernel]]);
}

function composite(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  groups: number,
  epsilon: number,
): tf.Tensor {
  return tf.tidy(() => {
    const { batch, positions, channels, groupSize } = layoutOf(x.shape, groups);
    const grouped = tf.reshape(x, [batch, positions, groups, groupSize]);
    const { mean, variance } = tf.moments(grouped, [1, 3], true);
    const normal = tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, epsilon)));
    return tf.add(tf.mul(tf.reshape(normal, x.shape), gamma), beta);
  });
}

/**
 * Group normalisation of a channels-last tensor `[batch, ..., channels]`:
 * channels split into `groups` groups, each normalised over its channels and
 * all positions of an example, then scaled by `gamma` and shifted by `beta`
 * (both `[channels]`). Differentiable in all three inputs.
 */
export function groupNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  groups: number,
  epsilon = 1e-5,
): tf.Tensor {
  const channels = x.shape[x.rank - 1];
  if (x.rank < 2 || !Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
    throw new Error(
      `groupNorm: 'groups' (${groups}) must divide the channels (last axis, ${channels}) of x [${x.shape}]`,
    );
  }
  for (const [name, t] of [["gamma", gamma], ["beta", beta]] as const) {
    if (t.rank !== 1 || t.shape[0] !== channels) {
      throw new Error(`groupNorm: '${name}' has shape [${t.shape}], expected [${channels}]`);
    }
  }
  const fused = tf.getBackend() === "wasm" && tf.getKernel(groupNormKernelName, "wasm") &&
    x.dtype === "float32";
  if (!fused) return composite(x, gamma, beta, groups, epsilon);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, shift] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, inverseStd] = tf.engine().runKernel(
      groupNormKernelName,
      { x: input, gamma: scale, beta: shift },
      { groups, epsilon },
    ) as tf.Tensor[];
    save([input, scale, mean, inverseStd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedGamma, savedMean, savedInverseStd] = saved;
        return tf.engine().runKernel(
          groupNormGradKernelName,
          { dy, x: savedX, gamma: savedGamma, mean: savedMean, inverseStd: savedInverseStd },
          { groups },
        ) as tf.Tensor[];
      },
    };
  });
  return op(x, gamma, beta);
}
