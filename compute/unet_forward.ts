/**
 * The forward pass of the whole-network U-Net kernels (compute/kernels_unet.ts)
 * on the heap, step for step as diffusion/unet1d.ts composes it from TF.js
 * ops: the same products, bias passes and GroupNorm loops, with nearest ×2
 * upsampling and the skip concatenation folded into the filling of the next
 * convolution's column matrix (compute/rows.ts).
 *
 * @module
 */
import type { HeapGemm } from "./gemm.ts";
import { heapF32, type WasmBackend } from "./heap.ts";
import type { GroupNormShape, HeapLoops } from "./simd.ts";
import { paddingBefore, type RowColumns } from "./rows.ts";
import {
  type Conv,
  type Level,
  type Plan,
  skipOf,
  type UNetKernelShape,
  type Weighted,
  weighted,
} from "./unet_plan.ts";

/** What every step of a pass reads: the backend, its loops and product, the sizes, the parameters. */
export interface Context {
  /** The wasm backend whose heap holds everything. */
  backend: WasmBackend;
  /** Products. */
  gemm: HeapGemm;
  /** Element-wise loops. */
  loops: HeapLoops;
  /** Network sizes. */
  shape: UNetKernelShape;
  /** Buffer offsets, relative to {@link ws}. */
  plan: Plan;
  /** Workspace base offset (floats). */
  ws: number;
  /** Heap offsets of the parameters by name. */
  param: ReadonlyMap<string, number>;
}

/** Heap offset of parameter `name` (named as diffusion/unet1d.ts names them). */
export function parameter(c: Context, name: string): number {
  const offset = c.param.get(name);
  if (offset === undefined) throw new Error(`U-Net kernels: no parameter '${name}'`);
  return offset;
}

/** `out = a·b (+ out)`, row-major, no transposes: the common case, spelled short. */
export function product(
  c: Context,
  m: number,
  n: number,
  k: number,
  a: number,
  b: number,
  out: number,
  accumulate = false,
): void {
  c.gemm(c.backend, false, false, m, n, k, a, k, b, n, accumulate ? 1 : 0, out, n);
}

/** Frequencies of the sinusoidal noise features, float32 as diffusion/unet1d.ts's `noiseFeatures` makes them. */
export function frequencies(count: number): Float32Array {
  const half = count / 2;
  const out = new Float32Array(half);
  for (let k = 0; k < half; k++) out[k] = Math.exp((-Math.log(10000) * k) / half);
  return out;
}

/** Geometry of one part of a convolution's column matrix at `level`. */
export function columnsOf(
  c: Context,
  level: Level,
  conv: Conv,
  part: { channels: number; offset?: number; repeat?: number },
): RowColumns {
  return {
    batch: c.plan.batch,
    length: level.length,
    repeat: part.repeat ?? 1,
    channels: part.channels,
    taps: conv.taps,
    before: paddingBefore(conv.taps),
    total: conv.total,
    offset: part.offset ?? 0,
  };
}

/** The GroupNorm loops' view of a level: per window, or per step as windows of one step. */
export function normShape(c: Context, level: Level): GroupNormShape {
  const perStep = c.shape.normPerStep;
  return {
    batch: c.plan.batch * (perStep ? level.length : 1),
    positions: perStep ? 1 : level.length,
    channels: level.width,
    groupSize: level.width / c.shape.groups,
    epsilon: c.shape.epsilon,
    relu: true,
  };
}

/**
 * `swish(z) = z·sigmoid(z)` over `count` values at `z`, keeping the sigmoid
 * at `s` for the backward pass. Float32 stores round each step as
 * `tf.mul(z, tf.sigmoid(z))` does.
 */
function swish(c: Context, z: number, s: number, out: number, count: number): void {
  const heap = heapF32(c.backend);
  for (let i = 0; i < count; i++) {
    heap[s + i] = 1 / (1 + Math.exp(-heap[z + i]));
    heap[out + i] = heap[z + i] * heap[s + i];
  }
}

/** The dense layers outside the levels. */
export const denseLayers = {
  embed0: weighted("embed.0"),
  embed1: weighted("embed.1"),
  /** The final 1×1 convolution, a dense layer on every step. */
  out: weighted("out"),
};

/** `out = a·W + b` for the dense `layer`. */
function dense(
  c: Context,
  layer: Weighted,
  rows: number,
  n: number,
  k: number,
  a: number,
  out: number,
) {
  product(c, rows, n, k, a, parameter(c, layer.weight), out);
  c.loops.biasActivation(out, parameter(c, layer.bias), 0, 1, rows, n, false);
}

/** The noise embedding `swish(dense(swish(dense(features(c_noise)))))` and every level's projection of it. */
function embedForward(c: Context, cNoise: number): void {
  const { plan, ws, shape } = c;
  const { batch } = plan;
  const { features: count, feat, z0, s0, a0, z1, s1, e } = plan.embed;
  const F = shape.features;
  const freq = frequencies(count);
  const half = count / 2;
  const heap = heapF32(c.backend);
  for (let b = 0; b < batch; b++) {
    for (let k = 0; k < half; k++) {
      const angle = Math.fround(heap[cNoise + b] * freq[k]);
      heap[ws + feat + b * count + k] = Math.sin(angle);
      heap[ws + feat + b * count + half + k] = Math.cos(angle);
    }
  }
  dense(c, denseLayers.embed0, batch, F, count, ws + feat, ws + z0);
  swish(c, ws + z0, ws + s0, ws + a0, batch * F);
  dense(c, denseLayers.embed1, batch, F, F, ws + a0, ws + z1);
  swish(c, ws + z1, ws + s1, ws + e, batch * F);
  for (const level of [...plan.down, ...plan.up]) {
    dense(c, level.noise, batch, level.width, F, ws + e, ws + level.noise.projection);
  }
}

/**
 * Convolution `i` of `level` from its filled column matrix, plus its bias
 * (and after conv0 the noise projection, one row per example), then
 * GroupNorm and ReLU.
 */
function convNormForward(c: Context, level: Level, i: number): void {
  const { ws, plan, loops } = c;
  const conv = level.convs[i];
  const norm = level.norms[i];
  const x = ws + norm.x;
  const width = conv.taps * conv.total;
  product(c, level.rows, conv.output, width, ws + conv.columns, parameter(c, conv.weight), x);
  loops.biasActivation(x, parameter(c, conv.bias), 0, 1, level.rows, conv.output, false);
  if (i === 0) {
    const { projection } = level.noise;
    loops.biasActivation(
      x,
      ws + projection,
      level.width,
      plan.batch,
      level.length,
      level.width,
      false,
    );
  }
  loops.groupNormForward(normShape(c, level), {
    x,
    gamma: parameter(c, norm.gamma),
    beta: parameter(c, norm.beta),
    y: ws + norm.y,
    mean: ws + norm.mean,
    inverseStd: ws + norm.inverseStd,
    scratch: ws + plan.normScratch,
  });
}

/** The whole forward pass for `plan.batch` examples at `x`, `cNoise`, into `out`. */
export function forwardPass(c: Context, x: number, cNoise: number, out: number): void {
  const { ws, plan, loops, shape } = c;
  const fill = (level: Level, i: number, source: number, part: Parameters<typeof columnsOf>[3]) =>
    loops.im2colRows(
      columnsOf(c, level, level.convs[i], part),
      source,
      ws + level.convs[i].columns,
    );
  embedForward(c, cNoise);
  let input = x;
  let channels = shape.rowWidth;
  for (const level of plan.down) {
    fill(level, 0, input, { channels });
    convNormForward(c, level, 0);
    fill(level, 1, ws + level.norms[0].y, { channels: level.width });
    convNormForward(c, level, 1);
    input = ws + level.norms[1].y;
    channels = level.width;
    if (level.pooled !== undefined) {
      loops.maxPairs(input, level.rows / 2, level.width, ws + level.pooled);
      input = ws + level.pooled;
    }
  }
  plan.up.forEach((level, i) => {
    const skip = plan.down[skipOf(plan, i)];
    // Nearest ×2 upsampling folded into conv0's column matrix.
    fill(level, 0, input, { channels, repeat: 2 });
    convNormForward(c, level, 0);
    // The concatenation [h, skip] folded into conv1's column matrix, one part each.
    fill(level, 1, ws + level.norms[0].y, { channels: level.width });
    fill(level, 1, ws + skip.norms[1].y, { channels: level.width, offset: level.width });
    convNormForward(c, level, 1);
    fill(level, 2, ws + level.norms[1].y, { channels: level.width });
    convNormForward(c, level, 2);
    input = ws + level.norms[2].y;
    channels = level.width;
  });
  dense(
    c,
    denseLayers.out,
    plan.batch * shape.trajectoryLength,
    shape.rowWidth,
    channels,
    input,
    out,
  );
}
