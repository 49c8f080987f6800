/**
 * A ReLU MLP, or a stack of same-shaped MLPs, as one op: one kernel forward
 * and one kernel backward on the wasm backend (compute/kernels_mlp.ts), with
 * a custom gradient that makes only the gradients asked for.
 *
 * @module
 */
import { tf } from "./tf.ts";
import {
  type MlpBackwardAttrs,
  mlpBackwardKernelName,
  type MlpForwardAttrs,
  mlpForwardKernelName,
  mlpInputName,
} from "./kernels_mlp.ts";

/** Which gradients a {@link fusedMlp} makes in the backward pass. */
export interface FusedMlpGradients {
  /** Gradient with respect to the input. */
  input: boolean;
  /** Gradients with respect to every weight and bias. */
  parameters: boolean;
}

/** Whether {@link fusedMlp} can run: the wasm backend with the replacement kernels active. */
export function fusedMlpAvailable(): boolean {
  return tf.getBackend() === "wasm" && tf.getKernel(mlpForwardKernelName, "wasm") !== undefined;
}

function parameterInputs(weights: readonly tf.Tensor[], biases: readonly tf.Tensor[]) {
  const inputs: tf.NamedTensorMap = {};
  weights.forEach((weight, i) => {
    inputs[mlpInputName.weight(i)] = weight;
    inputs[mlpInputName.bias(i)] = biases[i];
  });
  return inputs;
}

/**
 * The forward kernel alone, outside any gradient tape: the output
 * `[members, batch, outputDim]` and the hidden activations (after ReLU) that
 * {@link fusedMlpBackward} reads. Shapes as for {@link fusedMlp}.
 */
export function fusedMlpForward(
  input: tf.Tensor3D,
  weights: readonly tf.Tensor3D[],
  biases: readonly tf.Tensor[],
): { output: tf.Tensor3D; hidden: tf.Tensor3D[] } {
  const [output, ...hidden] = tf.engine().runKernel(
    mlpForwardKernelName,
    { x: input, ...parameterInputs(weights, biases) },
    {
      layers: weights.length,
      returnHidden: true,
    } satisfies MlpForwardAttrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor3D[];
  return { output, hidden };
}

/**
 * The backward kernel alone: from the gradient `dy` of a loss with respect to
 * the output of {@link fusedMlpForward}, the gradients requested, in the
 * order input (when asked for), then weight and bias per layer.
 */
export function fusedMlpBackward(
  input: tf.Tensor3D,
  hidden: readonly tf.Tensor3D[],
  weights: readonly tf.Tensor[],
  biases: readonly tf.Tensor[],
  dy: tf.Tensor,
  gradients: FusedMlpGradients,
): tf.Tensor[] {
  const inputs: tf.NamedTensorMap = { dy, x: input, ...parameterInputs(weights, biases) };
  hidden.forEach((h, i) => inputs[mlpInputName.hidden(i + 1)] = h);
  const attrs: MlpBackwardAttrs = {
    layers: weights.length,
    inputGradient: gradients.input,
    parameterGradient: gradients.parameters,
  };
  const result = tf.engine().runKernel(
    mlpBackwardKernelName,
    inputs,
    attrs as unknown as tf.NamedAttrMap,
  );
  return (Array.isArray(result) ? result : [result]) as tf.Tensor[];
}

/**
 * `input → ReLU layers → linear output` for `weights.length` layers.
 * `input` is `[members or 1, batch, inputDim]`, weights `[members, in, out]`,
 * biases `[out]` (one network) or `[members, 1, out]`; returns
 * `[members, batch, outputDim]`. Call only where {@link fusedMlpAvailable}.
 */
export function fusedMlp(
  input: tf.Tensor3D,
  weights: readonly tf.Tensor3D[],
  biases: readonly tf.Tensor[],
  gradients: FusedMlpGradients,
): tf.Tensor3D {
  const layers = weights.length;
  if (!gradients.input && !gradients.parameters) {
    return tf.engine().runKernel(
      mlpForwardKernelName,
      { x: input, ...parameterInputs(weights, biases) },
      { layers, returnHidden: false } satisfies MlpForwardAttrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor3D;
  }

  // Parameters that are not variables (e.g. slices) would be freed before the
  // backward pass unless saved; variables live on.
  const parameterList = weights.flatMap((weight, i) => [weight, biases[i]]);
  const transient = parameterList.filter((tensor) => !(tensor instanceof tf.Variable));
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const { output, hidden } = fusedMlpForward(input, weights, biases);
    // Saving clones: on the wasm set `Identity` shares the buffer, so this copies nothing.
    save([input, ...hidden, ...transient]);
    return {
      value: output,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedInput, ...rest] = saved;
        const savedHidden = rest.slice(0, layers - 1) as tf.Tensor3D[];
        const savedTransient = rest.slice(layers - 1);
        const live = parameterList.map((tensor) =>
          tensor instanceof tf.Variable ? tensor : savedTransient.shift()!
        );
        return fusedMlpBackward(
          savedInput as tf.Tensor3D,
          savedHidden,
          live.filter((_, i) => i % 2 === 0),
          live.filter((_, i) => i % 2 === 1),
          dy,
          gradients,
        );
      },
    };
  });
  const opInputs = [
    ...(gradients.input ? [input] : []),
    ...(gradients.parameters ? parameterList : []),
  ];
  return op(...opInputs) as tf.Tensor3D;
}
