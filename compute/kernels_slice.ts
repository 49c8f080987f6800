/**
 * `Slice` and `SplitV` for the wasm backend as block copies inside the heap.
 * The shipped `Slice` first copies the whole input out of the heap
 * (`readSync`), so splitting a flat parameter vector into n pieces, or the
 * gradient of a concatenation, copies the input n times.
 *
 * `Concat` copies each input's rows into place in one SIMD call.
 *
 * `Identity` shares its input's buffer, as the cpu backend's does, instead
 * of copying it: TF.js clones every tensor a custom gradient saves, so each
 * saved activation was a copy. Tensors are immutable, and the in-place
 * optimiser kernels give a variable its own buffer before writing it.
 *
 * @module
 */
import { tf } from "./tf.ts";
import { asWasmBackend, floatOffset, sizeOf, type WasmBackend } from "./heap.ts";
import { heapLoops } from "./simd.ts";

type TensorInfo = tf.TensorInfo;

const bytesPerElement: Partial<Record<tf.DataType, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
};

/** Copies the box `begin`/`size` of `x` into a new tensor, run by contiguous run. */
function sliceInto(
  backend: WasmBackend,
  x: TensorInfo,
  begin: number[],
  size: number[],
  elementBytes: number,
): TensorInfo {
  const out = backend.makeOutput([...size], x.dtype);
  const total = sizeOf(size);
  if (total === 0) return out;
  const rank = x.shape.length;
  const heap = backend.wasm.HEAPU8;
  const source = backend.dataIdMap.get(x.dataId).memoryOffset;
  const target = backend.dataIdMap.get(out.dataId).memoryOffset;
  // The innermost axes the box spans fully form one contiguous run together
  // with the first axis (from the end) it cuts.
  let firstRunAxis = rank - 1;
  while (firstRunAxis > 0 && size[firstRunAxis] === x.shape[firstRunAxis]) firstRunAxis--;
  const run = sizeOf(size.slice(firstRunAxis)) * elementBytes;
  const strides = new Array<number>(rank);
  let stride = elementBytes;
  for (let axis = rank - 1; axis >= 0; axis--) {
    strides[axis] = stride;
    stride *= x.shape[axis];
  }
  const index = begin.slice(0, firstRunAxis);
  const runs = sizeOf(size.slice(0, firstRunAxis));
  let written = target;
  for (let r = 0; r < runs; r++) {
    let from = source + begin[firstRunAxis] * strides[firstRunAxis];
    for (let axis = 0; axis < firstRunAxis; axis++) from += index[axis] * strides[axis];
    heap.copyWithin(written, from, from + run);
    written += run;
    // Advance the multi-index over the outer axes, last axis fastest.
    for (let axis = firstRunAxis - 1; axis >= 0; axis--) {
      index[axis]++;
      if (index[axis] < begin[axis] + size[axis]) break;
      index[axis] = begin[axis];
    }
  }
  return out;
}

/** The replacements for `Slice`, `SplitV`, `Identity` and `Concat`, deferring to the shipped ones for strings. */
export function makeSliceKernels(
  shipped: (name: string) => tf.KernelFunc,
): Map<string, tf.KernelFunc> {
  const shippedSlice = shipped("Slice");
  const shippedSplit = shipped("SplitV");
  const shippedIdentity = shipped("Identity");
  const slice: tf.KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const elementBytes = bytesPerElement[x.dtype];
    if (!elementBytes) return shippedSlice(args);
    const { begin, size } = args.attrs as unknown as { begin: number[]; size: number[] };
    const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    return sliceInto(asWasmBackend(args.backend), x, begin_, size_, elementBytes);
  };
  const splitV: tf.KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const elementBytes = bytesPerElement[x.dtype];
    if (!elementBytes) return shippedSplit(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as {
      numOrSizeSplits: number | number[];
      axis: number;
    };
    const splitAxis = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, splitAxis);
    const backend = asWasmBackend(args.backend);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((piece) => {
      const size = [...x.shape];
      size[splitAxis] = piece;
      const out = sliceInto(backend, x, begin, size, elementBytes);
      begin[splitAxis] += piece;
      return out;
    });
  };
  const identity: tf.KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === "string") return shippedIdentity(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
  const shippedConcat = shipped("Concat");
  const concat: tf.KernelFunc = (args) => {
    const inputs = args.inputs as unknown as TensorInfo[];
    if (inputs.some((t) => t.dtype !== "float32")) return shippedConcat(args);
    const { axis } = args.attrs as unknown as { axis: number | number[] };
    const concatAxis = tf.util.parseAxisParam(axis, inputs[0].shape)[0];
    const shapes = inputs.map((t) => t.shape);
    tf.backend_util.assertParamsConsistent(shapes, concatAxis);
    const outShape = tf.backend_util.computeOutShape(shapes, concatAxis);
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(outShape, "float32");
    // Each input is `outer` blocks of its part of the output's rows.
    const outer = sizeOf(outShape.slice(0, concatAxis));
    const rowLength = sizeOf(outShape.slice(concatAxis));
    const loops = heapLoops(backend);
    let start = floatOffset(backend, out);
    for (const input of inputs) {
      const length = sizeOf(input.shape.slice(concatAxis));
      if (length === 0 || outer === 0) continue;
      loops.copyBlocks(floatOffset(backend, input), length, start, rowLength, outer, length);
      start += length;
    }
    return out;
  };
  return new Map([
    ["Slice", slice],
    ["SplitV", splitV],
    ["Identity", identity],
    ["Concat", concat],
  ]);
}
