/**
 * Polyak (soft) target-network updates over whole variable lists.
 *
 * @module
 */
import { lerpInPlace, type tf } from "../core/compute.ts";
import { checkSameShapes } from "./flat.ts";

/**
 * `target ← τ·source + (1 − τ)·target` for every pair, one fused pass per
 * variable (in place on the heap where native kernels are active).
 */
export function polyakUpdate(
  targets: readonly tf.Variable[],
  sources: readonly tf.Variable[],
  tau: number,
): void {
  if (!(tau >= 0 && tau <= 1)) throw new Error(`polyakUpdate: tau must lie in [0, 1], got ${tau}`);
  checkSameShapes("polyakUpdate", targets, sources);
  lerpInPlace(targets, sources, tau);
}
