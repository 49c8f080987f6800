/**
 * `BatchMatMul` and `_FusedMatMul` for the wasm backend, written on a
 * {@link HeapGemm} (native BLAS or the backend's own XNNPACK product).
 * Their gradients, which TF.js expresses as further (transposed) matMuls,
 * come back through these kernels.
 *
 * @module
 */
import type { tf } from "./tf.ts";
import type { HeapGemm } from "./gemm.ts";
import {
  addBiasRowsAndActivate,
  type FusedActivation,
  isHandledActivation,
} from "./activations.ts";
import { asWasmBackend, floatOffset, heapF32, sizeOf, type WasmBackend } from "./heap.ts";

type TensorInfo = tf.TensorInfo;

/** The sizes of one (batched) product, after TF.js's broadcasting rules. */
interface ProductShape {
  m: number;
  n: number;
  k: number;
  batchA: number;
  batchB: number;
  batch: number;
  outShape: number[];
}

function broadcastOuter(a: number[], b: number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(Math.max(da, db));
  }
  return out;
}

/**
 * The product's sizes, or `undefined` where the batch dimensions broadcast
 * in a way a strided loop cannot express (left to the shipped kernel).
 */
function productShape(
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): ProductShape | undefined {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kB = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  if (k !== kB) return undefined;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outer = broadcastOuter(outerA, outerB);
  if (!outer) return undefined;
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const batch = sizeOf(outer);
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return undefined;
  return { m, n, k, batchA, batchB, batch, outShape: [...outer, m, n] };
}

function multiplyInto(
  gemm: HeapGemm,
  backend: WasmBackend,
  a: TensorInfo,
  b: TensorInfo,
  out: TensorInfo,
  shape: ProductShape,
  transposeA: boolean,
  transposeB: boolean,
  beta: number,
): void {
  const { m, n, k, batchA, batchB, batch } = shape;
  const aOffset = floatOffset(backend, a);
  const bOffset = floatOffset(backend, b);
  const outOffset = floatOffset(backend, out);
  if (k === 0) {
    if (beta === 0) heapF32(backend).fill(0, outOffset, outOffset + batch * m * n);
    return;
  }
  for (let i = 0; i < batch; i++) {
    gemm(
      backend,
      transposeA,
      transposeB,
      m,
      n,
      k,
      aOffset + (batchA === 1 ? 0 : i * m * k),
      transposeA ? m : k,
      bOffset + (batchB === 1 ? 0 : i * k * n),
      transposeB ? k : n,
      beta,
      outOffset + i * m * n,
      n,
    );
  }
}

/**
 * Decides, per call, whether the shipped kernel is the better choice (for the
 * pure-wasm path: untransposed single matrices, which XNNPACK handles well).
 */
export type PreferShipped = (
  transposeA: boolean,
  transposeB: boolean,
  batchA: number,
  batchB: number,
) => boolean;

/** Never prefer the shipped kernel (the BLAS path). */
export const neverShipped: PreferShipped = () => false;

/** Prefer the shipped kernel for its fast case: untransposed single matrices. */
export const shippedWhenPlain: PreferShipped = (transposeA, transposeB, batchA, batchB) =>
  !transposeA && !transposeB && batchA === 1 && batchB === 1;

/** A `BatchMatMul` kernel on `gemm`, deferring to `shipped` where it must or should. */
export function makeBatchMatMul(
  gemm: HeapGemm,
  shipped: tf.KernelFunc,
  preferShipped: PreferShipped,
): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as {
      transposeA: boolean;
      transposeB: boolean;
    };
    if (a.dtype !== "float32" || b.dtype !== "float32") return shipped(args);
    const shape = productShape(a, b, transposeA, transposeB);
    if (!shape || preferShipped(transposeA, transposeB, shape.batchA, shape.batchB)) {
      return shipped(args);
    }
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(shape.outShape, "float32");
    multiplyInto(gemm, backend, a, b, out, shape, transposeA, transposeB, 0);
    return out;
  };
}

/**
 * How a bias broadcasts over the [batch, m, n] output, in the cases handled
 * here: one value, one row for all, or one row per batch entry (shape
 * [batch, 1, n], a stack of networks each with its own bias).
 */
function biasLayout(
  bias: TensorInfo,
  batch: number,
  n: number,
): "value" | "row" | "batchRow" | undefined {
  const size = sizeOf(bias.shape);
  if (size === 1) return "value";
  const rank = bias.shape.length;
  if (bias.shape[rank - 1] !== n) return undefined;
  if (size === n) return "row";
  if (rank === 3 && bias.shape[0] === batch && bias.shape[1] === 1) return "batchRow";
  return undefined;
}

/** A `_FusedMatMul` kernel (product, bias, activation) on `gemm`. */
export function makeFusedMatMul(
  gemm: HeapGemm,
  shipped: tf.KernelFunc,
  preferShipped: PreferShipped,
): tf.KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as {
      a: TensorInfo;
      b: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as unknown as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    if (
      a.dtype !== "float32" || b.dtype !== "float32" || preluActivationWeights ||
      !isHandledActivation(activation) || (bias && bias.dtype !== "float32")
    ) {
      return shipped(args);
    }
    const shape = productShape(a, b, transposeA, transposeB);
    const layout = shape && bias ? biasLayout(bias, shape.batch, shape.n) : undefined;
    // The shipped kernel takes rank-1 biases only; other row biases stay here.
    const shippedTakesBias = !bias || bias.shape.length === 1;
    if (
      !shape || (bias && !layout) ||
      (shippedTakesBias && preferShipped(transposeA, transposeB, shape.batchA, shape.batchB))
    ) {
      return shipped(args);
    }
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(shape.outShape, "float32");
    const outOffset = floatOffset(backend, out);
    const total = shape.batch * shape.m * shape.n;
    // A single bias value is filled in before the product; bias rows are added
    // after it, with a ReLU in the same pass (as in the convolution kernel).
    const rowBias = bias !== undefined && layout !== "value";
    if (bias && !rowBias) {
      const heap = heapF32(backend);
      heap.fill(heap[floatOffset(backend, bias)], outOffset, outOffset + total);
    }
    multiplyInto(gemm, backend, a, b, out, shape, transposeA, transposeB, bias && !rowBias ? 1 : 0);
    const perBatch = layout === "batchRow";
    addBiasRowsAndActivate(
      backend,
      outOffset,
      rowBias ? bias : undefined,
      {
        stride: perBatch ? shape.n : 0,
        members: perBatch ? shape.batch : 1,
        rows: perBatch ? shape.m : shape.batch * shape.m,
        cols: shape.n,
      },
      activation as FusedActivation | undefined,
      leakyreluAlpha,
    );
    return out;
  };
}
