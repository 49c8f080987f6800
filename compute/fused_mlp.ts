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
  const parameters = parameterInputs(weights, biases);
  const forward = (returnHidden: boolean) =>
    tf.engine().runKernel(
      mlpForwardKernelName,
      { x: input, ...parameters },
      { layers, returnHidden } satisfies MlpForwardAttrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor3D | tf.Tensor3D[];
  if (!gradients.input && !gradients.parameters) return forward(false) as tf.Tensor3D;

  // Parameters that are not variables (e.g. slices) would be freed before the
  // backward pass unless saved; variables live on.
  const parameterList = weights.flatMap((weight, i) => [weight, biases[i]]);
  const transient = parameterList.filter((tensor) => !(tensor instanceof tf.Variable));
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [output, ...hidden] = forward(true) as tf.Tensor3D[];
    // Saving clones: on the wasm set `Identity` shares the buffer, so this copies nothing.
    save([input, ...hidden, ...transient]);
    return {
      value: output,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedInput, ...rest] = saved;
        const savedHidden = rest.slice(0, layers - 1);
        const savedTransient = rest.slice(layers - 1);
        const live = parameterList.map((tensor) =>
          tensor instanceof tf.Variable ? tensor : savedTransient.shift()!
        );
        const inputs: tf.NamedTensorMap = { dy, x: savedInput };
        savedHidden.forEach((h, i) => inputs[mlpInputName.hidden(i + 1)] = h);
        live.forEach((tensor, i) => {
          const layer = i >> 1;
          inputs[i % 2 === 0 ? mlpInputName.weight(layer) : mlpInputName.bias(layer)] = tensor;
        });
        const attrs: MlpBackwardAttrs = {
          layers,
          inputGradient: gradients.input,
          parameterGradient: gradients.parameters,
        };
        const result = tf.engine().runKernel(
          mlpBackwardKernelName,
          inputs,
          attrs as unknown as tf.NamedAttrMap,
        );
        return (Array.isArray(result) ? result : [result]) as tf.Tensor[];
      },
    };
  });
  const opInputs = [
    ...(gradients.input ? [input] : []),
    ...(gradients.parameters ? parameterList : []),
  ];
  return op(...opInputs) as tf.Tensor3D;
}
