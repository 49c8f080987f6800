/**
 * Matrix products on the wasm heap, in two flavours with one signature: the
 * system BLAS (zero copies, views of the heap passed to `cblas_sgemm`), and
 * the wasm backend's own XNNPACK product, which is fast only for untransposed
 * single matrices, so operands are first copied into that layout.
 *
 * Every kernel built on products (matMul, fused matMul, convolutions) takes a
 * {@link HeapGemm}, so the same kernel code serves both paths.
 *
 * @module
 */
import type { tf } from "./tf.ts";
import type { Sgemm } from "./blas.ts";
import { allocate, floatOffset, heapF32, release, type WasmBackend } from "./heap.ts";
import { heapLoops, sgemmPackSize } from "./simd.ts";

/**
 * `c = op(a) op(b) + beta * c` on row-major matrices in the wasm heap, with
 * `op(a)` m×k and `op(b)` k×n. Offsets and leading dimensions are in floats.
 */
export type HeapGemm = (
  backend: WasmBackend,
  transposeA: boolean,
  transposeB: boolean,
  m: number,
  n: number,
  k: number,
  aOffset: number,
  lda: number,
  bOffset: number,
  ldb: number,
  beta: number,
  cOffset: number,
  ldc: number,
) => void;

/** A product on the heap that calls a native `cblas_sgemm` on views of it. */
export function blasHeapGemm(sgemm: Sgemm): HeapGemm {
  return (
    backend,
    transposeA,
    transposeB,
    m,
    n,
    k,
    aOffset,
    lda,
    bOffset,
    ldb,
    beta,
    cOffset,
    ldc,
  ) => {
    const heap = heapF32(backend);
    sgemm(
      transposeA,
      transposeB,
      m,
      n,
      k,
      1,
      heap.subarray(aOffset),
      lda,
      heap.subarray(bOffset),
      ldb,
      beta,
      heap.subarray(cOffset),
      ldc,
    );
  };
}

/**
 * A product on the heap through the wasm SIMD GEMM of compute/simd
 * (transposes absorbed by its packing, no copies of the operands), or
 * `undefined` where that module does not load on `backend`.
 */
export function simdHeapGemm(backend: WasmBackend): HeapGemm | undefined {
  const sgemm = heapLoops(backend).sgemm;
  if (!sgemm) return undefined;
  return (
    backend,
    transposeA,
    transposeB,
    m,
    n,
    k,
    aOffset,
    lda,
    bOffset,
    ldb,
    beta,
    cOffset,
    ldc,
  ) => {
    if (m === 0 || n === 0) return;
    const pack = allocate(backend, [sgemmPackSize(m, k)]);
    sgemm(
      transposeA,
      transposeB,
      m,
      n,
      k,
      aOffset,
      lda,
      bOffset,
      ldb,
      beta,
      cOffset,
      ldc,
      floatOffset(backend, pack),
    );
    release(backend, pack);
  };
}

/**
 * Copies an r×c matrix (or its transpose, giving c×r) from `source` into a
 * dense block at `target`, in tiles so that both sides stay in cache.
 */
export function copyMatrix(
  heap: Float32Array,
  sourceOffset: number,
  rows: number,
  cols: number,
  leading: number,
  transpose: boolean,
  targetOffset: number,
): void {
  if (!transpose) {
    if (leading === cols) {
      heap.copyWithin(targetOffset, sourceOffset, sourceOffset + rows * cols);
      return;
    }
    for (let i = 0; i < rows; i++) {
      const from = sourceOffset + i * leading;
      heap.copyWithin(targetOffset + i * cols, from, from + cols);
    }
    return;
  }
  transposeBlock(heap, sourceOffset, rows, cols, leading, heap, targetOffset);
}

const tile = 32;

/**
 * Writes the transpose of the rows×cols matrix at `source` (row stride
 * `leading`) densely into `target` as cols×rows.
 */
export function transposeBlock(
  source: Float32Array,
  sourceOffset: number,
  rows: number,
  cols: number,
  leading: number,
  target: Float32Array,
  targetOffset: number,
): void {
  for (let i0 = 0; i0 < rows; i0 += tile) {
    const i1 = Math.min(rows, i0 + tile);
    for (let j0 = 0; j0 < cols; j0 += tile) {
      const j1 = Math.min(cols, j0 + tile);
      for (let i = i0; i < i1; i++) {
        const from = sourceOffset + i * leading;
        for (let j = j0; j < j1; j++) target[targetOffset + j * rows + i] = source[from + j];
      }
    }
  }
}

/**
 * A product on the heap through the wasm backend's shipped `BatchMatMul`
 * kernel, given untransposed single matrices (its fast XNNPACK case):
 * operands are copied into that layout, and the result into `c`.
 */
export function wasmHeapGemm(shippedBatchMatMul: tf.KernelFunc): HeapGemm {
  return (
    backend,
    transposeA,
    transposeB,
    m,
    n,
    k,
    aOffset,
    lda,
    bOffset,
    ldb,
    beta,
    cOffset,
    ldc,
  ) => {
    if (m === 0 || n === 0) return;
    const aDense = allocate(backend, [1, m, k]);
    const bDense = allocate(backend, [1, k, n]);
    let heap = heapF32(backend);
    const aDenseOffset = floatOffset(backend, aDense);
    const bDenseOffset = floatOffset(backend, bDense);
    copyMatrix(
      heap,
      aOffset,
      transposeA ? k : m,
      transposeA ? m : k,
      lda,
      transposeA,
      aDenseOffset,
    );
    copyMatrix(
      heap,
      bOffset,
      transposeB ? n : k,
      transposeB ? k : n,
      ldb,
      transposeB,
      bDenseOffset,
    );
    const product = shippedBatchMatMul({
      inputs: { a: aDense, b: bDense },
      backend: backend as unknown as tf.KernelBackend,
      attrs: { transposeA: false, transposeB: false },
    }) as tf.TensorInfo;
    heap = heapF32(backend);
    const productOffset = floatOffset(backend, product);
    if (beta === 0) {
      copyMatrixTo(heap, productOffset, m, n, cOffset, ldc);
    } else {
      for (let i = 0; i < m; i++) {
        const c = cOffset + i * ldc;
        const p = productOffset + i * n;
        for (let j = 0; j < n; j++) heap[c + j] = heap[p + j] + beta * heap[c + j];
      }
    }
    release(backend, aDense);
    release(backend, bDense);
    release(backend, product);
  };
}

function copyMatrixTo(
  heap: Float32Array,
  sourceOffset: number,
  rows: number,
  cols: number,
  targetOffset: number,
  leading: number,
): void {
  if (leading === cols) {
    heap.copyWithin(targetOffset, sourceOffset, sourceOffset + rows * cols);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const from = sourceOffset + i * cols;
    heap.copyWithin(targetOffset + i * leading, from, from + cols);
  }
}
