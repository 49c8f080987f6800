/**
 * Horizontal reference lines for the charts of one dataset (its learning
 * curves and its final-score bars): what a uniformly random policy scores on
 * the same evaluation episodes, an episode of return 0, the dataset's own
 * behaviour, and D4RL's expert reference. They belong to one dataset, so
 * aggregates over several datasets draw none.
 *
 * @module
 */
import { formatNumber } from "./format.ts";
import type { DatasetReferences, ReportSummary } from "./summary.ts";

/** The normalised score of D4RL's expert reference policy: 100 by definition (its random one is 0). */
export const expertScore = 100;

/** The kinds of reference line, as keys of {@link referenceLabels}. */
export type ReferenceKind = keyof typeof referenceLabels;

/** One horizontal line: a labelled score drawn across a chart. */
export interface ReferenceLine {
  /** Which reference it is. */
  kind: ReferenceKind;
  /** The legend's text: what the line is, with its score. */
  label: string;
  /** The normalised score it is drawn at. */
  value: number;
  /** Stroke colour. */
  colour: string;
  /** Dash pattern (chart.js `borderDash`). */
  dash: number[];
}

/** What each kind of line is called in the legends, fixed so the page, its test and readers agree. */
export const referenceLabels = {
  randomPolicy: "random policy",
  zeroReturn: "zero return",
  datasetBehavior: "dataset behaviour",
  expert: `expert (${expertScore})`,
} as const;

/** What each line is, one sentence for the legends under the charts. */
export const referenceLinesLegend =
  `Horizontal lines, per dataset: ${referenceLabels.randomPolicy} — uniformly random actions ` +
  `on the same evaluation episodes; ${referenceLabels.zeroReturn} — an episode whose return is 0 ` +
  `(Maze2d: never reaching the goal); ${referenceLabels.datasetBehavior} — the mean return of ` +
  `the dataset's own episodes; ${referenceLabels.expert} — D4RL's expert reference, as its ` +
  `random reference is 0 by the definition of the normalised score. Aggregates over several ` +
  `datasets draw none.`;

/** The recorded references of `dataset` (means over its cells), if any cell recorded them. */
export function datasetReferencesOf(
  summary: ReportSummary,
  dataset: string,
): DatasetReferences | undefined {
  return summary.references.find((references) => references.dataset === dataset);
}

/**
 * The lines of one dataset's charts: the recorded references where its cells
 * hold them, and the expert reference always (every score is D4RL-normalised).
 */
export function referenceLinesOf(summary: ReportSummary, dataset: string): ReferenceLine[] {
  const recorded = datasetReferencesOf(summary, dataset);
  const lines: ReferenceLine[] = [];
  const add = (kind: ReferenceKind, value: number, colour: string, dash: number[]) => {
    // The expert's label carries its value already ("expert (100)").
    const label = kind === "expert"
      ? referenceLabels.expert
      : `${referenceLabels[kind]} (${formatNumber(value)})`;
    if (Number.isFinite(value)) lines.push({ kind, label, value, colour, dash });
  };
  if (recorded) {
    add("randomPolicy", recorded.randomPolicy, "#7c3aed", [2, 3]);
    add("zeroReturn", recorded.zeroReturn, "#9ca3af", [8, 4]);
    add("datasetBehavior", recorded.datasetBehavior, "#059669", [6, 3, 2, 3]);
  }
  add("expert", expertScore, "#111827", [4, 4]);
  return lines;
}
