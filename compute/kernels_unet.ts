/**
 * The denoiser's 1-D U-Net (diffusion/unet1d.ts) as one kernel forward and
 * one kernel backward on the wasm heap, written on a {@link HeapGemm}.
 *
 * Composed of TF.js ops, one training step of the two-level U-Net of the
 * `quick` preset runs over four hundred kernels (convolutions, their
 * reshapes and saved copies, GroupNorms, the broadcast adds, pooling,
 * upsampling and concatenations, and their gradients, each with the
 * engine's and the gradient tape's bookkeeping), and every convolution
 * builds its column matrix twice (forward and for the filter gradient).
 * Here the forward pass is one call that keeps what the backward pass reads
 * in one workspace tensor (column matrices included), and the backward pass
 * is one call; upsampling and concatenation are folded into the filling of
 * the next convolution's column matrix (compute/rows.ts).
 *
 * The arithmetic is the TF.js composition's, operation for operation (the
 * same products, bias and GroupNorm loops); a few sums are taken in another
 * order (bias gradients, a gradient reaching a tensor by several paths), and
 * the noise embedding's sines, cosines and sigmoids are computed in float64
 * and then rounded, so results agree to float32 rounding, not bit for bit.
 * diffusion/unet1d.ts's composition of ops stays the specification, and
 * tests hold the two together. The passes are compute/unet_forward.ts and
 * compute/unet_backward.ts; where their buffers lie, compute/unet_plan.ts.
 *
 * Parameters are the kernel's inputs, named as diffusion/unet1d.ts names
 * them (`embed.0.w`, `down0.conv0.b`, `up0.norm1.gamma`, …).
 *
 * @module
 */
import type { tf } from "./tf.ts";
import type { HeapGemm } from "./gemm.ts";
import { asWasmBackend, floatOffset, release, type WasmBackend } from "./heap.ts";
import { heapLoops } from "./simd.ts";
import { backwardPass } from "./unet_backward.ts";
import { forwardPass } from "./unet_forward.ts";
import { makeBackwardPlan, makePlan, type UNetKernelShape } from "./unet_plan.ts";

export type { UNetKernelShape };

type TensorInfo = tf.TensorInfo;

/**
 * The kernels' arithmetic version: models they train are cached apart from
 * the op path's and from earlier versions' (diffusion/train_or_load.ts).
 * Bump it whenever a change here, in a loop they call, or in the training
 * step around them (diffusion/edm.ts's `edmLossAndGradients`) changes a
 * result's rounding.
 */
export const unetKernelsVersion = 1;

/** Kernel name of the forward pass. */
export const unetForwardKernelName = "PgdUNetForward";
/** Kernel name of the backward pass. */
export const unetBackwardKernelName = "PgdUNetBackward";

/** Attributes of the forward kernel. */
export interface UNetForwardAttrs extends UNetKernelShape {
  /**
   * Also return the workspace the backward kernel reads (as a second
   * output); without it the batch runs in chunks of bounded memory.
   */
  save: boolean;
}

/** Attributes of the backward kernel. */
export interface UNetBackwardAttrs extends UNetKernelShape {
  /** Parameter names, in the order their gradients are returned. */
  names: string[];
}

/**
 * Floats of forward workspace per chunk when nothing is saved (64 MB):
 * sampling runs batches of hundreds of windows, whose whole workspace would
 * take gigabytes at the paper's sizes.
 */
let chunkFloats = 1 << 24;

/** Sets the workspace bound of forward passes that save nothing (tests make it small); returns the previous one. */
export function setUNetChunkFloats(floats: number): number {
  const previous = chunkFloats;
  chunkFloats = floats;
  return previous;
}

/** Heap offsets of the named inputs that are not `reserved` (the parameters). */
function offsetsOf(
  backend: WasmBackend,
  inputs: tf.NamedTensorInfoMap,
  reserved: readonly string[],
): Map<string, number> {
  const offsets = new Map<string, number>();
  for (const [name, info] of Object.entries(inputs)) {
    if (!reserved.includes(name)) offsets.set(name, floatOffset(backend, info as TensorInfo));
  }
  return offsets;
}

function shapeOf(attrs: UNetKernelShape): UNetKernelShape {
  const { rowWidth, features, numBlocks, trajectoryLength, normPerStep, groups, epsilon } = attrs;
  return { rowWidth, features, numBlocks, trajectoryLength, normPerStep, groups, epsilon };
}

/** Forward kernel: `x` `[batch, length, rowWidth]`, `cNoise` `[batch]`, the parameters by name. */
export function makeUNetForward(gemm: HeapGemm): tf.KernelFunc {
  return (args) => {
    const attrs = args.attrs as unknown as UNetForwardAttrs;
    const shape = shapeOf(attrs);
    const backend = asWasmBackend(args.backend);
    const inputs = args.inputs as tf.NamedTensorInfoMap;
    const x = inputs.x as TensorInfo;
    const batch = x.shape[0];
    const out = backend.makeOutput([batch, shape.trajectoryLength, shape.rowWidth], "float32");
    const perExample = makePlan(shape, 1).size;
    const chunk = attrs.save
      ? batch
      : Math.max(1, Math.min(batch, Math.floor(chunkFloats / perExample)));
    const workspace = backend.makeOutput([makePlan(shape, chunk).size], "float32");
    // Offsets are read after the last allocation (which may move the heap's views, not offsets).
    const param = offsetsOf(backend, inputs, ["x", "cNoise"]);
    const ws = floatOffset(backend, workspace);
    const loops = heapLoops(backend);
    const windowFloats = shape.trajectoryLength * shape.rowWidth;
    const [xOffset, cNoiseOffset, outOffset] = [x, inputs.cNoise as TensorInfo, out].map((t) =>
      floatOffset(backend, t)
    );
    for (let start = 0; start < batch; start += chunk) {
      const plan = makePlan(shape, Math.min(chunk, batch - start));
      forwardPass(
        { backend, gemm, loops, shape, plan, ws, param },
        xOffset + start * windowFloats,
        cNoiseOffset + start,
        outOffset + start * windowFloats,
      );
    }
    if (attrs.save) return [out, workspace];
    release(backend, workspace);
    return out;
  };
}

/**
 * Backward kernel. Inputs: `dy` (the output's gradient), `cNoise`, the
 * `workspace` the forward kernel saved, and the parameters by name.
 * Outputs: the gradients of `x` and `cNoise`, then of every parameter in
 * the order of `names`.
 */
export function makeUNetBackward(gemm: HeapGemm): tf.KernelFunc {
  return (args) => {
    const attrs = args.attrs as unknown as UNetBackwardAttrs;
    const shape = shapeOf(attrs);
    const backend = asWasmBackend(args.backend);
    const inputs = args.inputs as tf.NamedTensorInfoMap;
    const dy = inputs.dy as TensorInfo;
    const batch = dy.shape[0];
    const plan = makePlan(shape, batch);
    const b = makeBackwardPlan(shape, plan);
    const dx = backend.makeOutput([...dy.shape], "float32");
    const dCNoise = backend.makeOutput([batch], "float32");
    const gradients = attrs.names.map((name) =>
      backend.makeOutput([...(inputs[name] as TensorInfo).shape], "float32")
    );
    const scratch = backend.makeOutput([b.size], "float32");
    const reserved = ["dy", "cNoise", "workspace"];
    const grad = new Map(attrs.names.map((name, i) => [name, floatOffset(backend, gradients[i])]));
    backwardPass(
      {
        backend,
        gemm,
        loops: heapLoops(backend),
        shape,
        plan,
        ws: floatOffset(backend, inputs.workspace as TensorInfo),
        param: offsetsOf(backend, inputs, reserved),
        s: floatOffset(backend, scratch),
        b,
        grad,
      },
      floatOffset(backend, dy),
      floatOffset(backend, inputs.cNoise as TensorInfo),
      floatOffset(backend, dx),
      floatOffset(backend, dCNoise),
    );
    release(backend, scratch);
    return [dx, dCNoise, ...gradients];
  };
}

/** Both U-Net kernels on `gemm`, by kernel name. */
export function makeUNetKernels(gemm: HeapGemm): Map<string, tf.KernelFunc> {
  return new Map([
    [unetForwardKernelName, makeUNetForward(gemm)],
    [unetBackwardKernelName, makeUNetBackward(gemm)],
  ]);
}
