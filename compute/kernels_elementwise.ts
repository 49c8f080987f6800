/**
 * Element-wise kernels and reductions over leading axes for the wasm backend,
 * as TypeScript loops over the heap, where they beat the shipped kernels at
 * training sizes: tanh (the shipped one is several times slower than a
 * rational approximation), minimum and maximum (a slow generic path), and
 * sums and means over the batch axis (bias gradients; the shipped kernels
 * transpose first). The shipped same-shape and broadcast arithmetic, ReLU and
 * step are SIMD and faster than scalar TypeScript, so they stay. Shapes not
 * covered here go to the shipped kernels.
 *
 * @module
 */
import type { tf } from "./tf.ts";
import { asWasmBackend, floatOffset, heapF32, sizeOf } from "./heap.ts";
import { heapLoops } from "./simd.ts";

type TensorInfo = tf.TensorInfo;

/**
 * How two shapes broadcast, in the cases covered here: equal sizes, one side a
 * single value, or one side a row repeated over the other's leading axes.
 */
interface Broadcast {
  outShape: number[];
  rows: number;
  rowLength: number;
  /** Per side: 0 = full tensor, 1 = one value, 2 = one row. */
  kindA: 0 | 1 | 2;
  kindB: 0 | 1 | 2;
}

function broadcastShapes(a: number[], b: number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Whether `shape`, right-aligned against `out`, is 1 everywhere but its last axis. */
function isRowOf(shape: number[], out: number[]): boolean {
  const last = out[out.length - 1];
  if (shape.length === 0 || shape[shape.length - 1] !== last) return false;
  for (let i = 0; i < shape.length - 1; i++) if (shape[i] !== 1) return false;
  return true;
}

function classify(a: number[], b: number[]): Broadcast | undefined {
  const outShape = broadcastShapes(a, b);
  if (!outShape) return undefined;
  const total = sizeOf(outShape);
  const rowLength = outShape.length === 0 ? 1 : outShape[outShape.length - 1];
  const kind = (shape: number[]): 0 | 1 | 2 | undefined => {
    const size = sizeOf(shape);
    if (size === total) return 0;
    if (size === 1) return 1;
    if (isRowOf(shape, outShape)) return 2;
    return undefined;
  };
  const kindA = kind(a);
  const kindB = kind(b);
  if (kindA === undefined || kindB === undefined) return undefined;
  return { outShape, rows: rowLength === 0 ? 0 : total / rowLength, rowLength, kindA, kindB };
}

function makeBinary(name: "Maximum" | "Minimum", shipped: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== "float32" || b.dtype !== "float32") return shipped(args);
    const plan = classify(a.shape, b.shape);
    if (!plan) return shipped(args);
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(plan.outShape, "float32");
    const loops = heapLoops(backend);
    const loop = name === "Maximum" ? loops.maximum : loops.minimum;
    const outOffset = floatOffset(backend, out);
    const aOffset = floatOffset(backend, a);
    const bOffset = floatOffset(backend, b);
    const total = plan.rows * plan.rowLength;
    if (plan.kindA !== 2 && plan.kindB !== 2) {
      loop(aOffset, plan.kindA === 0 ? 1 : 0, bOffset, plan.kindB === 0 ? 1 : 0, outOffset, total);
      return out;
    }
    const strideA = plan.kindA === 1 ? 0 : 1;
    const strideB = plan.kindB === 1 ? 0 : 1;
    for (let row = 0; row < plan.rows; row++) {
      const start = row * plan.rowLength;
      loop(
        aOffset + (plan.kindA === 0 ? start : 0),
        strideA,
        bOffset + (plan.kindB === 0 ? start : 0),
        strideB,
        outOffset + start,
        plan.rowLength,
      );
    }
    return out;
  };
}

/**
 * tanh as a rational function of odd degree 13 over even degree 6, clamped
 * where float32 tanh is ±1: within a few float32 ulps, and several times
 * faster than `Math.tanh`.
 */
function tanhApprox(input: number): number {
  const x = Math.max(-7.90531110763549805, Math.min(7.90531110763549805, input));
  const x2 = x * x;
  let p = -2.76076847742355e-16;
  p = p * x2 + 2.00018790482477e-13;
  p = p * x2 - 8.60467152213735e-11;
  p = p * x2 + 5.12229709037114e-8;
  p = p * x2 + 1.48572235717979e-5;
  p = p * x2 + 6.37261928875436e-4;
  p = p * x2 + 4.89352455891786e-3;
  let q = 1.19825839466702e-6;
  q = q * x2 + 1.18534705686654e-4;
  q = q * x2 + 2.26843463243900e-3;
  q = q * x2 + 4.89352518554385e-3;
  return (x * p) / q;
}

type UnaryLoop = (
  heap: Float32Array,
  out: number,
  x: number,
  length: number,
  alpha: number,
) => void;

const unaryLoops: Record<string, UnaryLoop> = {
  Tanh: (h, o, x, n) => {
    for (let i = 0; i < n; i++) h[o + i] = tanhApprox(h[x + i]);
  },
};

function makeUnary(name: string, shipped: tf.KernelFunc): tf.KernelFunc {
  const loop = unaryLoops[name];
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== "float32") return shipped(args);
    const alpha = (args.attrs as { alpha?: number } | undefined)?.alpha ?? 0;
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput([...x.shape], "float32");
    loop(
      heapF32(backend),
      floatOffset(backend, out),
      floatOffset(backend, x),
      sizeOf(x.shape),
      alpha,
    );
    return out;
  };
}

function normalisedAxes(axis: number | number[], rank: number): number[] {
  const list = Array.isArray(axis) ? axis : [axis];
  return [...new Set(list.map((a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
}

/** Sum or mean over the leading axes (`[0]`, `[0, 1]`, …), which the shipped kernels transpose for. */
function makeLeadingReduction(mean: boolean, shipped: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as {
      axis: number | number[];
      keepDims: boolean;
    };
    const rank = x.shape.length;
    if (x.dtype !== "float32" || rank < 2) return shipped(args);
    const axes = normalisedAxes(axis, rank);
    const leading = axes.length;
    if (leading === 0 || leading >= rank || axes.some((a, i) => a !== i)) return shipped(args);
    const rows = sizeOf(x.shape.slice(0, leading));
    const rowLength = sizeOf(x.shape.slice(leading));
    const outShape = keepDims
      ? x.shape.map((d, i) => (i < leading ? 1 : d))
      : x.shape.slice(leading);
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(outShape, "float32");
    const o = floatOffset(backend, out);
    const xOffset = floatOffset(backend, x);
    if (rows === 0) {
      heapF32(backend).fill(mean ? NaN : 0, o, o + rowLength);
      return out;
    }
    heapLoops(backend).sumRows(xOffset, 1, rows, rowLength, o);
    if (mean && rows > 0) {
      const heap = heapF32(backend);
      const scale = 1 / rows;
      for (let j = 0; j < rowLength; j++) heap[o + j] *= scale;
    }
    return out;
  };
}

/** `out[o + i] = a[i * strideA] ⊙ b[i * strideB]` as 0/1 bytes, for i < length. */
type CompareLoop = (
  out: Uint8Array,
  o: number,
  a: Float32Array | Int32Array,
  ai: number,
  strideA: number,
  b: Float32Array | Int32Array,
  bi: number,
  strideB: number,
  length: number,
) => void;

const compareLoops: Record<string, CompareLoop> = {
  Equal: (out, o, a, ai, sa, b, bi, sb, n) => {
    for (let i = 0; i < n; i++) out[o + i] = Number(a[ai + i * sa] === b[bi + i * sb]);
  },
  NotEqual: (out, o, a, ai, sa, b, bi, sb, n) => {
    for (let i = 0; i < n; i++) out[o + i] = Number(a[ai + i * sa] !== b[bi + i * sb]);
  },
  Greater: (out, o, a, ai, sa, b, bi, sb, n) => {
    for (let i = 0; i < n; i++) out[o + i] = Number(a[ai + i * sa] > b[bi + i * sb]);
  },
  GreaterEqual: (out, o, a, ai, sa, b, bi, sb, n) => {
    for (let i = 0; i < n; i++) out[o + i] = Number(a[ai + i * sa] >= b[bi + i * sb]);
  },
  Less: (out, o, a, ai, sa, b, bi, sb, n) => {
    for (let i = 0; i < n; i++) out[o + i] = Number(a[ai + i * sa] < b[bi + i * sb]);
  },
  LessEqual: (out, o, a, ai, sa, b, bi, sb, n) => {
    for (let i = 0; i < n; i++) out[o + i] = Number(a[ai + i * sa] <= b[bi + i * sb]);
  },
};

/** Element strides of `shape` broadcast against `outShape` (0 along broadcast axes). */
function broadcastStrides(shape: number[], outShape: number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const axis = outShape.length - shape.length + i;
    strides[axis] = shape[i] === 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

/**
 * Comparisons (the shipped ones walk broadcasts element by element through a
 * generic index path, thousands of times slower than a strided loop).
 */
function makeComparison(name: string, shipped: tf.KernelFunc): tf.KernelFunc {
  const loop = compareLoops[name];
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== b.dtype || (a.dtype !== "float32" && a.dtype !== "int32")) {
      return shipped(args);
    }
    const outShape = broadcastShapes(a.shape, b.shape);
    if (!outShape) return shipped(args);
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(outShape, "bool");
    const total = sizeOf(outShape);
    if (total === 0) return out;
    const buffer = backend.wasm.HEAPU8.buffer;
    const view = a.dtype === "float32" ? new Float32Array(buffer) : new Int32Array(buffer);
    const bytes = backend.wasm.HEAPU8;
    const aStart = floatOffset(backend, a);
    const bStart = floatOffset(backend, b);
    const outStart = backend.dataIdMap.get(out.dataId).memoryOffset;
    const rank = outShape.length;
    if (rank === 0) {
      loop(bytes, outStart, view, aStart, 0, view, bStart, 0, 1);
      return out;
    }
    const stridesA = broadcastStrides(a.shape, outShape);
    const stridesB = broadcastStrides(b.shape, outShape);
    const inner = outShape[rank - 1];
    const index = new Array<number>(rank - 1).fill(0);
    for (let o = 0; o < total; o += inner) {
      let ai = aStart;
      let bi = bStart;
      for (let axis = 0; axis < rank - 1; axis++) {
        ai += index[axis] * stridesA[axis];
        bi += index[axis] * stridesB[axis];
      }
      loop(bytes, outStart + o, view, ai, stridesA[rank - 1], view, bi, stridesB[rank - 1], inner);
      for (let axis = rank - 2; axis >= 0; axis--) {
        if (++index[axis] < outShape[axis]) break;
        index[axis] = 0;
      }
    }
    return out;
  };
}

/** The element-wise replacements, by kernel name, each deferring to the shipped kernel. */
export function makeElementwiseKernels(
  shipped: (name: string) => tf.KernelFunc,
): Map<string, tf.KernelFunc> {
  const kernels = new Map<string, tf.KernelFunc>();
  for (const name of ["Maximum", "Minimum"] as const) {
    kernels.set(name, makeBinary(name, shipped(name)));
  }
  for (const name of Object.keys(unaryLoops)) kernels.set(name, makeUnary(name, shipped(name)));
  for (const name of Object.keys(compareLoops)) {
    kernels.set(name, makeComparison(name, shipped(name)));
  }
  kernels.set("Sum", makeLeadingReduction(false, shipped("Sum")));
  kernels.set("Mean", makeLeadingReduction(true, shipped("Mean")));
  return kernels;
}
