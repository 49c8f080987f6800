/**
 * The CSV export (RFC 4180): one row per dataset × source × agent and per
 * aggregate, with the same numbers as the Markdown and HTML tables plus the
 * test statistics, for spreadsheets and plotting scripts. Dataset rows also
 * carry the dataset's reference scores (random policy, zero return, the
 * dataset's behaviour; D4RL's expert is 100 on every row, so not repeated);
 * aggregate rows leave them empty, as references do not average across
 * datasets.
 *
 * @module
 */
import type { Comparison, DatasetReferences, ReportSummary } from "./summary.ts";

/** The CSV's columns, in order. */
export const csvColumns = [
  "scope",
  "group",
  "dataset",
  "source",
  "agent",
  "runs",
  "seeds",
  "mean",
  "standard_error",
  "late_mean",
  "late_standard_error",
  "iqm",
  "iqm_ci_lower",
  "iqm_ci_upper",
  "difference_vs_real",
  "p_vs_real",
  "improves_on_real",
  "difference_vs_unguided",
  "p_vs_unguided",
  "improves_on_unguided",
  "paired_difference_vs_unguided",
  "paired_p_vs_unguided",
  "paired_late_difference_vs_unguided",
  "paired_late_p_vs_unguided",
  "complete",
  "reference_random_policy",
  "reference_zero_return",
  "reference_dataset_behaviour",
] as const;

type CsvRow = Partial<Record<(typeof csvColumns)[number], string | number | boolean>>;

/** One CSV field: numbers in full precision, empty for NaN, quoted when needed. */
export function csvField(value: string | number | boolean | undefined): string {
  if (value === undefined) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function references(recorded: DatasetReferences | undefined): CsvRow {
  return {
    reference_random_policy: recorded?.randomPolicy,
    reference_zero_return: recorded?.zeroReturn,
    reference_dataset_behaviour: recorded?.datasetBehavior,
  };
}

function tests(versusReal?: Comparison, versusUnguided?: Comparison): CsvRow {
  return {
    difference_vs_real: versusReal?.difference,
    p_vs_real: versusReal?.pValue,
    improves_on_real: versusReal ? versusReal.improvement : undefined,
    difference_vs_unguided: versusUnguided?.difference,
    p_vs_unguided: versusUnguided?.pValue,
    improves_on_unguided: versusUnguided ? versusUnguided.improvement : undefined,
  };
}

/** `results.csv`: a header line, then dataset rows in table order, then aggregate rows. */
export function renderCsv(summary: ReportSummary): string {
  const rows: CsvRow[] = [];
  const order = (dataset: string) => summary.datasets.indexOf(dataset);
  const cells = [...summary.cells].sort((a, b) =>
    order(a.dataset) - order(b.dataset) ||
    summary.agents.indexOf(a.agent) - summary.agents.indexOf(b.agent) ||
    summary.sources.indexOf(a.source) - summary.sources.indexOf(b.source)
  );
  for (const cell of cells) {
    rows.push({
      scope: "dataset",
      dataset: cell.dataset,
      source: cell.source,
      agent: cell.agent,
      runs: cell.scores.length,
      seeds: cell.seeds.join(" "),
      mean: cell.estimate.mean,
      standard_error: cell.estimate.standardError,
      late_mean: cell.late.mean,
      late_standard_error: cell.late.standardError,
      ...tests(cell.versusReal, cell.versusUnguided),
      paired_difference_vs_unguided: cell.pairedVersusUnguided?.final.difference,
      paired_p_vs_unguided: cell.pairedVersusUnguided?.final.pValue,
      paired_late_difference_vs_unguided: cell.pairedVersusUnguided?.late.difference,
      paired_late_p_vs_unguided: cell.pairedVersusUnguided?.late.pValue,
      complete: true,
      ...references(summary.references.find((r) => r.dataset === cell.dataset)),
    });
  }
  for (const aggregate of summary.aggregates) {
    rows.push({
      scope: aggregate.group.kind,
      group: aggregate.group.name,
      dataset: aggregate.group.datasets.join(" "),
      source: aggregate.source,
      agent: aggregate.agent,
      runs: aggregate.estimate.count,
      mean: aggregate.estimate.mean,
      standard_error: aggregate.estimate.standardError,
      iqm: aggregate.interquartileMean.estimate,
      iqm_ci_lower: aggregate.interquartileMean.lower,
      iqm_ci_upper: aggregate.interquartileMean.upper,
      ...tests(aggregate.versusReal, aggregate.versusUnguided),
      complete: aggregate.complete,
    });
  }
  const lines = [csvColumns.join(",")];
  for (const row of rows) lines.push(csvColumns.map((column) => csvField(row[column])).join(","));
  return lines.join("\r\n") + "\r\n";
}
