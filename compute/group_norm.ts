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

/** The group of each channel. */
function groupIndex(channels: number, groupSize: number): Int32Array {
  const index = new Int32Array(channels);
  for (let c = 0; c < channels; c++) index[c] = Math.floor(c / groupSize);
  return index;
}

// Loops run over whole rows of channels (long, contiguous) and gather per-group
// sums through a channel → group table, rather than over the short runs of
// one group's channels.

// Forward: per (example, group) mean and 1/σ, then y = x·scale[c] + shift[c]
// with scale = γ/σ and shift = β − mean·γ/σ.
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
  const group = groupIndex(channels, groupSize);
  const count = positions * groupSize;
  const sums = new Float64Array(groups);
  const squares = new Float64Array(groups);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let n = 0; n < batch; n++) {
    const start = n * positions * channels;
    const end = start + positions * channels;
    sums.fill(0);
    for (let i = start, c = 0; i < end; i++) {
      sums[group[c]] += heap[xo + i];
      if (++c === channels) c = 0;
    }
    for (let g = 0; g < groups; g++) sums[g] /= count;
    squares.fill(0);
    for (let i = start, c = 0; i < end; i++) {
      const d = heap[xo + i] - sums[group[c]];
      squares[group[c]] += d * d;
      if (++c === channels) c = 0;
    }
    for (let g = 0; g < groups; g++) {
      const rstd = 1 / Math.sqrt(squares[g] / count + epsilon);
      heap[mo + n * groups + g] = sums[g];
      heap[so + n * groups + g] = rstd;
      squares[g] = rstd;
    }
    for (let c = 0; c < channels; c++) {
      scale[c] = heap[go + c] * squares[group[c]];
      shift[c] = heap[bo + c] - sums[group[c]] * scale[c];
    }
    for (let i = start, c = 0; i < end; i++) {
      heap[yo + i] = heap[xo + i] * scale[c] + shift[c];
      if (++c === channels) c = 0;
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
  const group = groupIndex(channels, groupSize);
  const count = positions * groupSize;
  const gammaSum = new Float64Array(channels);
  const betaSum = new Float64Array(channels);
  const mu = new Float64Array(channels);
  const rstd = new Float64Array(channels);
  const sumDxHat = new Float64Array(groups);
  const sumDxHatXHat = new Float64Array(groups);
  const a = new Float64Array(channels);
  const b = new Float64Array(channels);
  for (let n = 0; n < batch; n++) {
    const start = n * positions * channels;
    const end = start + positions * channels;
    for (let c = 0; c < channels; c++) {
      mu[c] = heap[mo + n * groups + group[c]];
      rstd[c] = heap[so + n * groups + group[c]];
    }
    sumDxHat.fill(0);
    sumDxHatXHat.fill(0);
    for (let i = start, c = 0; i < end; i++) {
      const gradient = heap[dyo + i];
      const xHat = (heap[xo + i] - mu[c]) * rstd[c];
      const dxHat = gradient * heap[go + c];
      sumDxHat[group[c]] += dxHat;
      sumDxHatXHat[group[c]] += dxHat * xHat;
      betaSum[c] += gradient;
      gammaSum[c] += gradient * xHat;
      if (++c === channels) c = 0;
    }
    // σ⁻¹(dy·γ − m₁ − (x − μ)σ⁻¹m₂) = dy·γ·σ⁻¹ + a[c]·x + b[c], with m₁, m₂ the
    // group means of dx̂ and dx̂·x̂.
    for (let c = 0; c < channels; c++) {
      const m1 = sumDxHat[group[c]] / count;
      const m2 = sumDxHatXHat[group[c]] / count;
      a[c] = -rstd[c] * rstd[c] * m2;
      b[c] = rstd[c] * (rstd[c] * mu[c] * m2 - m1);
    }
    for (let i = start, c = 0; i < end; i++) {
      heap[dxo + i] = heap[dyo + i] * heap[go + c] * rstd[c] + a[c] * heap[xo + i] + b[c];
      if (++c === channels) c = 0;
    }
  }
  for (let c = 0; c < channels; c++) {
    heap[dgo + c] = gammaSum[c];
    heap[dbo + c] = betaSum[c];
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
    const { batch, positions, groupSize } = layoutOf(x.shape, groups);
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
