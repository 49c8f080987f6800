/**
 * The paired t-test: a one-sample t-test of per-seed differences. Two sources
 * run with the same seed share the agent's initialisation and evaluation
 * episodes (and the diffusion sources their first, unguided generation), so
 * the difference within a seed carries less of the seed's own spread than the
 * difference of two means does.
 *
 * @module
 */
import { estimateMean } from "./summary.ts";
import { tTest } from "./welch.ts";

/** The outcome of a paired t-test of mean(a − b) over pairs. */
export interface PairedResult {
  /** Pairs tested. */
  pairs: number;
  /** Mean of the differences a − b. */
  difference: number;
  /** Standard error of that mean; NaN with fewer than two pairs. */
  standardError: number;
  /** The t statistic, difference / standard error. */
  t: number;
  /** Pairs − 1. */
  degreesOfFreedom: number;
  /** Two-sided p-value; NaN with fewer than two pairs. */
  pValue: number;
}

/**
 * Paired t-test of `a[i] − b[i]`: t = d̄ / (s_d / √n) with n − 1 degrees of
 * freedom, two-sided. `a` and `b` must have the same length, pair by index.
 */
export function pairedTTest(a: readonly number[], b: readonly number[]): PairedResult {
  if (a.length !== b.length) {
    throw new RangeError(`paired t-test: ${a.length} values against ${b.length}`);
  }
  const { mean: difference, standardError, degreesOfFreedom } = estimateMean(
    a.map((value, i) => value - b[i]),
  );
  return {
    pairs: a.length,
    difference,
    standardError,
    degreesOfFreedom,
    ...tTest(difference, standardError, degreesOfFreedom),
  };
}
