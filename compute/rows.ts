/**
 * 1-D convolutions over channels-last rows (`[batch, length, channels]`),
 * "same" padding and unit stride, as the denoiser's U-Net runs them
 * (compute/kernels_unet.ts): the column matrix with a nearest ×2 upsampling
 * and a concatenation along channels folded into its filling, its adjoint,
 * and max-pooling by 2 with its gradient. These are the TypeScript twins of
 * the SIMD loops in compute/simd/kernels.c (see compute/simd.ts), loop for
 * loop; offsets and counts are in floats.
 *
 * @module
 */

/**
 * Where one part of a convolution's input sits in its column matrix. Row
 * `b·length + o` of the matrix holds, per tap `t`, a block of `total`
 * channels: the input at step `o + t − before` (zeros outside the window),
 * this part's `channels` of them starting `offset` into the block.
 */
export interface RowColumns {
  /** Examples. */
  batch: number;
  /** Steps per example (of the convolution's input and output). */
  length: number;
  /** Times each stored step is read in a row (2: nearest ×2 upsampling); 1 for the adjoint. */
  repeat: number;
  /** Channels of this part. */
  channels: number;
  /** Filter taps. */
  taps: number;
  /** Zero steps padded before the window (`⌊(taps − 1)/2⌋` for TF's "same"). */
  before: number;
  /** Channels of a tap's block (all parts together). */
  total: number;
  /** Where this part starts inside a tap's block. */
  offset: number;
}

/** TF's "same" padding before the window for a filter of `taps` taps. */
export function paddingBefore(taps: number): number {
  return Math.floor((taps - 1) / 2);
}

/** Fills this part of the column matrix at `columns` from the input at `source`. */
export function im2colRows(
  heap: Float32Array,
  source: number,
  g: RowColumns,
  columns: number,
): void {
  const stored = g.length / g.repeat;
  for (let b = 0; b < g.batch; b++) {
    const example = source + b * stored * g.channels;
    for (let o = 0; o < g.length; o++) {
      const row = columns + (b * g.length + o) * g.taps * g.total + g.offset;
      for (let t = 0; t < g.taps; t++) {
        const q = o + t - g.before;
        const to = row + t * g.total;
        if (q < 0 || q >= g.length) heap.fill(0, to, to + g.channels);
        else {
          const from = example + Math.floor(q / g.repeat) * g.channels;
          heap.copyWithin(to, from, from + g.channels);
        }
      }
    }
  }
}

/**
 * The adjoint of {@link im2colRows} (with `repeat` 1): writes to `out` the
 * sum over taps, in ascending order, of this part of the column matrix.
 */
export function col2imRows(
  heap: Float32Array,
  columns: number,
  g: RowColumns,
  out: number,
): void {
  for (let b = 0; b < g.batch; b++) {
    for (let i = 0; i < g.length; i++) {
      const target = out + (b * g.length + i) * g.channels;
      heap.fill(0, target, target + g.channels);
      for (let t = 0; t < g.taps; t++) {
        const o = i - t + g.before;
        if (o < 0 || o >= g.length) continue;
        const source = columns + (b * g.length + o) * g.taps * g.total + t * g.total + g.offset;
        for (let c = 0; c < g.channels; c++) heap[target + c] += heap[source + c];
      }
    }
  }
}

/** Max-pooling by 2 along the rows: `out[r] = max(x[2r], x[2r + 1])` per channel. */
export function maxPairs(
  heap: Float32Array,
  x: number,
  pairs: number,
  channels: number,
  out: number,
): void {
  for (let r = 0; r < pairs; r++) {
    const even = x + 2 * r * channels;
    for (let c = 0; c < channels; c++) {
      // Math.max propagates NaN, as the SIMD loop's max does.
      heap[out + r * channels + c] = Math.max(heap[even + c], heap[even + channels + c]);
    }
  }
}

/**
 * The gradient of {@link maxPairs} as TF.js routes Maximum's: `dy` to the
 * even row where `x[2r] ≥ x[2r + 1]`, else to the odd row; added to `dx`
 * when `accumulate` is set, else written.
 */
export function maxPairsBackward(
  heap: Float32Array,
  x: number,
  dy: number,
  pairs: number,
  channels: number,
  accumulate: boolean,
  dx: number,
): void {
  for (let r = 0; r < pairs; r++) {
    const even = x + 2 * r * channels;
    for (let c = 0; c < channels; c++) {
      const [a, b, g] = [heap[even + c], heap[even + channels + c], heap[dy + r * channels + c]];
      const [toEven, toOdd] = [a >= b ? g : 0, a < b ? g : 0];
      const [dEven, dOdd] = [dx + 2 * r * channels + c, dx + (2 * r + 1) * channels + c];
      heap[dEven] = accumulate ? heap[dEven] + toEven : toEven;
      heap[dOdd] = accumulate ? heap[dOdd] + toOdd : toOdd;
    }
  }
}
