/**
 * rliable-style aggregates (Agarwal et al. 2021): the interquartile mean and
 * its stratified bootstrap confidence interval, where runs are resampled with
 * replacement within each task (stratum) and the statistic is taken over the
 * pooled resample. Seeded, so a report rebuilds to the same numbers.
 *
 * @module
 */
import { Rng } from "../core/rng.ts";

/** A point estimate with a percentile bootstrap confidence interval. */
export interface IntervalEstimate {
  /** The statistic on the observed data. */
  estimate: number;
  /** Lower end of the interval. */
  lower: number;
  /** Upper end of the interval. */
  upper: number;
  /** Confidence level of the interval, e.g. 0.95. */
  confidence: number;
}

/** Options of {@link stratifiedBootstrap}. */
export interface BootstrapOptions {
  /** Bootstrap resamples; rliable's default is 50 000, 2 000 already gives stable 95% ends. */
  repetitions?: number;
  /** Confidence level of the interval. */
  confidence?: number;
  /** Seed of the resampling stream. */
  seed?: number;
  /** The statistic of the pooled scores; the interquartile mean by default. */
  statistic?: (pooled: Float64Array) => number;
}

/**
 * The interquartile mean: the mean of the middle 50% after cutting ⌊n/4⌋
 * values from each end (as `scipy.stats.trim_mean(x, 0.25)`, which rliable uses).
 */
export function interquartileMean(values: ArrayLike<number>): number {
  const count = values.length;
  if (count === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const cut = Math.floor(count / 4);
  let sum = 0;
  for (let i = cut; i < count - cut; i++) sum += sorted[i];
  return sum / (count - 2 * cut);
}

/** The q-quantile of sorted values, interpolating linearly between order statistics. */
export function quantileOfSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

/**
 * The statistic (interquartile mean by default) of the pooled scores with a
 * stratified percentile-bootstrap interval; `strata[i]` holds the run scores of
 * task i. Empty strata are ignored.
 */
export function stratifiedBootstrap(
  strata: readonly (readonly number[])[],
  options: BootstrapOptions = {},
): IntervalEstimate {
  const repetitions = options.repetitions ?? 2000;
  const confidence = options.confidence ?? 0.95;
  const statistic = options.statistic ?? interquartileMean;
  if (!(confidence > 0 && confidence < 1)) {
    throw new RangeError(`bootstrap: confidence must be in (0, 1), got ${confidence}`);
  }
  if (!(Number.isInteger(repetitions) && repetitions > 0)) {
    throw new RangeError(`bootstrap: repetitions must be a positive integer, got ${repetitions}`);
  }
  const filled = strata.filter((stratum) => stratum.length > 0);
  const total = filled.reduce((sum, stratum) => sum + stratum.length, 0);
  if (total === 0) return { estimate: NaN, lower: NaN, upper: NaN, confidence };
  const pooled = new Float64Array(total);
  let offset = 0;
  for (const stratum of filled) {
    pooled.set(stratum, offset);
    offset += stratum.length;
  }
  const estimate = statistic(pooled);
  const rng = new Rng(options.seed ?? 0);
  const replicates = new Float64Array(repetitions);
  const resample = new Float64Array(total);
  for (let r = 0; r < repetitions; r++) {
    let position = 0;
    for (const stratum of filled) {
      for (let i = 0; i < stratum.length; i++) {
        resample[position++] = stratum[rng.int(stratum.length)];
      }
    }
    replicates[r] = statistic(resample);
  }
  replicates.sort();
  const tail = (1 - confidence) / 2;
  return {
    estimate,
    lower: quantileOfSorted(replicates, tail),
    upper: quantileOfSorted(replicates, 1 - tail),
    confidence,
  };
}
