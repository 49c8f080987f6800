/**
 * Typed access to the TF.js wasm backend's memory: tensors live in its heap,
 * and kernels read and write them in place through `Float32Array` views.
 *
 * Views must be taken after every allocation of a call (an allocation may
 * grow the memory and detach earlier views), and never kept across calls.
 *
 * @module
 */
import type { tf } from "./tf.ts";

type TensorInfo = tf.TensorInfo;
type DataType = tf.DataType;

/** What the kernels use of the wasm backend (its class is not exported as a type we can import). */
export interface WasmBackend {
  /** The Emscripten module; `HEAPF32` is replaced when memory grows. */
  wasm: { HEAPF32: Float32Array; HEAPU8: Uint8Array };
  /** Per-tensor records, `memoryOffset` in bytes. */
  dataIdMap: { get(dataId: object): { memoryOffset: number; shape: number[]; dtype: DataType } };
  /** Allocates an output tensor on the heap (uninitialised). */
  makeOutput(shape: number[], dtype: DataType, memoryOffset?: number): TensorInfo;
  /** Frees a tensor made by `makeOutput` that is not returned. */
  disposeData(dataId: object, force?: boolean): boolean;
}

/** The backend object handed to a kernel, as the wasm backend. */
export function asWasmBackend(backend: unknown): WasmBackend {
  return backend as WasmBackend;
}

/** The heap as floats; re-read on every use. */
export function heapF32(backend: WasmBackend): Float32Array {
  return backend.wasm.HEAPF32;
}

/** Offset, in floats, of a tensor's first element in {@link heapF32}. */
export function floatOffset(backend: WasmBackend, info: TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset >>> 2;
}

/** The number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}

/** Allocates a float32 tensor on the heap; the caller fills it. */
export function allocate(backend: WasmBackend, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, "float32");
}

/** Frees a scratch tensor made by {@link allocate}. */
export function release(backend: WasmBackend, info: TensorInfo): void {
  backend.disposeData(info.dataId);
}
