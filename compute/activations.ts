/**
 * Fused activations applied in place to a range of the heap, branch-free
 * (a data-dependent branch per element costs more than the arithmetic).
 *
 * @module
 */
import type { tf } from "./tf.ts";
import { floatOffset, heapF32, type WasmBackend } from "./heap.ts";
import { heapLoops } from "./simd.ts";

/** The activations that fused kernels handle here (TF.js's names). */
export type FusedActivation = "linear" | "relu" | "relu6" | "elu" | "leakyrelu" | "sigmoid";

/** Whether a TF.js fused activation name is handled by {@link applyActivation}. */
export function isHandledActivation(name: string | undefined): name is FusedActivation {
  return name === undefined || name === "linear" || name === "relu" || name === "relu6" ||
    name === "elu" || name === "leakyrelu" || name === "sigmoid";
}

/**
 * ReLU on the bits of float32 values (viewed as int32): a set sign bit
 * (negative numbers, -0) clears the whole word to +0. Branch-free and free of
 * float conversions, about ten times faster than `Math.max(x, 0)`.
 */
export function reluInPlace(bits: Int32Array, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    const v = bits[i];
    bits[i] = v & ~(v >> 31);
  }
}

/** Applies `activation` to `heap[start, end)` in place. */
export function applyActivation(
  heap: Float32Array,
  start: number,
  end: number,
  activation: FusedActivation | undefined,
  leakyreluAlpha = 0.2,
): void {
  switch (activation) {
    case undefined:
    case "linear":
      return;
    case "relu":
      reluInPlace(new Int32Array(heap.buffer, heap.byteOffset, heap.length), start, end);
      return;
    case "relu6":
      for (let i = start; i < end; i++) heap[i] = Math.min(Math.max(heap[i], 0), 6);
      return;
    case "leakyrelu":
      for (let i = start; i < end; i++) {
        const x = heap[i];
        heap[i] = Math.max(x, 0) + leakyreluAlpha * Math.min(x, 0);
      }
      return;
    case "elu":
      for (let i = start; i < end; i++) {
        const x = heap[i];
        heap[i] = Math.max(x, 0) + Math.expm1(Math.min(x, 0));
      }
      return;
    case "sigmoid":
      for (let i = start; i < end; i++) heap[i] = 1 / (1 + Math.exp(-heap[i]));
      return;
  }
}

/**
 * The end of a fused product or convolution: `members` blocks of
 * `rows × cols` outputs at heap offset `out` get a bias row added (the
 * bias's `[stride·m, stride·m + cols)` for block `m`; stride 0: one row for
 * all), then `activation`. A ReLU goes in the same pass as the bias; other
 * activations follow it. Without `bias`, only the activation runs.
 */
export function addBiasRowsAndActivate(
  backend: WasmBackend,
  out: number,
  bias: tf.TensorInfo | undefined,
  layout: { stride: number; members: number; rows: number; cols: number },
  activation: FusedActivation | undefined,
  leakyreluAlpha?: number,
): void {
  const { stride, members, rows, cols } = layout;
  const reluWithBias = bias !== undefined && activation === "relu";
  if (bias) {
    heapLoops(backend).biasActivation(
      out,
      floatOffset(backend, bias),
      stride,
      members,
      rows,
      cols,
      reluWithBias,
    );
  }
  if (!reluWithBias) {
    applyActivation(heapF32(backend), out, out + members * rows * cols, activation, leakyreluAlpha);
  }
}
