/**
 * Number formats and significance marks shared by the Markdown, CSV and HTML
 * reports, so every report prints the same figures.
 *
 * @module
 */
import type { MeanEstimate } from "../stats/summary.ts";

/**
 * What a Welch test over `seeds` seeds per side can say, as a clause for a
 * legend ("" from four seeds on): with one seed none is made, with two or
 * three it has a degree of freedom or two.
 */
export function fewSeedsClause(seeds: number): string {
  if (seeds === 1) return "; with one seed no test can be made";
  if (seeds > 1 && seeds < 4) {
    return `; with ${seeds} seeds a test has about ${seeds - 1} degree${
      seeds === 2 ? "" : "s"
    } of freedom and rarely finds a difference`;
  }
  return "";
}

/** Mark of policy-guided significantly above unguided. */
export const unguidedMark = "†";

/** A number with fixed decimals; `–` for NaN or a missing value. */
export function formatNumber(value: number | undefined | null, decimals = 1): string {
  if (value === undefined || value === null || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  const text = value.toFixed(decimals);
  // Avoid "-0.0" for values that round to zero.
  return Number(text) === 0 ? (0).toFixed(decimals) : text;
}

/**
 * `mean ± s.e.`; the seed count is added when the s.e. is undefined or when
 * fewer than `fullCount` seeds have a result (a partly finished entry).
 */
export function formatEstimate(estimate: MeanEstimate, decimals = 1, fullCount = 0): string {
  if (Number.isNaN(estimate.mean)) return "–";
  const count = ` (n=${estimate.count})`;
  if (Number.isNaN(estimate.standardError)) {
    return `${formatNumber(estimate.mean, decimals)}${count}`;
  }
  return `${formatNumber(estimate.mean, decimals)} ± ${
    formatNumber(estimate.standardError, decimals)
  }${estimate.count < fullCount ? count : ""}`;
}

/** A p-value for tables: three significant figures, `<0.001` below. */
export function formatPValue(pValue: number | undefined): string {
  if (pValue === undefined || Number.isNaN(pValue)) return "–";
  if (pValue < 0.001) return "<0.001";
  return pValue.toFixed(3);
}
