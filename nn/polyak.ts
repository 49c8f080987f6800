/**
 * Polyak (soft) target-network updates over whole variable lists.
 *
 * @module
 */
import { tf } from "../core/compute.ts";
import { assignFlat, checkSameShapes, flatValues } from "./flat.ts";

/**
 * `target ← τ·source + (1 − τ)·target` for every pair, computed as one flat
 * vector (a few ops for all variables).
 */
export function polyakUpdate(
  targets: readonly tf.Variable[],
  sources: readonly tf.Variable[],
  tau: number,
): void {
  if (!(tau >= 0 && tau <= 1)) throw new Error(`polyakUpdate: tau must lie in [0, 1], got ${tau}`);
  checkSameShapes("polyakUpdate", targets, sources);
  tf.tidy(() => {
    const target = flatValues(targets);
    const moved = tf.add(target, tf.mul(tf.sub(flatValues(sources), target), tau));
    assignFlat(targets, moved as tf.Tensor1D);
  });
}
