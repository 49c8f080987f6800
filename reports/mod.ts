/**
 * Reports of a run: `report.html` (chart.js inlined), `summary.md`,
 * `results.csv` and `summary.json`, all rebuilt from the result folder alone.
 *
 * @module
 */
import { join } from "../core/paths.ts";
import { writeFileAtomic } from "../core/files.ts";
import { loadRun } from "./load.ts";
import { renderCsv } from "./csv.ts";
import { renderQualityCsv } from "./quality.ts";
import { renderTerminalTable } from "./terminal.ts";
import { readChartJs, renderHtml } from "./html.ts";
import { legend, renderMainTable, renderMarkdown } from "./markdown.ts";
import { summarizeRun, type SummaryOptions } from "./summary.ts";

export { loadRun, type RunMetadata, runMetadataSchema, type RunResults } from "./load.ts";
export * from "./summary.ts";
export { renderMainTable, renderMarkdown } from "./markdown.ts";
export { csvColumns, renderCsv } from "./csv.ts";
export {
  type QualityColumn,
  qualityColumns,
  type QualityRow,
  renderQualityCsv,
  summarizeQuality,
} from "./quality.ts";
export { readChartJs, renderHtml } from "./html.ts";

/** Where {@link writeReports} wrote, and the main table for the terminal. */
export interface WrittenReports {
  /** `<run>/report.html`. */
  htmlPath: string;
  /** `<run>/summary.md`. */
  markdownPath: string;
  /** `<run>/results.csv`. */
  csvPath: string;
  /** `<run>/summary.json`. */
  jsonPath: string;
  /** `<run>/quality.csv`: the data-quality table. */
  qualityCsvPath: string;
  /** Table 2 in Markdown with its legend. */
  markdown: string;
  /** Table 2 as aligned plain text with its legend, for a terminal of `terminalColumns`. */
  terminal: string;
}

/** JSON with NaN and ±Infinity written as null (JSON has neither). */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_, item) => typeof item === "number" && !Number.isFinite(item) ? null : item,
    2,
  ) + "\n";
}

/** What a report is built with: the summary's options and the terminal's width. */
export interface ReportOptions extends SummaryOptions {
  /** The width {@link WrittenReports.terminal} fits in, in characters (default 100). */
  terminalColumns?: number;
}

/** Rebuilds every report of the run in `runDir` from its cell, run and analysis files. */
export async function writeReports(
  runDir: string,
  options: ReportOptions = {},
): Promise<WrittenReports> {
  const summary = summarizeRun(await loadRun(runDir), options);
  const chartJs = await readChartJs();
  const htmlPath = join(runDir, "report.html");
  const markdownPath = join(runDir, "summary.md");
  const csvPath = join(runDir, "results.csv");
  const jsonPath = join(runDir, "summary.json");
  const qualityCsvPath = join(runDir, "quality.csv");
  await writeFileAtomic(jsonPath, toJson(summary));
  await writeFileAtomic(csvPath, renderCsv(summary));
  await writeFileAtomic(qualityCsvPath, renderQualityCsv(summary.quality));
  await writeFileAtomic(markdownPath, renderMarkdown(summary));
  await writeFileAtomic(htmlPath, renderHtml(summary, chartJs));
  return {
    htmlPath,
    markdownPath,
    csvPath,
    jsonPath,
    qualityCsvPath,
    markdown: `${renderMainTable(summary)}\n\n${legend(summary)}`,
    terminal: renderTerminalTable(summary, options.terminalColumns),
  };
}
