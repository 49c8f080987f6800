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

/**
 * `x·W + b` then the activation, as one layer of `members` stacked networks.
 *
 * - `input`: `[members or 1, batch, inputDim]`; a leading 1 feeds the same
 *   input to every member (broadcast, no copy).
 * - `weight`: `[members, inputDim, outputDim]`.
 * - `bias`: `[outputDim]` for a single network (fused into the product), or
 *   `[members, 1, outputDim]` for a stack.
 * - `inputGradient`: whether gradients flow back into `input`; false for
 *   data inputs saves one product per step.
 *
 * Returns `[members, batch, outputDim]`.
 */
export function dense(
  input: tf.Tensor3D,
  weight: tf.Tensor3D,
  bias: tf.Tensor,
  activation: DenseActivation,
  inputGradient: boolean,
): tf.Tensor3D {
  const biasIsFused = bias.rank === 1;
  const forward = (save: tf.GradSaveFunc) => {
    const output = denseForward(input, weight, bias, activation);
    // TF.js frees forward intermediates before the backward pass; saved tensors survive it.
    save([input, weight, output]);
    return {
      value: output,
      gradFunc: (dy: tf.Tensor3D, saved: tf.Tensor[]) => {
        const [x, w, y] = saved as tf.Tensor3D[];
        // ReLU's derivative is 1 where the output is positive: read it off the output.
        const dz = activation === "relu" ? tf.mul(dy, tf.step(y)) : dy;
        const dWeight = tf.matMul(x, dz, true, false);
        const dBias = biasIsFused ? tf.sum(dz, [0, 1]) : tf.sum(dz, 1, true);
        if (!inputGradient) return [dWeight, dBias];
        let dInput: tf.Tensor = tf.matMul(dz, w, false, true);
        if (x.shape[0] !== dz.shape[0]) dInput = tf.sum(dInput, 0, true);
        return [dInput, dWeight, dBias];
      },
    };
  };
  const op = inputGradient
    ? tf.customGrad((_x, _w, _b, save) => forward(save as tf.GradSaveFunc))(input, weight, bias)
    : tf.customGrad((_w, _b, save) => forward(save as tf.GradSaveFunc))(weight, bias);
  return op as tf.Tensor3D;
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
