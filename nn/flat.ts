/**
 * Helpers over lists of variables: shape checks between paired lists (an
 * optimiser's gradients, a target network's parameters) and variables that
 * take over their initial tensor.
 *
 * @module
 */
import { tf } from "../core/compute.ts";

/** Throws unless the two lists hold variables of the same shapes, in order. */
export function checkSameShapes(
  where: string,
  a: readonly tf.Variable[],
  b: readonly tf.Variable[],
): void {
  if (a.length !== b.length) {
    throw new Error(`${where}: ${a.length} variables against ${b.length}`);
  }
  a.forEach((variable, i) => {
    if (!tf.util.arraysEqual(variable.shape, b[i].shape)) {
      throw new Error(
        `${where}: variable ${i} has shape [${variable.shape}] against [${b[i].shape}]`,
      );
    }
  });
}

/**
 * A variable holding `initial`'s values, which it takes over: `tf.variable`
 * alone leaves `initial` as a second live tensor that nobody frees.
 */
export function variableFrom<R extends tf.Rank>(
  initial: tf.Tensor<R>,
  trainable = true,
  name?: string,
): tf.Variable<R> {
  const variable = tf.variable(initial, trainable, name);
  initial.dispose();
  return variable;
}
