/**
 * Table 2 for a terminal: per dataset, one line per source and one column
 * per agent, aligned in plain text (no Markdown), with its legend, all
 * within the terminal's width.
 *
 * @module
 */
import { fewSeedsClause, formatEstimate, unguidedMark } from "./format.ts";
import { findCell, type ReportSummary } from "./summary.ts";

/** Marks an entry significantly above `real` for the same agent. */
const aboveRealMark = "+";

/** `text` broken at spaces into lines of at most `columns` characters (a longer word keeps its line). */
export function wrapText(text: string, columns: number): string[] {
  const lines: string[] = [];
  let current = "";
  for (const word of text.split(" ")) {
    if (current && current.length + 1 + word.length > columns) {
      lines.push(current);
      current = word;
    } else current = current ? `${current} ${word}` : word;
  }
  if (current) lines.push(current);
  return lines;
}

/** Column separator of the table. */
const gap = "   ";

/**
 * The final scores as aligned plain text, a block per dataset, and a legend,
 * within `columns` characters: where the agents' columns do not fit beside
 * each other, a dataset's block is repeated with the next agents.
 */
export function renderTerminalTable(summary: ReportSummary, columns = 100): string {
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
    // Agents' columns in blocks that fit beside the label column (at least one per block).
    const blocks: number[][] = [];
    let width = widths[0];
    for (let column = 1; column < widths.length; column++) {
      const added = gap.length + widths[column];
      if (blocks.length === 0 || width + added > columns) {
        blocks.push([column]);
        width = widths[0] + added;
      } else {
        blocks[blocks.length - 1].push(column);
        width += added;
      }
    }
    for (const block of blocks) {
      for (const row of rows) {
        lines.push(
          [0, ...block].map((column) => row[column].padEnd(widths[column])).join(gap).trimEnd(),
        );
      }
      lines.push("");
    }
  }
  const seeds = summary.seedsPerEntry;
  const legend =
    `Final normalised score, mean ± s.e. over ${seeds} seed${seeds === 1 ? "" : "s"}; ` +
    `${aboveRealMark} above real, ${unguidedMark} policy-guided above unguided ` +
    `(Welch's t-test, p < ${summary.significanceLevel}${fewSeedsClause(seeds)}).` +
    summary.references.map((r) =>
      ` ${r.dataset}: random policy ${r.randomPolicy.toFixed(1)}, the dataset ${
        r.datasetBehavior.toFixed(1)
      }.`
    ).join("");
  lines.push(...wrapText(legend, columns));
  return lines.join("\n");
}
