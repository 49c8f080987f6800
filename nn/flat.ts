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

/** The flat vector {@link assignFlat} last wrote into a list of variables. */
interface FlatCopy {
  variables: readonly tf.Variable[];
  dataIds: unknown[];
  flat: tf.Tensor1D;
}

// Keyed by the variables' ids. A copy is valid while every variable still
// holds the data assignFlat gave it (TF.js gives a variable new data on
// every assign), so writes from elsewhere are noticed, never missed.
const flatCopies = new Map<string, FlatCopy>();

const keyOf = (variables: readonly tf.Variable[]) => variables.map((v) => v.id).join(",");

/**
 * The variables' values as one vector. When {@link assignFlat} wrote them
 * last, its vector is returned as is (no op): an optimiser step followed by
 * a target update reads the parameters without concatenating them again.
 * The result belongs to the caller's `tf.tidy` or to the cache: read it,
 * never dispose it.
 */
export function flatValues(variables: readonly tf.Variable[]): tf.Tensor1D {
  const copy = flatCopies.get(keyOf(variables));
  if (
    copy && !copy.flat.isDisposed &&
    copy.variables.every((variable, i) => variable.dataId === copy.dataIds[i])
  ) {
    return copy.flat;
  }
  return flatten(variables);
}

/**
 * Writes a flat vector back into the variables it was made from (call
 * within `tf.tidy`), and keeps it for {@link flatValues}.
 */
export function assignFlat(variables: readonly tf.Variable[], flat: tf.Tensor1D): void {
  const sizes = variables.map((variable) => variable.size);
  const pieces = variables.length === 1 ? [flat] : tf.split(flat, sizes);
  variables.forEach((variable, i) => variable.assign(tf.reshape(pieces[i], variable.shape)));
  if (variables.length === 1) return;
  const key = keyOf(variables);
  const previous = flatCopies.get(key);
  if (previous && previous.flat !== flat) previous.flat.dispose();
  flatCopies.set(key, {
    variables: [...variables],
    dataIds: variables.map((variable) => variable.dataId),
    flat: tf.keep(flat),
  });
}

/** Drops the kept vectors of every list that holds one of `variables` (call before disposing them). */
export function releaseFlat(variables: readonly tf.Variable[]): void {
  const ids = new Set(variables.map((variable) => variable.id));
  for (const [key, copy] of flatCopies) {
    if (copy.variables.some((variable) => ids.has(variable.id))) {
      copy.flat.dispose();
      flatCopies.delete(key);
    }
  }
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
