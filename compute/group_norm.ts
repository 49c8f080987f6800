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
import { allocate, asWasmBackend, floatOffset, release, sizeOf } from "./heap.ts";
import { heapLoops } from "./simd.ts";

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

interface GroupNormAttrs {
  groups: number;
  epsilon: number;
  /** A ReLU after the affine map. */
  relu: boolean;
}

// Forward: per (example, group) mean and 1/σ, then y = x·scale[c] + shift[c]
// with scale = γ/σ and shift = β − mean·γ/σ, then the ReLU if asked
// (compute/simd/kernels.c).
const forwardKernel: tf.KernelFunc = (args) => {
  const { x, gamma, beta } = args.inputs as Record<string, TensorInfo>;
  const { groups, epsilon, relu } = args.attrs as unknown as GroupNormAttrs;
  const backend = asWasmBackend(args.backend);
  const { batch, positions, channels, groupSize } = layoutOf(x.shape, groups);
  const y = backend.makeOutput([...x.shape], "float32");
  const mean = backend.makeOutput([batch, groups], "float32");
  const inverseStd = backend.makeOutput([batch, groups], "float32");
  const scratch = allocate(backend, [4 * channels]);
  heapLoops(backend).groupNormForward({ batch, positions, channels, groupSize, epsilon, relu }, {
    x: floatOffset(backend, x),
    gamma: floatOffset(backend, gamma),
    beta: floatOffset(backend, beta),
    y: floatOffset(backend, y),
    mean: floatOffset(backend, mean),
    inverseStd: floatOffset(backend, inverseStd),
    scratch: floatOffset(backend, scratch),
  });
  release(backend, scratch);
  return [y, mean, inverseStd];
};

// Backward, with x̂ = (x − mean)/σ: dβ = Σ dy, dγ = Σ dy·x̂, and
// dx = (1/σ)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·γ, means per group.
const backwardKernel: tf.KernelFunc = (args) => {
  const { dy, x, gamma, mean, inverseStd, y } = args.inputs as Record<string, TensorInfo>;
  const { groups, relu } = args.attrs as unknown as GroupNormAttrs;
  const backend = asWasmBackend(args.backend);
  const { batch, positions, channels, groupSize } = layoutOf(x.shape, groups);
  const dx = backend.makeOutput([...x.shape], "float32");
  const dGamma = backend.makeOutput([channels], "float32");
  const dBeta = backend.makeOutput([channels], "float32");
  const scratch = allocate(backend, [6 * channels]);
  const shape = { batch, positions, channels, groupSize, epsilon: 0, relu };
  heapLoops(backend).groupNormBackward(shape, {
    dy: floatOffset(backend, dy),
    y: floatOffset(backend, relu ? y : dy),
    x: floatOffset(backend, x),
    gamma: floatOffset(backend, gamma),
    mean: floatOffset(backend, mean),
    inverseStd: floatOffset(backend, inverseStd),
    dx: floatOffset(backend, dx),
    dGamma: floatOffset(backend, dGamma),
    dBeta: floatOffset(backend, dBeta),
    scratch: floatOffset(backend, scratch),
  });
  release(backend, scratch);
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
  relu: boolean,
): tf.Tensor {
  return tf.tidy(() => {
    const { batch, positions, groupSize } = layoutOf(x.shape, groups);
    const grouped = tf.reshape(x, [batch, positions, groups, groupSize]);
    const { mean, variance } = tf.moments(grouped, [1, 3], true);
    const normal = tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, epsilon)));
    const y = tf.add(tf.mul(tf.reshape(normal, x.shape), gamma), beta);
    return relu ? tf.relu(y) : y;
  });
}

/** Options of {@link groupNorm}. */
export interface GroupNormOptions {
  /** Added to the variance (default 1e-5). */
  epsilon?: number;
  /** Apply a ReLU to the result, in the same kernel (default false). */
  relu?: boolean;
}

/**
 * Group normalisation of a channels-last tensor `[batch, ..., channels]`:
 * channels split into `groups` groups, each normalised over its channels and
 * all positions of an example, then scaled by `gamma` and shifted by `beta`
 * (both `[channels]`), then optionally a ReLU. Differentiable in all three
 * inputs.
 */
export function groupNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  groups: number,
  options: GroupNormOptions = {},
): tf.Tensor {
  const { epsilon = 1e-5, relu = false } = options;
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
  if (!fused) return composite(x, gamma, beta, groups, epsilon, relu);
  const attrs = { groups, epsilon, relu } satisfies GroupNormAttrs;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, shift] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, inverseStd] = tf.engine().runKernel(
      groupNormKernelName,
      { x: input, gamma: scale, beta: shift },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    save([input, scale, mean, inverseStd, ...(relu ? [y] : [])]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedGamma, savedMean, savedInverseStd, savedY] = saved;
        return tf.engine().runKernel(
          groupNormGradKernelName,
          {
            dy,
            x: savedX,
            gamma: savedGamma,
            mean: savedMean,
            inverseStd: savedInverseStd,
            ...(savedY ? { y: savedY } : {}),
          },
          attrs as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
      },
    };
  });
  return op(x, gamma, beta);
}
