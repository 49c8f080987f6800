/**
 * The backward pass of the whole-network U-Net kernels (compute/kernels_unet.ts)
 * on the heap: every gradient TF.js's tape forms for diffusion/unet1d.ts's
 * composition of ops, from the forward pass's workspace (column matrices,
 * GroupNorm inputs, outputs and statistics, the embedding's stages), with
 * each column matrix's gradient scattered back by compute/rows.ts's adjoint
 * (which also splits a concatenation's gradient into its parts).
 *
 * @module
 */
import { heapF32 } from "./heap.ts";
import {
  columnsOf,
  type Context,
  denseLayers,
  frequencies,
  normShape,
  parameter,
} from "./unet_forward.ts";
import { type BackwardPlan, type Level, skipOf, topOutput, type Weighted } from "./unet_plan.ts";

/** What the backward pass adds to a {@link Context}: its scratch, and where each gradient goes. */
export interface BackwardContext extends Context {
  /** Scratch base offset (floats). */
  s: number;
  /** Scratch offsets, relative to {@link s}. */
  b: BackwardPlan;
  /** Heap offsets of the parameters' gradients by name. */
  grad: ReadonlyMap<string, number>;
}

function gradient(c: BackwardContext, name: string): number {
  return c.grad.get(name)!;
}

/** `out = aᵀ·dy`: a weight's gradient from its layer's input `a` `[rows, k]` and output gradient `dy` `[rows, n]`. */
function weightGradient(
  c: BackwardContext,
  rows: number,
  k: number,
  n: number,
  a: number,
  dy: number,
  out: number,
): void {
  c.gemm(c.backend, true, false, k, n, rows, a, k, dy, n, 0, out, n);
}

/** `out (+)= dy·Wᵀ`: the gradient of a layer's input from its output gradient `dy` `[rows, n]` and weight `W` `[k, n]`. */
function inputGradient(
  c: BackwardContext,
  rows: number,
  k: number,
  n: number,
  dy: number,
  weight: number,
  out: number,
  accumulate = false,
): void {
  c.gemm(c.backend, false, true, rows, k, n, dy, n, weight, n, accumulate ? 1 : 0, out, k);
}

/**
 * Dense `layer` (`a` `[rows, k]` → `[rows, n]`) given its output's
 * gradient `dy`: its weight and bias gradients, and its input's gradient into
 * `input` when given (added to what is there with `accumulate`).
 */
function denseBackward(
  c: BackwardContext,
  layer: Weighted,
  rows: number,
  k: number,
  n: number,
  a: number,
  dy: number,
  input?: { out: number; accumulate: boolean },
): void {
  weightGradient(c, rows, k, n, a, dy, gradient(c, layer.weight));
  c.loops.sumRows(dy, 1, rows, n, gradient(c, layer.bias));
  if (input) {
    inputGradient(c, rows, k, n, dy, parameter(c, layer.weight), input.out, input.accumulate);
  }
}

/** `dy` through GroupNorm + ReLU `i` of `level`, into `dx`; its γ and β gradients. */
function normBackward(c: BackwardContext, level: Level, i: number, dy: number, dx: number): void {
  const norm = level.norms[i];
  c.loops.groupNormBackward(normShape(c, level), {
    dy,
    x: c.ws + norm.x,
    gamma: parameter(c, norm.gamma),
    mean: c.ws + norm.mean,
    inverseStd: c.ws + norm.inverseStd,
    y: c.ws + norm.y,
    dx,
    dGamma: gradient(c, norm.gamma),
    dBeta: gradient(c, norm.beta),
    scratch: c.ws + c.plan.normScratch,
  });
}

/**
 * Convolution `i` of `level` given its output's gradient `dy`: filter and
 * bias gradients, and its input's gradient scattered back from the column
 * matrix's, one part (`channels` at `offset`) into each of `parts`.
 */
function convBackward(
  c: BackwardContext,
  level: Level,
  i: number,
  dy: number,
  parts: { out: number; channels: number; offset?: number }[],
): void {
  const conv = level.convs[i];
  const width = conv.taps * conv.total;
  const columns = c.s + c.b.columns;
  denseBackward(c, conv, level.rows, width, conv.output, c.ws + conv.columns, dy, {
    out: columns,
    accumulate: false,
  });
  for (const { out, ...part } of parts) {
    c.loops.col2imRows(columnsOf(c, level, conv, part), columns, out);
  }
}

/**
 * The noise projection's gradients from `dy`, the gradient of conv0's
 * output (to which it was added per example), and its share of the
 * embedding's gradient (the first level writes it, the others add).
 */
function noiseBackward(c: BackwardContext, level: Level, dy: number, first: boolean): void {
  const { batch } = c.plan;
  const projection = c.s + c.b.projection;
  c.loops.sumRows(dy, batch, level.length, level.width, projection);
  const out = c.s + c.b.embed.de;
  const e = c.ws + c.plan.embed.e;
  denseBackward(c, level.noise, batch, c.shape.features, level.width, e, projection, {
    out,
    accumulate: !first,
  });
}

/**
 * `dz = dy·s + (dy·z)·(s·(1 − s))` over `count` values: swish's gradient as
 * TF.js's tape forms it for `tf.mul(z, tf.sigmoid(z))`, from the sigmoid
 * `s` kept by the forward pass, each step rounded to float32.
 */
function swishBackward(
  c: BackwardContext,
  dy: number,
  z: number,
  s: number,
  dz: number,
  count: number,
): void {
  const heap = heapF32(c.backend);
  const f32 = Math.fround;
  for (let i = 0; i < count; i++) {
    const g = heap[dy + i];
    const sigmoid = heap[s + i];
    heap[dz + i] = f32(g * sigmoid) + f32(f32(g * heap[z + i]) * f32(sigmoid * f32(1 - sigmoid)));
  }
}

/** From the embedding's gradient `de`: the embedding MLP's gradients and `c_noise`'s. */
function embedBackward(c: BackwardContext, cNoise: number, dCNoise: number): void {
  const { ws, s, plan, shape } = c;
  const { batch } = plan;
  const F = shape.features;
  const { features: count, feat, z0, s0, a0, z1, s1 } = plan.embed;
  const { de, dz1, da0, dz0, dfeat } = c.b.embed;
  swishBackward(c, s + de, ws + z1, ws + s1, s + dz1, batch * F);
  denseBackward(c, denseLayers.embed1, batch, F, F, ws + a0, s + dz1, {
    out: s + da0,
    accumulate: false,
  });
  swishBackward(c, s + da0, ws + z0, ws + s0, s + dz0, batch * F);
  denseBackward(c, denseLayers.embed0, batch, count, F, ws + feat, s + dz0, {
    out: s + dfeat,
    accumulate: false,
  });
  // sin′ = cos and cos′ = −sin, times each frequency, summed over them.
  const freq = frequencies(count);
  const half = count / 2;
  const heap = heapF32(c.backend);
  const f32 = Math.fround;
  for (let b = 0; b < batch; b++) {
    let sum = 0;
    for (let k = 0; k < half; k++) {
      const angle = f32(heap[cNoise + b] * freq[k]);
      const row = s + dfeat + b * count;
      const dAngle = f32(
        f32(heap[row + k] * f32(Math.cos(angle))) -
          f32(f32(Math.sin(angle)) * heap[row + half + k]),
      );
      sum = f32(sum + f32(dAngle * freq[k]));
    }
    heap[dCNoise + b] = sum;
  }
}

/** The whole backward pass from `dy`, the output's gradient, into `dx` and `dCNoise` and the parameters' gradients. */
export function backwardPass(
  c: BackwardContext,
  dy: number,
  cNoise: number,
  dx: number,
  dCNoise: number,
): void {
  const { ws, s, plan, shape, loops } = c;
  const rows = plan.batch * shape.trajectoryLength;
  const top = topOutput(plan);
  const g = s + c.b.g;
  const dNorm = s + c.b.dx;
  let first = true;
  const noise = (level: Level) => {
    noiseBackward(c, level, dNorm, first);
    first = false;
  };
  // The final 1×1 convolution reads the top output directly (no column matrix).
  denseBackward(c, denseLayers.out, rows, top.width, shape.rowWidth, ws + top.offset, dy, {
    out: g,
    accumulate: false,
  });
  // Up levels in the reverse of the order they ran.
  for (let i = plan.up.length - 1; i >= 0; i--) {
    const level = plan.up[i];
    const { width } = level;
    const inputs = level.convs[0].total;
    normBackward(c, level, 2, g, dNorm);
    convBackward(c, level, 2, dNorm, [{ out: g, channels: width }]);
    normBackward(c, level, 1, g, dNorm);
    // The concatenation's gradient: this level's part, and the skip's (its down level reads it).
    convBackward(c, level, 1, dNorm, [
      { out: g, channels: width },
      { out: s + c.b.skips[skipOf(plan, i)], channels: width, offset: width },
    ]);
    normBackward(c, level, 0, g, dNorm);
    noise(level);
    convBackward(c, level, 0, dNorm, [{ out: s + c.b.upsampled, channels: inputs }]);
    // Nearest ×2 upsampling's gradient: each stored step collects its two copies.
    loops.sumRows(s + c.b.upsampled, level.rows / 2, 2, inputs, g);
  }
  for (let l = plan.down.length - 1; l >= 0; l--) {
    const level = plan.down[l];
    let output = g;
    if (level.pooled !== undefined) {
      // The output feeds the pooling and (already back-propagated) an up level's concatenation.
      output = s + c.b.skips[l];
      loops.maxPairsBackward(ws + level.norms[1].y, g, level.rows / 2, level.width, true, output);
    }
    normBackward(c, level, 1, output, dNorm);
    convBackward(c, level, 1, dNorm, [{ out: g, channels: level.width }]);
    normBackward(c, level, 0, g, dNorm);
    noise(level);
    convBackward(c, level, 0, dNorm, [{ out: l === 0 ? dx : g, channels: level.convs[0].total }]);
  }
  embedBackward(c, cNoise, dCNoise);
}
