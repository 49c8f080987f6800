/**
 * A list of variables seen as one flat vector, so an update over all of
 * them costs a handful of ops however many variables there are.
 *
 * @module
 */
import { tf } from "../core/compute.ts";

/** The tensors concatenated into one vector, in order (call within `tf.tidy`). */
export function flatten(tensors: readonly tf.Tensor[]): tf.Tensor1D {
  if (tensors.length === 1) return tf.reshape(tensors[0], [-1]);
  return tf.concat(tensors.map((tensor) => tf.reshape(tensor, [-1])));
}

/** Writes a flat vector back into the variables it was made from (call within `tf.tidy`). */
export function assignFlat(variables: readonly tf.Variable[], flat: tf.Tensor1D): void {
  const sizes = variables.map((variable) => variable.size);
  const pieces = variables.length === 1 ? [flat] : tf.split(flat, sizes);
  variables.forEach((variable, i) => variable.assign(tf.reshape(pieces[i], variable.shape)));
}

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
