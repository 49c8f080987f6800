/**
 * Where the whole-network U-Net kernels (compute/kernels_unet.ts) keep their
 * tensors: every buffer of a pass as an offset into one heap allocation,
 * laid out once per batch size from the network's sizes, so that a pass
 * allocates once and reads nothing but offsets.
 *
 * @module
 */

/** Sizes of the network, as diffusion/unet1d.ts's `UNetConfig` gives them. */
export interface UNetKernelShape {
  /** Channels of a window row. */
  rowWidth: number;
  /** Width of the first level. */
  features: number;
  /** Levels. */
  numBlocks: number;
  /** Steps per window. */
  trajectoryLength: number;
  /** GroupNorm statistics per time step instead of per window. */
  normPerStep: boolean;
  /** Groups of every GroupNorm. */
  groups: number;
  /** Added to every GroupNorm's variance. */
  epsilon: number;
}

/** Hands out offsets in one buffer, each rounded up to 16 floats (64 bytes). */
class Arena {
  size = 0;
  take(floats: number): number {
    const at = this.size;
    this.size += Math.ceil(floats / 16) * 16;
    return at;
  }
}

/** The parameter names of a layer with a weight and a bias (a convolution, a dense layer). */
export interface Weighted {
  /** `…w`. */
  weight: string;
  /** `…b`. */
  bias: string;
}

/** The parameter names of layer `prefix` (`embed.0`, `down0.conv1`), as diffusion/unet1d.ts names them. */
export function weighted(prefix: string): Weighted {
  return { weight: `${prefix}.w`, bias: `${prefix}.b` };
}

/** A GroupNorm + ReLU, its parameters' names, and where its tensors live. */
export interface Norm {
  /** Scale parameter (`down0.norm1.gamma`). */
  gamma: string;
  /** Shift parameter. */
  beta: string;
  /** Input: the convolution's output, its bias (and the noise projection) added. */
  x: number;
  /** Output. */
  y: number;
  /** Mean per (example or step, group). */
  mean: number;
  /** 1/σ per (example or step, group). */
  inverseStd: number;
}

/** A convolution: weight `[taps, total, output]` and bias `[output]`. */
export interface Conv extends Weighted {
  /** Filter taps. */
  taps: number;
  /** Input channels (all parts of a concatenation together). */
  total: number;
  /** Output channels. */
  output: number;
  /** Its column matrix `[rows, taps·total]`. */
  columns: number;
}

/** One level of the network, down or up. */
export interface Level {
  /** Steps per example at this level. */
  length: number;
  /** `batch·length`. */
  rows: number;
  /** Channels at this level. */
  width: number;
  /** conv0, conv1 (and conv2 on the way up). */
  convs: Conv[];
  /** One per convolution, in the same order. */
  norms: Norm[];
  /** The noise embedding's dense layer and its projection `[batch, width]`, added after conv0. */
  noise: Weighted & { projection: number };
  /** Max-pooled output `[rows/2, width]` (down levels but the last). */
  pooled?: number;
}

/** The noise embedding's stages, each `[batch, features]` but `feat`. */
export interface EmbedPlan {
  /** Sinusoidal features per example (features/4). */
  features: number;
  /** `[batch, features/4]` sines then cosines of c_noise times each frequency. */
  feat: number;
  /** First dense layer's output, its sigmoid, and swish of it. */
  z0: number;
  s0: number;
  a0: number;
  /** Second dense layer's output, its sigmoid, and swish of it: the embedding. */
  z1: number;
  s1: number;
  e: number;
}

/** Offsets of everything the forward pass writes, for one batch size. */
export interface Plan {
  /** Examples. */
  batch: number;
  /** Floats of the workspace. */
  size: number;
  /** The noise embedding. */
  embed: EmbedPlan;
  /** Down levels, first to last. */
  down: Level[];
  /** Up levels in the order they run (level numBlocks − 2 first). */
  up: Level[];
  /** GroupNorm scratch (6·widest channels, the backward pass's need). */
  normScratch: number;
}

function levelWidth(shape: UNetKernelShape, level: number): number {
  return shape.features * 2 ** level;
}

/** Plans made, by shape and batch: a training run asks for the same few at every step. */
const plans = new Map<string, Plan>();

/**
 * The forward pass's buffers for `batch` examples (made once per shape and
 * batch, so the names in it are the same strings at every step, whose hashes
 * the parameter lookups then reuse).
 */
export function makePlan(shape: UNetKernelShape, batch: number): Plan {
  const key = `${JSON.stringify(shape)} ${batch}`;
  let plan = plans.get(key);
  if (!plan) {
    // A handful are live at a time (a training batch, a sampling chunk, its last part).
    if (plans.size >= 16) plans.clear();
    plan = layOut(shape, batch);
    plans.set(key, plan);
  }
  return plan;
}

function layOut(shape: UNetKernelShape, batch: number): Plan {
  const arena = new Arena();
  const { features, numBlocks, trajectoryLength, groups } = shape;
  const stage = () => arena.take(batch * features);
  const embed: EmbedPlan = {
    features: features / 4,
    feat: arena.take((batch * features) / 4),
    z0: stage(),
    s0: stage(),
    a0: stage(),
    z1: stage(),
    s1: stage(),
    e: stage(),
  };
  const level = (
    name: string,
    length: number,
    width: number,
    convs: [string, number, number][],
  ): Level => {
    const rows = batch * length;
    const statistics = batch * (shape.normPerStep ? length : 1) * groups;
    return {
      length,
      rows,
      width,
      convs: convs.map(([conv, taps, total]) => ({
        ...weighted(`${name}.${conv}`),
        taps,
        total,
        output: width,
        columns: arena.take(rows * taps * total),
      })),
      norms: convs.map((_, i) => ({
        gamma: `${name}.norm${i}.gamma`,
        beta: `${name}.norm${i}.beta`,
        x: arena.take(rows * width),
        y: arena.take(rows * width),
        mean: arena.take(statistics),
        inverseStd: arena.take(statistics),
      })),
      noise: { ...weighted(`${name}.noise`), projection: arena.take(batch * width) },
    };
  };
  const down: Level[] = [];
  let channels = shape.rowWidth;
  for (let l = 0; l < numBlocks; l++) {
    const width = levelWidth(shape, l);
    const d = level(`down${l}`, trajectoryLength / 2 ** l, width, [
      ["conv0", 3, channels],
      ["conv1", 3, width],
    ]);
    if (l < numBlocks - 1) d.pooled = arena.take((d.rows / 2) * width);
    down.push(d);
    channels = width;
  }
  const up: Level[] = [];
  for (let l = numBlocks - 2; l >= 0; l--) {
    const width = levelWidth(shape, l);
    up.push(level(`up${l}`, trajectoryLength / 2 ** l, width, [
      ["conv0", 2, channels],
      ["conv1", 3, 2 * width],
      ["conv2", 3, width],
    ]));
    channels = width;
  }
  const normScratch = arena.take(6 * levelWidth(shape, numBlocks - 1));
  return { batch, size: arena.size, embed, down, up, normScratch };
}

/** The down level whose output up level `plan.up[i]` concatenates (its skip connection). */
export function skipOf(plan: Plan, i: number): number {
  return plan.down.length - 2 - i;
}

/** The top level's output, which the final 1×1 convolution reads, and its width. */
export function topOutput(plan: Plan): { offset: number; width: number } {
  const last = plan.up.length ? plan.up[plan.up.length - 1] : plan.down[0];
  return { offset: last.norms[last.norms.length - 1].y, width: last.width };
}

/** Offsets of the backward pass's scratch, for one batch size. */
export interface BackwardPlan {
  /** Floats of the scratch. */
  size: number;
  /** Gradient with respect to a level's activation (each has batch·length·features floats). */
  g: number;
  /** Gradient with respect to a GroupNorm's input. */
  dx: number;
  /** Gradient with respect to a column matrix (room for the largest). */
  columns: number;
  /** Gradient with respect to an upsampled input, before its pairs are summed. */
  upsampled: number;
  /** Gradient with respect to each down level's output that an up level also reads (all but the last). */
  skips: number[];
  /** Gradient with respect to a noise projection. */
  projection: number;
  /** Gradients of the noise embedding's stages. */
  embed: { de: number; dz1: number; da0: number; dz0: number; dfeat: number };
}

/** The backward pass's scratch for the batch of `plan`. */
export function makeBackwardPlan(shape: UNetKernelShape, plan: Plan): BackwardPlan {
  const arena = new Arena();
  const { batch } = plan;
  const activation = batch * shape.trajectoryLength * shape.features;
  const levels = [...plan.down, ...plan.up];
  const largestColumns = Math.max(
    ...levels.flatMap((level) => level.convs.map((conv) => level.rows * conv.taps * conv.total)),
  );
  const F = shape.features;
  return {
    g: arena.take(activation),
    dx: arena.take(activation),
    columns: arena.take(largestColumns),
    upsampled: arena.take(2 * activation),
    skips: plan.down.slice(0, -1).map(() => arena.take(activation)),
    projection: arena.take(batch * Math.max(...levels.map((level) => level.width))),
    embed: {
      de: arena.take(batch * F),
      dz1: arena.take(batch * F),
      da0: arena.take(batch * F),
      dz0: arena.take(batch * F),
      dfeat: arena.take(batch * plan.embed.features),
    },
    size: arena.size,
  };
}
