/**
 * Table 2 for a terminal: per dataset, one line per source and one column
 * per agent, aligned in plain text (no Markdown), with a one-line legend.
 *
 * @module
 */
import { formatEstimate, unguidedMark } from "./format.ts";
import { findCell, type ReportSummary } from "./summary.ts";

/** Marks an entry significantly above `real` for the same agent. */
const aboveRealMark = "+";

/** The final scores as aligned plain text, a block per dataset, and a legend line. */
export function renderTerminalTable(summary: ReportSummary): string {
  const lines: string[] = [];
  const cellText = (dataset: string, source: string, agent: string) => {
    const cell = findCell(summary, dataset, source, agent);
    if (!cell) return "—";
    let text = formatEstimate(cell.estimate, 1, summary.seedsPerEntry);
    if (cell.versusReal?.improvement) text += ` ${aboveRealMark}`;
    if (cell.versusUnguided?.improvement) text += ` ${unguidedMark}`;
    return text;
  };
  for (const dataset of summary.datasets) {
    const rows = [
      [dataset, ...summary.agents],
      ...summary.sources.map((source) => [
        `  ${source}`,
        ...summary.agents.map((agent) => cellText(dataset, source, agent)),
      ]),
    ];
    const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
    for (const row of rows) {
      lines.push(row.map((text, column) => text.padEnd(widths[column])).join("   ").trimEnd());
    }
    lines.push("");
  }
  const seeds = summary.seedsPerEntry;
  lines.push(
    `Final normalised score, mean ± s.e. over ${seeds} seed${seeds === 1 ? "" : "s"}; ` +
      `${aboveRealMark} above real, ${unguidedMark} policy-guided above unguided ` +
      `(Welch's t-test, p < ${summary.significanceLevel}).` +
      summary.references.map((r) =>
        ` ${r.dataset}: random policy ${r.randomPolicy.toFixed(1)}, the dataset ${
          r.datasetBehavior.toFixed(1)
        }.`
      ).join(""),
  );
  return lines.join("\n");
}
