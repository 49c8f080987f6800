/**
 * Mean and standard error over seeds, and the mean of several independent
 * means (an aggregate over datasets) with its Welch–Satterthwaite degrees of
 * freedom, so aggregates can be t-tested like single cells.
 *
 * @module
 */

/** A mean with its standard error and the degrees of freedom of its variance estimate. */
export interface MeanEstimate {
  /** Number of values behind the estimate (seeds, or seeds summed over datasets). */
  count: number;
  /** The mean. */
  mean: number;
  /** Standard error of the mean; NaN when it cannot be estimated (fewer than two values). */
  standardError: number;
  /** Degrees of freedom of the variance estimate; NaN with the standard error. */
  degreesOfFreedom: number;
}

/** Arithmetic mean; NaN for no values. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

/** Unbiased sample variance (divides by n − 1); NaN for fewer than two values. */
export function sampleVariance(values: readonly number[]): number {
  if (values.length < 2) return NaN;
  const centre = mean(values);
  let sum = 0;
  for (const value of values) sum += (value - centre) ** 2;
  return sum / (values.length - 1);
}

/** Standard error of the mean, s / √n; NaN for fewer than two values. */
export function standardError(values: readonly number[]): number {
  return Math.sqrt(sampleVariance(values) / values.length);
}

/** Mean ± standard error of a sample, e.g. one cell's final scores over seeds. */
export function estimateMean(values: readonly number[]): MeanEstimate {
  const count = values.length;
  const enough = count >= 2;
  return {
    count,
    mean: mean(values),
    standardError: enough ? standardError(values) : NaN,
    degreesOfFreedom: enough ? count - 1 : NaN,
  };
}

/**
 * The unweighted mean of independent estimates (e.g. per-dataset means), as
 * the paper's "Total" rows: SE² = Σ SEᵢ² / k², and the Welch–Satterthwaite
 * degrees of freedom ν = (Σ vᵢ)² / Σ (vᵢ² / νᵢ) with vᵢ = SEᵢ² / k².
 */
export function averageEstimates(estimates: readonly MeanEstimate[]): MeanEstimate {
  const k = estimates.length;
  if (k === 0) return { count: 0, mean: NaN, standardError: NaN, degreesOfFreedom: NaN };
  const parts = estimates.map((estimate) => estimate.standardError ** 2 / (k * k));
  const variance = parts.reduce((sum, part) => sum + part, 0);
  const denominator = parts.reduce(
    (sum, part, i) => sum + (part === 0 ? 0 : part ** 2 / estimates[i].degreesOfFreedom),
    0,
  );
  return {
    count: estimates.reduce((sum, estimate) => sum + estimate.count, 0),
    mean: mean(estimates.map((estimate) => estimate.mean)),
    standardError: Math.sqrt(variance),
    // All-zero variances leave ν undefined by the formula; the pooled sample size is its limit.
    degreesOfFreedom: denominator === 0 && Number.isFinite(variance)
      ? estimates.reduce((sum, estimate) => sum + estimate.degreesOfFreedom, 0)
      : variance ** 2 / denominator,
  };
}
