/**
 * `Conv2D`, `FusedConv2D`, `Conv2DBackpropInput` and `Conv2DBackpropFilter`
 * for the wasm backend as im2col + one product on a {@link HeapGemm}. TF.js's
 * 1-D convolutions and all convolution gradients go through these.
 * Channels-first layouts are left to the shipped kernels.
 *
 * @module
 */
import { tf } from "./tf.ts";
import { heapLoops } from "./simd.ts";
import type { HeapGemm } from "./gemm.ts";
import {
  addBiasRowsAndActivate,
  type FusedActivation,
  isHandledActivation,
} from "./activations.ts";
import { asWasmBackend, floatOffset, heapF32, release, sizeOf, type WasmBackend } from "./heap.ts";
import { col2im, columnRows, columnWidth, type ConvGeometry, isPointwise } from "./im2col.ts";

type TensorInfo = tf.TensorInfo;

interface ConvAttrs {
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
  activation?: string;
  leakyreluAlpha?: number;
  inputShape?: [number, number, number, number];
  filterShape?: [number, number, number, number];
}

function geometry(
  inputShape: number[],
  filterShape: number[],
  attrs: ConvAttrs,
  dilations: number | [number, number],
): ConvGeometry {
  return tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
}

/** Runs `body` with a scratch column matrix (or the input itself when pointwise). */
function withColumns(
  backend: WasmBackend,
  g: ConvGeometry,
  body: (columnsOffset: number) => void,
  fill?: (columnsOffset: number) => void,
): void {
  const scratch = backend.makeOutput([columnRows(g), columnWidth(g)], "float32");
  const offset = floatOffset(backend, scratch);
  fill?.(offset);
  body(offset);
  release(backend, scratch);
}

function forward(
  gemm: HeapGemm,
  backend: WasmBackend,
  x: TensorInfo,
  filter: TensorInfo,
  g: ConvGeometry,
  out: TensorInfo,
  beta: number,
): void {
  const rows = columnRows(g);
  const width = columnWidth(g);
  const filterOffset = floatOffset(backend, filter);
  const outOffset = floatOffset(backend, out);
  const multiply = (columnsOffset: number) =>
    gemm(
      backend,
      false,
      false,
      rows,
      g.outChannels,
      width,
      columnsOffset,
      width,
      filterOffset,
      g.outChannels,
      beta,
      outOffset,
      g.outChannels,
    );
  if (isPointwise(g)) {
    multiply(floatOffset(backend, x));
    return;
  }
  withColumns(backend, g, multiply, (columns) => {
    heapLoops(backend).im2col(g, floatOffset(backend, x), columns);
  });
}

function outputShape(g: ConvGeometry): number[] {
  return [g.batchSize, g.outHeight, g.outWidth, g.outChannels];
}

function isFloat(...infos: (TensorInfo | undefined)[]): boolean {
  return infos.every((info) => info === undefined || info.dtype === "float32");
}

/** Whether a convolution is 1-D along the width with unit stride (the U-Net case). */
function isUnitStrideRow(g: ConvGeometry): boolean {
  return g.inHeight === 1 && g.filterHeight === 1 && g.strideWidth === 1 && g.strideHeight === 1;
}

/**
 * The input gradient of a unit-stride 1-D convolution as one product per
 * filter tap, accumulated in place, instead of a column matrix scattered back
 * element by element. With o = i + sₜ for tap t (sₜ = padLeft − t·dilation),
 * dx[i] = Σₜ dy[i + sₜ]·Wₜᵀ. Laid out with `margin` zero rows around each
 * example's rows, every shifted read stays inside that example's block, so
 * each tap is a single product over all rows of the batch.
 */
function backpropInputRow(
  gemm: HeapGemm,
  backend: WasmBackend,
  dyOffset: number,
  filterOffset: number,
  g: ConvGeometry,
  dxOffset: number,
): void {
  const shifts = Array.from(
    { length: g.filterWidth },
    (_, tap) => g.padInfo.left - tap * g.dilationWidth,
  );
  const margin = Math.max(...shifts.map(Math.abs));
  const block = Math.max(g.inWidth, g.outWidth) + 2 * margin;
  const rows = g.batchSize * block;
  const dyPadded = backend.makeOutput([rows, g.outChannels], "float32");
  const dxPadded = backend.makeOutput([rows, g.inChannels], "float32");
  const dyp = floatOffset(backend, dyPadded);
  const dxp = floatOffset(backend, dxPadded);
  const loops = heapLoops(backend);
  heapF32(backend).fill(0, dyp, dyp + rows * g.outChannels);
  const dyRun = g.outWidth * g.outChannels;
  loops.copyBlocks(
    dyOffset,
    dyRun,
    dyp + margin * g.outChannels,
    block * g.outChannels,
    g.batchSize,
    dyRun,
  );
  const tapSize = g.inChannels * g.outChannels;
  shifts.forEach((shift, tap) => {
    gemm(
      backend,
      false,
      true,
      rows - 2 * margin,
      g.inChannels,
      g.outChannels,
      dyp + (margin + shift) * g.outChannels,
      g.outChannels,
      filterOffset + tap * tapSize,
      g.outChannels,
      tap === 0 ? 0 : 1,
      dxp + margin * g.inChannels,
      g.inChannels,
    );
  });
  const dxRun = g.inWidth * g.inChannels;
  loops.copyBlocks(
    dxp + margin * g.inChannels,
    block * g.inChannels,
    dxOffset,
    dxRun,
    g.batchSize,
    dxRun,
  );
  release(backend, dyPadded);
  release(backend, dxPadded);
}

/**
 * The convolution kernels. With `onGemm` false only the gradients are built
 * (the shipped `Conv2DBackpropInput` is a direct loop, tens of times slower
 * than a product; `Conv2DBackpropFilter` is missing); the shipped XNNPACK
 * forward kernels stay.
 */
export function makeConvKernels(
  gemm: HeapGemm,
  shipped: (name: string) => tf.KernelFunc | undefined,
  onGemm: boolean,
): Map<string, tf.KernelFunc | undefined> {
  const kernels = new Map<string, tf.KernelFunc | undefined>();
  const unsupported = (name: string) => () => {
    throw new Error(
      `compute: '${name}' on the wasm backend supports channels-last (NHWC) float32 tensors only`,
    );
  };
  const fallback = (name: string): tf.KernelFunc => shipped(name) ?? unsupported(name);

  const conv2d: tf.KernelFunc = (args) => {
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs;
    if (attrs.dataFormat === "NCHW" || !isFloat(x, filter)) return fallback("Conv2D")(args);
    const backend = asWasmBackend(args.backend);
    const g = geometry(x.shape, filter.shape, attrs, attrs.dilations ?? 1);
    const out = backend.makeOutput(outputShape(g), "float32");
    forward(gemm, backend, x, filter, g, out, 0);
    return out;
  };

  const fusedConv2d: tf.KernelFunc = (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as {
      x: TensorInfo;
      filter: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const attrs = args.attrs as unknown as ConvAttrs;
    if (
      attrs.dataFormat === "NCHW" || !isFloat(x, filter, bias) || preluActivationWeights ||
      !isHandledActivation(attrs.activation)
    ) {
      return fallback("FusedConv2D")(args);
    }
    const g = geometry(x.shape, filter.shape, attrs, attrs.dilations ?? 1);
    const biasSize = bias ? sizeOf(bias.shape) : 0;
    if (bias && biasSize !== 1 && biasSize !== g.outChannels) return fallback("FusedConv2D")(args);
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(outputShape(g), "float32");
    const outOffset = floatOffset(backend, out);
    const total = sizeOf(out.shape);
    const activation = attrs.activation as FusedActivation | undefined;
    const rowBias = bias !== undefined && biasSize === g.outChannels;
    if (bias && !rowBias) {
      const heap = heapF32(backend);
      heap.fill(heap[floatOffset(backend, bias)], outOffset, outOffset + total);
    }
    forward(gemm, backend, x, filter, g, out, bias && !rowBias ? 1 : 0);
    addBiasRowsAndActivate(
      backend,
      outOffset,
      rowBias ? bias : undefined,
      { stride: 0, members: 1, rows: total / g.outChannels, cols: g.outChannels },
      activation,
      attrs.leakyreluAlpha,
    );
    return out;
  };

  const backpropInput: tf.KernelFunc = (args) => {
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs;
    if (attrs.dataFormat === "NCHW" || !isFloat(dy, filter) || !attrs.inputShape) {
      return fallback("Conv2DBackpropInput")(args);
    }
    const backend = asWasmBackend(args.backend);
    const g = geometry(attrs.inputShape, filter.shape, attrs, 1);
    const dx = backend.makeOutput([...attrs.inputShape], "float32");
    const dxOffset = floatOffset(backend, dx);
    const dyOffset = floatOffset(backend, dy);
    const filterOffset = floatOffset(backend, filter);
    const rows = columnRows(g);
    const width = columnWidth(g);
    // dColumns = dy · filterᵀ, with the filter read as a [width, outChannels] matrix.
    const multiply = (target: number) =>
      gemm(
        backend,
        false,
        true,
        rows,
        width,
        g.outChannels,
        dyOffset,
        g.outChannels,
        filterOffset,
        g.outChannels,
        0,
        target,
        width,
      );
    if (isPointwise(g)) {
      multiply(dxOffset);
      return dx;
    }
    if (isUnitStrideRow(g)) {
      backpropInputRow(gemm, backend, dyOffset, filterOffset, g, dxOffset);
      return dx;
    }
    withColumns(backend, g, (columns) => {
      multiply(columns);
      const heap = heapF32(backend);
      heap.fill(0, dxOffset, dxOffset + sizeOf(attrs.inputShape!));
      col2im(heap, columns, g, dxOffset);
    });
    return dx;
  };

  const backpropFilter: tf.KernelFunc = (args) => {
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs;
    if (attrs.dataFormat === "NCHW" || !isFloat(x, dy) || !attrs.filterShape) {
      return fallback("Conv2DBackpropFilter")(args);
    }
    const backend = asWasmBackend(args.backend);
    const g = geometry(x.shape, attrs.filterShape, attrs, 1);
    const dw = backend.makeOutput([...attrs.filterShape], "float32");
    const dwOffset = floatOffset(backend, dw);
    const dyOffset = floatOffset(backend, dy);
    const rows = columnRows(g);
    const width = columnWidth(g);
    // dFilter = columnsᵀ · dy, a [width, outChannels] matrix.
    const multiply = (columns: number) =>
      gemm(
        backend,
        true,
        false,
        width,
        g.outChannels,
        rows,
        columns,
        width,
        dyOffset,
        g.outChannels,
        0,
        dwOffset,
        g.outChannels,
      );
    if (isPointwise(g)) {
      multiply(floatOffset(backend, x));
      return dw;
    }
    withColumns(backend, g, multiply, (columns) => {
      heapLoops(backend).im2col(g, floatOffset(backend, x), columns);
    });
    return dw;
  };

  kernels.set("Conv2DBackpropFilter", backpropFilter);
  kernels.set("Conv2DBackpropInput", backpropInput);
  if (onGemm) {
    kernels.set("Conv2D", conv2d);
    kernels.set("FusedConv2D", fusedConv2d);
  }
  return kernels;
}
