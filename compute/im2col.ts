/**
 * im2col and col2im for channels-last 2-D convolutions (1-D convolutions are
 * 2-D ones of height 1 in TF.js). A convolution becomes one product:
 * `columns[p, (fy * filterWidth + fx) * inChannels + c]` holds the input
 * value under filter tap (fy, fx), channel c, for output position p.
 *
 * @module
 */

/** The geometry of one convolution (the fields of TF.js's `Conv2DInfo` used here). */
export interface ConvGeometry {
  batchSize: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  padInfo: { top: number; left: number };
}

/** Rows of the column matrix: one per output position. */
export function columnRows(g: ConvGeometry): number {
  return g.batchSize * g.outHeight * g.outWidth;
}

/** Columns of the column matrix: one per filter tap and input channel. */
export function columnWidth(g: ConvGeometry): number {
  return g.filterHeight * g.filterWidth * g.inChannels;
}

/**
 * Whether the convolution is a plain product of the input with the filter
 * (1×1 filter, unit strides, no padding), so no column matrix is needed.
 */
export function isPointwise(g: ConvGeometry): boolean {
  return g.filterHeight === 1 && g.filterWidth === 1 && g.strideHeight === 1 &&
    g.strideWidth === 1 && g.padInfo.top === 0 && g.padInfo.left === 0;
}

/** Fills the column matrix at `columnsOffset` from the input at `inputOffset`. */
export function im2col(
  heap: Float32Array,
  inputOffset: number,
  g: ConvGeometry,
  columnsOffset: number,
): void {
  const channels = g.inChannels;
  const width = columnWidth(g);
  let row = columnsOffset;
  for (let b = 0; b < g.batchSize; b++) {
    const image = inputOffset + b * g.inHeight * g.inWidth * channels;
    for (let oy = 0; oy < g.outHeight; oy++) {
      for (let ox = 0; ox < g.outWidth; ox++) {
        let column = row;
        for (let fy = 0; fy < g.filterHeight; fy++) {
          const iy = oy * g.strideHeight - g.padInfo.top + fy * g.dilationHeight;
          for (let fx = 0; fx < g.filterWidth; fx++) {
            const ix = ox * g.strideWidth - g.padInfo.left + fx * g.dilationWidth;
            if (iy < 0 || iy >= g.inHeight || ix < 0 || ix >= g.inWidth) {
              heap.fill(0, column, column + channels);
            } else {
              const from = image + (iy * g.inWidth + ix) * channels;
              heap.copyWithin(column, from, from + channels);
            }
            column += channels;
          }
        }
        row += width;
      }
    }
  }
}

/**
 * Adds the column matrix at `columnsOffset` back onto an input-shaped tensor
 * at `inputOffset` (the adjoint of {@link im2col}); the target must be zeroed.
 */
export function col2im(
  heap: Float32Array,
  columnsOffset: number,
  g: ConvGeometry,
  inputOffset: number,
): void {
  const channels = g.inChannels;
  const width = columnWidth(g);
  let row = columnsOffset;
  for (let b = 0; b < g.batchSize; b++) {
    const image = inputOffset + b * g.inHeight * g.inWidth * channels;
    for (let oy = 0; oy < g.outHeight; oy++) {
      for (let ox = 0; ox < g.outWidth; ox++) {
        let column = row;
        for (let fy = 0; fy < g.filterHeight; fy++) {
          const iy = oy * g.strideHeight - g.padInfo.top + fy * g.dilationHeight;
          for (let fx = 0; fx < g.filterWidth; fx++) {
            const ix = ox * g.strideWidth - g.padInfo.left + fx * g.dilationWidth;
            if (iy >= 0 && iy < g.inHeight && ix >= 0 && ix < g.inWidth) {
              const to = image + (iy * g.inWidth + ix) * channels;
              for (let c = 0; c < channels; c++) heap[to + c] += heap[column + c];
            }
            column += channels;
          }
        }
        row += width;
      }
    }
  }
}
