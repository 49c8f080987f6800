/**
 * One dense layer, `y = act(x·W + b)`, for a single network or a stack of K
 * same-shaped networks at once, as one op forward and a hand-written
 * backward pass.
 *
 * TF.js only fuses matmul + bias + activation outside gradient recording;
 * wrapping the fused kernel in a custom gradient keeps it fused while
 * training, and the backward pass issues just the products it needs (no
 * input gradient for a network's first layer when its input is data).
 *
 * @module
 */
import { tf } from "../core/compute.ts";

/** Activations a dense layer applies after its bias. */
export type DenseActivation = "relu" | "linear";

/** Which gradients a {@link dense} layer's backward pass makes. */
export interface DenseGradients {
  /** Gradient with respect to the layer's input. */
  input: boolean;
  /** Gradients with respect to the weight and bias. */
  parameters: boolean;
}

/**
 * `x·W + b` then the activation, as one layer of `members` stacked networks.
 *
 * - `input`: `[members or 1, batch, inputDim]`; a leading 1 feeds the same
 *   input to every member (broadcast, no copy).
 * - `weight`: `[members, inputDim, outputDim]`.
 * - `bias`: `[outputDim]` for a single network (fused into the product), or
 *   `[members, 1, outputDim]` for a stack.
 * - `gradients`: which gradients the backward pass makes: `input` (false for
 *   data inputs), `parameters` (false when a loss only differentiates
 *   through the layer, as an actor loss does through a critic). Each skipped
 *   one saves a product per step.
 *
 * Returns `[members, batch, outputDim]`.
 */
export function dense(
  input: tf.Tensor3D,
  weight: tf.Tensor3D,
  bias: tf.Tensor,
  activation: DenseActivation,
  gradients: DenseGradients,
): tf.Tensor3D {
  const { input: inputGradient, parameters: parameterGradient } = gradients;
  if (!inputGradient && !parameterGradient) return denseForward(input, weight, bias, activation);
  const biasIsFused = bias.rank === 1;
  const forward = (save: tf.GradSaveFunc) => {
    const output = denseForward(input, weight, bias, activation);
    // TF.js frees forward intermediates before the backward pass; saved
    // tensors (copies) survive it. Only what the backward pass reads is saved:
    // the input for the weight gradient, the output for ReLU's derivative,
    // and the weight unless it is a variable (which lives on).
    const weightIsVariable = weight instanceof tf.Variable;
    const saveInput = parameterGradient;
    const saveOutput = activation === "relu";
    save([
      ...(saveInput ? [input] : []),
      ...(saveOutput ? [output] : []),
      ...(weightIsVariable ? [] : [weight]),
    ]);
    return {
      value: output,
      gradFunc: (dy: tf.Tensor3D, saved: tf.Tensor[]) => {
        const rest = [...saved] as tf.Tensor3D[];
        const x = saveInput ? rest.shift()! : input;
        const y = saveOutput ? rest.shift()! : output;
        const w = weightIsVariable ? weight : rest.shift()!;
        // ReLU's derivative is 1 where the output is positive: read it off the output.
        const dz = activation === "relu" ? tf.mul(dy, tf.step(y)) : dy;
        const grads: tf.Tensor[] = [];
        if (inputGradient) {
          const dInput = tf.matMul(dz, w, false, true);
          grads.push(input.shape[0] === dz.shape[0] ? dInput : tf.sum(dInput, 0, true));
        }
        if (parameterGradient) {
          grads.push(tf.matMul(x, dz, true, false));
          // Σ over the batch as a product with a row of ones: a reduction over a
          // non-innermost axis costs a transpose on wasm, a product does not.
          const dBias = tf.matMul(tf.ones([1, 1, dz.shape[1]!]), dz);
          grads.push(biasIsFused ? tf.reshape(dBias, bias.shape) : dBias);
        }
        return grads;
      },
    };
  };
  const inputs = [
    ...(inputGradient ? [input] : []),
    ...(parameterGradient ? [weight, bias] : []),
  ];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
    forward(args[args.length - 1] as tf.GradSaveFunc)
  );
  return op(...inputs) as tf.Tensor3D;
}

/** The forward product alone, without gradient bookkeeping (inference). */
export function denseForward(
  input: tf.Tensor3D,
  weight: tf.Tensor3D,
  bias: tf.Tensor,
  activation: DenseActivation,
): tf.Tensor3D {
  if (bias.rank === 1) {
    return tf.engine().runKernel(
      "_FusedMatMul",
      { a: input, b: weight, bias },
      { transposeA: false, transposeB: false, activation, leakyreluAlpha: 0 },
    ) as tf.Tensor3D;
  }
  const z = tf.add(tf.matMul(input, weight), bias) as tf.Tensor3D;
  return activation === "relu" ? tf.relu(z) : z;
}
