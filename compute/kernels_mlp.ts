/**
 * A whole ReLU MLP (or a stack of same-shaped MLPs) as one kernel forward
 * and one kernel backward on the wasm heap, written on a {@link HeapGemm}.
 *
 * Composed of TF.js ops, one layer costs about ten kernel calls in training
 * (product, bias, activation, the saved copies, the activation mask, two or
 * three gradient products, the bias sum, reshapes), each with the engine's
 * bookkeeping; an actor–critic update makes over a hundred. Here a network's
 * forward pass is one call and its backward pass another, and the backward
 * pass issues only the products the caller asked for.
 *
 * Shapes: input `[members or 1, batch, inputDim]` (a leading 1 feeds every
 * member the same input), weights `[members, in, out]`, biases `[out]` (a
 * single network) or `[members, 1, out]`. Hidden layers are ReLU, the last
 * layer linear.
 *
 * @module
 */
import type { tf } from "./tf.ts";
import type { HeapGemm } from "./gemm.ts";
import { allocate, asWasmBackend, floatOffset, release, sizeOf } from "./heap.ts";
import { heapLoops } from "./simd.ts";

type TensorInfo = tf.TensorInfo;

/** Kernel name of the fused forward pass. */
export const mlpForwardKernelName = "PgdMlpForward";
/** Kernel name of the fused backward pass. */
export const mlpBackwardKernelName = "PgdMlpBackward";

/** Attributes of the forward kernel. */
export interface MlpForwardAttrs {
  /** Number of layers (weight matrices). */
  layers: number;
  /** Also return the hidden activations (after ReLU), which the backward kernel reads. */
  returnHidden: boolean;
}

/** Attributes of the backward kernel. */
export interface MlpBackwardAttrs {
  /** Number of layers (weight matrices). */
  layers: number;
  /** Make the gradient with respect to the input. */
  inputGradient: boolean;
  /** Make the gradients with respect to the weights and biases. */
  parameterGradient: boolean;
}

/** Input names of layer `i`'s weight and bias, and of hidden activation `i` (from 1). */
export const mlpInputName = {
  weight: (layer: number) => `w${layer}`,
  bias: (layer: number) => `b${layer}`,
  hidden: (layer: number) => `h${layer}`,
};

interface Layout {
  members: number;
  batch: number;
  /** Whether every member reads the same input. */
  sharedInput: boolean;
  /** Widths: input, hidden…, output. */
  widths: number[];
}

function layoutOf(input: TensorInfo, weights: TensorInfo[]): Layout {
  const [inputMembers, batch, inputDim] = input.shape;
  const members = weights[0].shape[0];
  const widths = [inputDim, ...weights.map((weight) => weight.shape[2])];
  weights.forEach((weight, i) => {
    if (weight.shape[0] !== members || weight.shape[1] !== widths[i]) {
      throw new Error(
        `${mlpForwardKernelName}: weight ${i} has shape [${weight.shape}], expected [${members}, ${
          widths[i]
        }, …]`,
      );
    }
  });
  if (input.shape.length !== 3 || (inputMembers !== 1 && inputMembers !== members)) {
    throw new Error(
      `${mlpForwardKernelName}: input of shape [${input.shape}], expected [1 or ${members}, batch, ${inputDim}]`,
    );
  }
  return { members, batch, sharedInput: inputMembers === 1 && members > 1, widths };
}

function layerInputs(inputs: tf.NamedTensorInfoMap, layers: number, name: (i: number) => string) {
  return Array.from({ length: layers }, (_, i) => inputs[name(i)] as TensorInfo);
}

/** The forward kernel on `gemm`: `[output, hidden₁, …]` (hidden only when asked). */
export function makeMlpForward(gemm: HeapGemm): tf.KernelFunc {
  return (args) => {
    const { layers, returnHidden } = args.attrs as unknown as MlpForwardAttrs;
    const backend = asWasmBackend(args.backend);
    const loops = heapLoops(backend);
    const inputs = args.inputs as tf.NamedTensorInfoMap;
    const input = inputs.x as TensorInfo;
    const weights = layerInputs(inputs, layers, mlpInputName.weight);
    const biases = layerInputs(inputs, layers, mlpInputName.bias);
    const { members, batch, sharedInput, widths } = layoutOf(input, weights);
    const activations: TensorInfo[] = [];
    let previous = input;
    for (let layer = 0; layer < layers; layer++) {
      const [inWidth, outWidth] = [widths[layer], widths[layer + 1]];
      const out = backend.makeOutput([members, batch, outWidth], "float32");
      const previousOffset = floatOffset(backend, previous);
      const weightOffset = floatOffset(backend, weights[layer]);
      const outOffset = floatOffset(backend, out);
      const inputShared = layer === 0 && sharedInput;
      for (let member = 0; member < members; member++) {
        gemm(
          backend,
          false,
          false,
          batch,
          outWidth,
          inWidth,
          previousOffset + (inputShared ? 0 : member * batch * inWidth),
          inWidth,
          weightOffset + member * inWidth * outWidth,
          outWidth,
          0,
          outOffset + member * batch * outWidth,
          outWidth,
        );
      }
      // Bias and ReLU in one pass over the product (hidden layers only).
      const bias = biases[layer];
      loops.biasActivation(
        outOffset,
        floatOffset(backend, bias),
        sizeOf(bias.shape) === outWidth ? 0 : outWidth,
        members,
        batch,
        outWidth,
        layer < layers - 1,
      );
      activations.push(out);
      previous = out;
    }
    const output = activations.pop()!;
    if (returnHidden) return [output, ...activations];
    for (const hidden of activations) release(backend, hidden);
    return output;
  };
}

/**
 * The backward kernel on `gemm`. Inputs: `dy`, `x`, hidden activations
 * `h1…`, weights and biases. Outputs: the input gradient when asked, then
 * per layer the weight and bias gradients when asked.
 */
export function makeMlpBackward(gemm: HeapGemm): tf.KernelFunc {
  return (args) => {
    const { layers, inputGradient, parameterGradient } = args.attrs as unknown as MlpBackwardAttrs;
    const backend = asWasmBackend(args.backend);
    const loops = heapLoops(backend);
    const inputs = args.inputs as tf.NamedTensorInfoMap;
    const input = inputs.x as TensorInfo;
    const outputGradient = inputs.dy as TensorInfo;
    const weights = layerInputs(inputs, layers, mlpInputName.weight);
    const biases = layerInputs(inputs, layers, mlpInputName.bias);
    const hidden = [
      input,
      ...Array.from(
        { length: layers - 1 },
        (_, i) => inputs[mlpInputName.hidden(i + 1)] as TensorInfo,
      ),
    ];
    const { members, batch, sharedInput, widths } = layoutOf(input, weights);

    const inputGradientOut = inputGradient
      ? backend.makeOutput([...input.shape], "float32")
      : undefined;
    const parameterGradients: TensorInfo[][] = parameterGradient
      ? weights.map((weight, i) => [
        backend.makeOutput([...weight.shape], "float32"),
        backend.makeOutput([...biases[i].shape], "float32"),
      ])
      : [];
    // Two scratch buffers take turns holding the gradient of a layer's pre-activation.
    const scratchSize = members * batch * Math.max(...widths.slice(1, -1), 1);
    const scratch = layers > 1
      ? [allocate(backend, [scratchSize]), allocate(backend, [scratchSize])]
      : [];

    let gradient = floatOffset(backend, outputGradient);
    for (let layer = layers - 1; layer >= 0; layer--) {
      const [inWidth, outWidth] = [widths[layer], widths[layer + 1]];
      const layerInput = floatOffset(backend, hidden[layer]);
      const weightOffset = floatOffset(backend, weights[layer]);
      const inputShared = layer === 0 && sharedInput;
      const inputOf = (member: number) => layerInput + (inputShared ? 0 : member * batch * inWidth);
      if (parameterGradient) {
        const [weightGradient, biasGradient] = parameterGradients[layer];
        const weightGradientOffset = floatOffset(backend, weightGradient);
        for (let member = 0; member < members; member++) {
          gemm(
            backend,
            true,
            false,
            inWidth,
            outWidth,
            batch,
            inputOf(member),
            inWidth,
            gradient + member * batch * outWidth,
            outWidth,
            0,
            weightGradientOffset + member * inWidth * outWidth,
            outWidth,
          );
        }
        loops.sumRows(gradient, members, batch, outWidth, floatOffset(backend, biasGradient));
      }
      if (layer === 0 && !inputGradientOut) break;
      // The gradient with respect to this layer's input: dz·Wᵀ per member
      // (summed over members when they share one input).
      const target = layer > 0 ? scratch[layer % 2] : inputGradientOut!;
      const targetOffset = floatOffset(backend, target);
      for (let member = 0; member < members; member++) {
        gemm(
          backend,
          false,
          true,
          batch,
          inWidth,
          outWidth,
          gradient + member * batch * outWidth,
          outWidth,
          weightOffset + member * inWidth * outWidth,
          outWidth,
          inputShared && member > 0 ? 1 : 0,
          targetOffset + (inputShared ? 0 : member * batch * inWidth),
          inWidth,
        );
      }
      if (layer === 0) break;
      loops.reluMask(targetOffset, layerInput, targetOffset, members * batch * inWidth);
      gradient = targetOffset;
    }
    for (const buffer of scratch) release(backend, buffer);
    return [
      ...(inputGradientOut ? [inputGradientOut] : []),
      ...parameterGradients.flat(),
    ];
  };
}

/** Both MLP kernels on `gemm`, by kernel name. */
export function makeMlpKernels(gemm: HeapGemm): Map<string, tf.KernelFunc> {
  return new Map([
    [mlpForwardKernelName, makeMlpForward(gemm)],
    [mlpBackwardKernelName, makeMlpBackward(gemm)],
  ]);
}
