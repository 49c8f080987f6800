/**
 * Welch's unequal-variance t-test, with an exact Student-t CDF through the
 * regularised incomplete beta function:
 * P(T ≤ −|t|) = ½ · I_{ν/(ν+t²)}(ν/2, ½).
 *
 * @module
 */
import { estimateMean, type MeanEstimate } from "./summary.ts";

/** The outcome of a Welch t-test of mean(a) − mean(b). */
export interface WelchResult {
  /** mean(a) − mean(b). */
  difference: number;
  /** The t statistic. */
  t: number;
  /** Welch–Satterthwaite degrees of freedom. */
  degreesOfFreedom: number;
  /** Two-sided p-value; NaN when a variance cannot be estimated. */
  pValue: number;
}

// Lanczos approximation, g = 7, nine coefficients (relative error below 1e-15 for x > 0).
const lanczosG = 7;
const lanczosCoefficients = [
  0.99999999999980993,
  676.5203681218851,
  -1259.1392167224028,
  771.32342877765313,
  -176.61502916214059,
  12.507343278686905,
  -0.13857109526572012,
  9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (x < 0.5) {
    // Reflection keeps the series in its accurate range.
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  const shifted = x - 1;
  let series = lanczosCoefficients[0];
  for (let i = 1; i < lanczosCoefficients.length; i++) {
    series += lanczosCoefficients[i] / (shifted + i);
  }
  const base = shifted + lanczosG + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(base) - base +
    Math.log(series);
}

/** The continued fraction of I_x(a, b), evaluated by the modified Lentz method. */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const epsilon = 1e-15;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let fraction = d;
  for (let m = 1; m <= 10000; m++) {
    const twoM = 2 * m;
    // Even step: d_{2m} = m(b − m)x / ((a + 2m − 1)(a + 2m)).
    let coefficient = (m * (b - m) * x) / ((a + twoM - 1) * (a + twoM));
    d = 1 + coefficient * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + coefficient / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    fraction *= d * c;
    // Odd step: d_{2m+1} = −(a + m)(a + b + m)x / ((a + 2m)(a + 2m + 1)).
    coefficient = -((a + m) * (a + b + m) * x) / ((a + twoM) * (a + twoM + 1));
    d = 1 + coefficient * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + coefficient / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    fraction *= delta;
    if (Math.abs(delta - 1) < epsilon) return fraction;
  }
  throw new Error(`incomplete beta: continued fraction did not converge (x=${x}, a=${a}, b=${b})`);
}

/** The regularised incomplete beta function I_x(a, b) for x in [0, 1], a, b > 0. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`incomplete beta: a and b must be > 0 (${a}, ${b})`);
  if (!(x >= 0 && x <= 1)) throw new RangeError(`incomplete beta: x must be in [0, 1] (${x})`);
  if (x === 0 || x === 1) return x;
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) +
    b * Math.log1p(-x);
  const front = Math.exp(logFront);
  // The fraction converges fast for x < (a + 1)/(a + b + 2); otherwise use I_x(a,b) = 1 − I_{1−x}(b,a).
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** P(T ≤ t) for Student's t with ν > 0 degrees of freedom (ν may be fractional); NaN for ν = ∞. */
export function studentTCdf(t: number, degreesOfFreedom: number): number {
  if (Number.isNaN(t) || !(degreesOfFreedom > 0 && degreesOfFreedom < Infinity)) return NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const lowerTail = 0.5 *
    regularizedIncompleteBeta(
      degreesOfFreedom / (degreesOfFreedom + t * t),
      degreesOfFreedom / 2,
      0.5,
    );
  return t > 0 ? 1 - lowerTail : lowerTail;
}

/**
 * Welch's t-test of two mean estimates: t = (m_a − m_b) / √(SE_a² + SE_b²),
 * ν = (SE_a² + SE_b²)² / (SE_a⁴/ν_a + SE_b⁴/ν_b); two-sided p-value.
 */
export function welchTestOfEstimates(a: MeanEstimate, b: MeanEstimate): WelchResult {
  const difference = a.mean - b.mean;
  const varianceA = a.standardError ** 2;
  const varianceB = b.standardError ** 2;
  const variance = varianceA + varianceB;
  if (!(variance > 0 && Number.isFinite(variance)) || Number.isNaN(difference)) {
    return { difference, ...tTest(difference, Math.sqrt(variance), NaN), degreesOfFreedom: NaN };
  }
  const denominator = (varianceA === 0 ? 0 : varianceA ** 2 / a.degreesOfFreedom) +
    (varianceB === 0 ? 0 : varianceB ** 2 / b.degreesOfFreedom);
  const degreesOfFreedom = variance ** 2 / denominator;
  return {
    difference,
    ...tTest(difference, Math.sqrt(variance), degreesOfFreedom),
    degreesOfFreedom,
  };
}

/**
 * t = difference / standard error and its two-sided p-value on `degreesOfFreedom`; NaN where
 * the standard error or the difference is not a number. A standard error of 0 (constant
 * samples) makes any difference certain (p = 0) and none no evidence (p = 1).
 */
export function tTest(
  difference: number,
  standardError: number,
  degreesOfFreedom: number,
): { t: number; pValue: number } {
  if (!Number.isFinite(standardError) || Number.isNaN(difference)) return { t: NaN, pValue: NaN };
  if (standardError === 0) {
    return difference === 0
      ? { t: 0, pValue: 1 }
      : { t: Math.sign(difference) * Infinity, pValue: 0 };
  }
  const t = difference / standardError;
  return { t, pValue: Math.min(1, 2 * studentTCdf(-Math.abs(t), degreesOfFreedom)) };
}

/** Welch's t-test of two samples (e.g. final scores over seeds of two sources). */
export function welchTTest(a: readonly number[], b: readonly number[]): WelchResult {
  return welchTestOfEstimates(estimateMean(a), estimateMean(b));
}
