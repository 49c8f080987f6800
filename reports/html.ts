/**
 * The HTML report: one self-contained page per run with chart.js inlined, so
 * it opens offline. Table 2 with significant improvements shaded and a
 * final-score chart per dataset, aggregate bars (Figure 4) and interquartile
 * means with bootstrap intervals, learning curves, Figures 5 and 6 when
 * analysis results exist, missing cells, run metadata and a link to every
 * cell's JSON. A dataset's own charts draw its reference lines
 * (reference_lines.ts). After drawing, the page marks each canvas with
 * `data-drawn`, a painted-pixel count and the reference lines it drew
 * (`data-reference-lines`), so a headless browser can check every chart.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import type { DynamicsError, TrajectoryLikelihood } from "../core/analysis.ts";
import { formatEstimate, formatNumber, formatPValue, unguidedMark } from "./format.ts";
import { legend, pairedColumns, pairedLegend, pairedRows, qualityLegend } from "./markdown.ts";
import {
  datasetPanelLabel,
  formatQualityValue,
  presentColumns,
  referenceLabel,
} from "./quality.ts";
import { renderPlanFigure } from "./plan_svg.ts";
import { type ReferenceLine, referenceLinesLegend, referenceLinesOf } from "./reference_lines.ts";
import {
  type AggregateSummary,
  allAgents,
  type CellSummary,
  type DatasetGroup,
  findAggregate,
  findCell,
  guidedSource,
  lateEvaluations,
  realSource,
  type ReportSummary,
  unguidedSource,
} from "./summary.ts";

/** Where chart.js's UMD bundle may lie: beside the package's entry, or in the project's node_modules. */
function chartJsCandidates(): URL[] {
  const candidates: URL[] = [];
  try {
    const entry = import.meta.resolve("chart.js");
    if (entry.startsWith("file:")) candidates.push(new URL("./chart.umd.min.js", entry));
  } catch {
    // Not resolvable through the import map: fall back to the project's node_modules.
  }
  candidates.push(new URL("../node_modules/chart.js/dist/chart.umd.min.js", import.meta.url));
  return candidates;
}

async function readFirst(candidates: URL[]): Promise<string | undefined> {
  for (const candidate of candidates) {
    try {
      return await Deno.readTextFile(candidate);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return undefined;
}

/**
 * Reads chart.js's UMD bundle from the npm package. On a fresh clone the
 * package is installed on first use: importing it once makes Deno fetch it.
 */
export async function readChartJs(): Promise<string> {
  const found = await readFirst(chartJsCandidates());
  if (found !== undefined) return found;
  try {
    await import("chart.js");
  } catch (error) {
    throw new UserError(
      `chart.js could not be installed (${(error as Error).message}); run \`deno install\``,
    );
  }
  const candidates = chartJsCandidates();
  const installed = await readFirst(candidates);
  if (installed !== undefined) return installed;
  throw new UserError(
    `chart.js not found (looked for ${candidates.map(String).join(", ")}); ` +
      "run `deno install` in the project folder",
  );
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

const sourceColours: Record<string, string> = {
  [realSource]: "#6b7280",
  [unguidedSource]: "#f59e0b",
  [guidedSource]: "#2563eb",
  pets: "#dc2626",
};
const extraColours = ["#16a34a", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#ea580c"];

function colourFor(name: string, index: number): string {
  return sourceColours[name] ?? extraColours[index % extraColours.length];
}

function translucent(hex: string, alpha: number): string {
  const value = parseInt(hex.slice(1), 16);
  return `rgba(${value >> 16}, ${(value >> 8) & 255}, ${value & 255}, ${alpha})`;
}

/** A chart.js configuration (plain JSON) with the canvas it draws on and a caption. */
interface ChartSpec {
  id: string;
  title: string;
  config: Record<string, unknown>;
  /** The one dataset the chart shows (its canvas says so in `data-dataset`), if it shows one. */
  dataset?: string;
}

function finiteOrNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

/** Room above and below the data, so a line at the axis's end (expert at 100) is not hidden in its edge. */
function headroom(references: ReferenceLine[]): Record<string, unknown> {
  return references.length > 0 ? { grace: "5%" } : {};
}

/**
 * Chart datasets of reference lines. chart.js draws nothing for them (no line,
 * no points); their points only make the y axis reach the value, and the
 * page's `referenceLines` plugin strokes each across the whole chart area,
 * which a line through category centres or the curves' step range would not.
 */
function referenceDatasets(
  lines: ReferenceLine[],
  points: (value: number) => unknown[],
): Record<string, unknown>[] {
  return lines.map((line) => ({
    type: "line",
    label: line.label,
    reference: line.value,
    referenceKind: line.kind,
    data: points(line.value),
    borderColor: line.colour,
    backgroundColor: "transparent",
    borderDash: line.dash,
    borderWidth: 1.5,
    showLine: false,
    pointRadius: 0,
    pointHitRadius: 0,
    fill: false,
  }));
}

/** One bar series of a {@link barChart}: values and the ends of their whiskers. */
interface BarSeries {
  label: string;
  colour: string;
  values: number[];
  low: number[];
  high: number[];
}

/** A series of means with whiskers of ± one standard error (NaN: no whisker). */
function meanSeries(
  label: string,
  colour: string,
  values: number[],
  errors: number[],
): BarSeries {
  return {
    label,
    colour,
    values,
    low: values.map((v, i) => v - errors[i]),
    high: values.map((v, i) => v + errors[i]),
  };
}

function barChart(
  id: string,
  title: string,
  groups: string[],
  series: BarSeries[],
  yTitle: string,
  references: ReferenceLine[] = [],
): ChartSpec {
  // The axis must reach the whisker ends, which chart.js does not know about.
  const ends = [
    ...series.flatMap((s) => [...s.low, ...s.high, ...s.values]),
    ...references.map((line) => line.value),
  ].filter(Number.isFinite);
  const range = ends.length > 0
    ? { suggestedMin: Math.min(0, ...ends), suggestedMax: Math.max(0, ...ends) }
    : {};
  return {
    id,
    title,
    config: {
      type: "bar",
      data: {
        labels: groups,
        datasets: [
          ...series.map((s): Record<string, unknown> => ({
            label: s.label,
            data: s.values.map(finiteOrNull),
            backgroundColor: translucent(s.colour, 0.75),
            borderColor: s.colour,
            borderWidth: 1,
            maxBarThickness: 56,
            errorBars: s.values.map((_, i) => [finiteOrNull(s.low[i]), finiteOrNull(s.high[i])]),
          })),
          ...referenceDatasets(references, (value) => groups.map(() => value)),
        ],
      },
      options: {
        scales: {
          y: { ...range, ...headroom(references), title: { display: true, text: yTitle } },
        },
      },
    },
  };
}

interface LineSeries {
  label: string;
  colour: string;
  x: number[];
  mean: number[];
  standardError: (number | null)[];
  dashed?: boolean;
}

function lineChart(
  id: string,
  title: string,
  series: LineSeries[],
  xTitle: string,
  yTitle: string,
  references: ReferenceLine[] = [],
): ChartSpec {
  const datasets: Record<string, unknown>[] = [];
  for (const s of series) {
    const hasBand = s.standardError.some((value) => value !== null && Number.isFinite(value));
    if (hasBand) {
      const band = (sign: number) =>
        s.x.map((x, i) => ({
          x,
          y: finiteOrNull(s.mean[i] + sign * (s.standardError[i] ?? NaN)),
        }));
      // The upper edge fills down to the lower edge (the next dataset): the ± s.e. band.
      datasets.push({
        label: `${s.label} (± s.e.)`,
        band: true,
        data: band(1),
        borderWidth: 0,
        pointRadius: 0,
        backgroundColor: translucent(s.colour, 0.18),
        fill: "+1",
      });
      datasets.push({
        label: "",
        band: true,
        data: band(-1),
        borderWidth: 0,
        pointRadius: 0,
        fill: false,
      });
    }
    datasets.push({
      label: s.label,
      data: s.x.map((x, i) => ({ x, y: finiteOrNull(s.mean[i]) })),
      borderColor: s.colour,
      backgroundColor: s.colour,
      borderDash: s.dashed ? [6, 4] : undefined,
      pointRadius: s.x.length > 40 ? 0 : 2,
      borderWidth: 2,
      fill: false,
    });
  }
  const xs = series.flatMap((s) => s.x).filter(Number.isFinite);
  if (xs.length > 0) {
    const [first, last] = [Math.min(...xs), Math.max(...xs)];
    datasets.push(...referenceDatasets(references, (y) => [{ x: first, y }, { x: last, y }]));
  }
  return {
    id,
    title,
    config: {
      type: "line",
      data: { datasets },
      options: {
        scales: {
          x: { type: "linear", title: { display: true, text: xTitle } },
          y: { ...headroom(references), title: { display: true, text: yTitle } },
        },
      },
    },
  };
}

function aggregateBars(
  summary: ReportSummary,
  id: string,
  title: string,
  groups: DatasetGroup[],
): ChartSpec {
  // One bar group per dataset group and agent: agents are kept apart, as in the paper's Figure 4.
  const pairs = groups.flatMap((group) => summary.agents.map((agent) => ({ group, agent })));
  return barChart(
    id,
    title,
    pairs.map(({ group, agent }) => `${group.name} · ${agent}`),
    summary.sources.map((source, index) => {
      const found = pairs.map(({ group, agent }) => findAggregate(summary, group, source, agent));
      return meanSeries(
        source,
        colourFor(source, index),
        found.map((a) => a?.complete ? a.estimate.mean : NaN),
        found.map((a) => a?.complete ? a.estimate.standardError : NaN),
      );
    }),
    "normalised score (mean ± s.e.)",
  );
}

function interquartileBars(summary: ReportSummary, groups: DatasetGroup[]): ChartSpec {
  const pairs = groups.flatMap((group) => summary.agents.map((agent) => ({ group, agent })));
  return barChart(
    "chart-iqm",
    "Interquartile mean with 95% stratified bootstrap intervals, per agent",
    pairs.map(({ group, agent }) =>
      `${group.kind === "level" ? `${group.name} (level)` : group.name} · ${agent}`
    ),
    summary.sources.map((source, index) => {
      const found = pairs.map(({ group, agent }) => findAggregate(summary, group, source, agent));
      const iqm = found.map((a) => a?.complete ? a.interquartileMean : undefined);
      return {
        label: source,
        colour: colourFor(source, index),
        values: iqm.map((i) => i?.estimate ?? NaN),
        low: iqm.map((i) => i?.lower ?? NaN),
        high: iqm.map((i) => i?.upper ?? NaN),
      };
    }),
    "normalised score (IQM, 95% CI)",
  );
}

function curveCharts(summary: ReportSummary): ChartSpec[] {
  const charts: ChartSpec[] = [];
  let index = 0;
  for (const dataset of summary.datasets) {
    for (const agent of summary.agents) {
      const series: LineSeries[] = [];
      summary.sources.forEach((source, sourceIndex) => {
        const curve = summary.curves.find((c) =>
          c.dataset === dataset && c.agent === agent && c.source === source
        );
        if (!curve || curve.steps.length === 0) return;
        series.push({
          label: source,
          colour: colourFor(source, sourceIndex),
          x: curve.steps,
          mean: curve.mean,
          standardError: curve.standardError,
        });
      });
      if (series.length === 0) continue;
      charts.push({
        dataset,
        ...lineChart(
          `chart-curve-${index++}`,
          `${dataset} · ${agent}`,
          series,
          "gradient steps",
          "normalised score",
          referenceLinesOf(summary, dataset),
        ),
      });
    }
  }
  return charts;
}

/** Final score per dataset: one chart each, a bar group per agent, with the dataset's reference lines. */
function datasetScoreBars(summary: ReportSummary): ChartSpec[] {
  return summary.datasets.map((dataset, index) => ({
    dataset,
    ...barChart(
      `chart-dataset-${index}`,
      `${dataset}: final score`,
      summary.agents,
      summary.sources.map((source, sourceIndex) => {
        const found = summary.agents.map((agent) => findCell(summary, dataset, source, agent));
        return meanSeries(
          source,
          colourFor(source, sourceIndex),
          found.map((cell) => cell?.estimate.mean ?? NaN),
          // One seed has no standard error: the bar stands without a whisker.
          found.map((cell) => cell?.estimate.standardError ?? NaN),
        );
      }),
      "normalised score (mean ± s.e.)",
      referenceLinesOf(summary, dataset),
    ),
  }));
}

function likelihoodChart(result: TrajectoryLikelihood, id: string): ChartSpec {
  const targets = [...new Set(result.series.map((s) => s.targetPolicy))];
  const guidances = result.series.flatMap((s) =>
    s.model === "diffusion" ? s.points.map((p) => p.guidance) : []
  );
  const span = guidances.length > 0 ? [Math.min(...guidances), Math.max(...guidances)] : [0, 1];
  const series: LineSeries[] = result.series.map((s) => {
    const colour = extraColours[targets.indexOf(s.targetPolicy) % extraColours.length];
    if (s.model === "diffusion") {
      return {
        label: `diffusion · ${s.targetPolicy}`,
        colour,
        x: s.points.map((p) => p.guidance),
        mean: s.points.map((p) => p.mean),
        standardError: s.points.map((p) => p.standardError),
      };
    }
    // PETS samples actions from the policy itself: one level, drawn across the λ range.
    return {
      label: `PETS · ${s.targetPolicy}`,
      colour,
      x: span,
      mean: [s.mean, s.mean],
      standardError: [s.standardError, s.standardError],
      dashed: true,
    };
  });
  return lineChart(
    id,
    `Figure 5: action log-likelihood under target policies (models trained on ${result.dataset})`,
    series,
    "guidance coefficient λ",
    "mean action log-likelihood",
  );
}

function dynamicsCharts(result: DynamicsError, prefix: string): ChartSpec[] {
  const targets = [...new Set(result.series.map((s) => s.targetPolicy))];
  const sources = [...new Set(result.series.map((s) => s.source))];
  return targets.map((target, t) =>
    lineChart(
      `${prefix}-${t}`,
      `Figure 6: dynamics MSE over rollout steps, target policy ${target} (models trained on ${result.dataset})`,
      result.series.filter((s) => s.targetPolicy === target).map((s) => ({
        label: s.guidance === undefined ? s.source : `${s.source} (λ=${s.guidance})`,
        colour: colourFor(s.source, sources.indexOf(s.source)),
        x: s.mean.map((_, i) => i + 1),
        mean: s.mean,
        standardError: s.standardError,
      })),
      "rollout step",
      "state mean squared error",
    )
  );
}

function tableEntry(
  summary: ReportSummary,
  item: CellSummary | AggregateSummary | undefined,
  id: string,
): string {
  if (!item) return `<td class="none" data-cell="${escapeHtml(id)}">—</td>`;
  if ("complete" in item && !item.complete) {
    return `<td class="none" data-cell="${
      escapeHtml(id)
    }" title="results for ${item.tasksCovered} of ${item.tasks} dataset × agent pairs">– (${item.tasksCovered}/${item.tasks})</td>`;
  }
  const notes: string[] = [`n = ${item.estimate.count}`];
  if (item.versusReal) notes.push(`vs real: p = ${formatPValue(item.versusReal.pValue)}`);
  if (item.versusUnguided) {
    notes.push(`vs unguided: p = ${formatPValue(item.versusUnguided.pValue)}`);
  }
  if ("pairedVersusUnguided" in item && item.pairedVersusUnguided) {
    notes.push(`paired by seed: p = ${formatPValue(item.pairedVersusUnguided.final.pValue)}`);
  }
  const classes = [item.versusReal?.improvement ? "better" : ""].filter(Boolean);
  const dagger = item.versusUnguided?.improvement
    ? `<sup class="dagger">${unguidedMark}</sup>`
    : "";
  return `<td data-cell="${escapeHtml(id)}" data-mean="${item.estimate.mean}"${
    classes.length ? ` class="${classes.join(" ")}"` : ""
  } title="${escapeHtml(notes.join("; "))}">${
    escapeHtml(formatEstimate(item.estimate, 1, "scores" in item ? summary.seedsPerEntry : 0))
  }${dagger}</td>`;
}

function columnHeader(agents: string[], sources: string[], first: string): string {
  return `<thead><tr><th rowspan="2">${escapeHtml(first)}</th>${
    agents.map((agent) => `<th colspan="${sources.length}" class="agent">${escapeHtml(agent)}</th>`)
      .join("")
  }</tr><tr>${
    agents.map(() => sources.map((source) => `<th>${escapeHtml(source)}</th>`).join("")).join("")
  }</tr></thead>`;
}

function mainTable(summary: ReportSummary): string {
  const { agents, sources } = summary;
  const width = 1 + agents.length * sources.length;
  const rows: string[] = [];
  for (const block of summary.blocks) {
    if (summary.blocks.length > 1) {
      rows.push(`<tr class="block"><th colspan="${width}">${escapeHtml(block.title)}</th></tr>`);
    }
    for (const dataset of block.datasets) {
      rows.push(
        `<tr><th>${escapeHtml(dataset)}</th>${
          agents.map((agent) =>
            sources.map((source) =>
              tableEntry(
                summary,
                findCell(summary, dataset, source, agent),
                `${dataset}/${source}/${agent}`,
              )
            ).join("")
          ).join("")
        }</tr>`,
      );
    }
    if (block.datasets.length > 1) {
      rows.push(
        `<tr class="total"><th>${escapeHtml(block.title)} total</th>${
          agents.map((agent) =>
            sources.map((source) =>
              tableEntry(
                summary,
                findAggregate(summary, block.total, source, agent),
                `${block.total.kind}:${block.total.name}/${source}/${agent}`,
              )
            ).join("")
          ).join("")
        }</tr>`,
      );
    }
  }
  return `<table class="scores" id="table-main">${columnHeader(agents, sources, "Dataset")}<tbody>${
    rows.join("")
  }</tbody></table>`;
}

/** Each dataset's late scores (mean of each run's last evaluations), in Table 2's layout, unmarked. */
function lateTable(summary: ReportSummary): string {
  const { agents, sources } = summary;
  const rows = summary.datasets.map((dataset) =>
    `<tr><th>${escapeHtml(dataset)}</th>${
      agents.map((agent) =>
        sources.map((source) => {
          const cell = findCell(summary, dataset, source, agent);
          return `<td>${cell ? escapeHtml(formatEstimate(cell.late)) : "—"}</td>`;
        }).join("")
      ).join("")
    }</tr>`
  );
  return `<table class="scores" id="table-late">${columnHeader(agents, sources, "Dataset")}<tbody>${
    rows.join("")
  }</tbody></table>`;
}

/** Policy-guided against unguided seed by seed, where a dataset × agent has both. */
function pairedSection(summary: ReportSummary): string {
  const rows = pairedRows(summary);
  if (rows.length === 0) return "";
  return `<h3>Policy-guided against unguided, seed by seed</h3><p class="legend">${
    escapeHtml(pairedLegend)
  }</p><div class="scroll"><table class="scores" id="table-paired"><thead><tr>${
    pairedColumns.map((title) => `<th>${escapeHtml(title)}</th>`).join("")
  }</tr></thead><tbody>${
    rows.map((cells) => `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`)
      .join("")
  }</tbody></table></div>`;
}

function aggregateTable(summary: ReportSummary, groups: DatasetGroup[], id: string): string {
  const agents = summary.agents.length > 1 ? [...summary.agents, allAgents] : summary.agents;
  const rows = groups.map((group) =>
    `<tr><th>${escapeHtml(group.name)}</th>${
      agents.map((agent) =>
        summary.sources.map((source) =>
          tableEntry(
            summary,
            findAggregate(summary, group, source, agent),
            `${group.kind}:${group.name}/${source}/${agent}`,
          )
        ).join("")
      ).join("")
    }</tr>`
  );
  return `<table class="scores" id="${id}">${
    columnHeader(agents, summary.sources, "Group")
  }<tbody>${rows.join("")}</tbody></table>`;
}

function groupsOf(summary: ReportSummary, kind: DatasetGroup["kind"]): DatasetGroup[] {
  const seen = new Map<string, DatasetGroup>();
  for (const aggregate of summary.aggregates) {
    if (aggregate.group.kind === kind) seen.set(aggregate.group.name, aggregate.group);
  }
  return [...seen.values()];
}

function chartBlock(chart: ChartSpec, wide = false): string {
  return `<figure class="chart${wide ? " wide" : ""}"><figcaption>${
    escapeHtml(chart.title)
  }</figcaption><div class="canvas-box"><canvas id="${chart.id}"${
    chart.dataset === undefined ? "" : ` data-dataset="${escapeHtml(chart.dataset)}"`
  }></canvas></div></figure>`;
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

function seconds(value: number): string {
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${(value / 60).toFixed(1)} min`;
  return `${(value / 3600).toFixed(2)} h`;
}

/** The shards a merged run came from, one row each (fields as the merge records them). */
function shardTable(shards: unknown): string {
  if (!Array.isArray(shards) || shards.length === 0) return "";
  const rows = shards.map((shard) => {
    const entry = (shard ?? {}) as Record<string, unknown>;
    const text = (value: unknown) =>
      escapeHtml(
        value === undefined ? "–" : typeof value === "string" ? value : JSON.stringify(value),
      );
    return `<tr><td>${text(entry.folder)}</td><td>${text(entry.shard)}</td><td>${
      text(entry.startedAt)
    }</td><td>${text(entry.finishedAt)}</td><td>${text(entry.computePath)}</td></tr>`;
  });
  return `<table class="plain" id="table-shards"><caption>Merged from</caption><thead><tr><th>Folder</th><th>Shard</th><th>Started</th><th>Finished</th><th>Compute path</th></tr></thead><tbody>${
    rows.join("")
  }</tbody></table>`;
}

function metadataSection(summary: ReportSummary): string {
  const meta = summary.metadata;
  const items: [string, string][] = [
    ["Result files", String(summary.cellCount)],
    ["Hosts", summary.hosts.join(", ") || "–"],
    ["Presets", summary.presets.join(", ") || "–"],
    ["Backend", meta?.backend ?? (summary.backends.join(", ") || "–")],
    ["Compute path", meta?.computePath ?? (summary.computePaths.join(", ") || "–")],
    ["Started", meta?.startedAt ?? summary.span?.startedAt ?? "–"],
    ["Finished", meta?.finishedAt ?? summary.span?.finishedAt ?? "–"],
    ["Report generated", summary.generatedAt],
  ];
  if (typeof meta?.mergedAt === "string") items.push(["Merged", meta.mergedAt]);
  const timingRows = (Object.entries(summary.timings) as [string, number][]).map(([name, value]) =>
    `<tr><th>${escapeHtml(name.replace(/Seconds$/, ""))}</th><td>${seconds(value)}</td></tr>`
  );
  const versions = { ...summary.versions, ...meta?.versions };
  const versionRows = Object.entries(versions).map(([name, version]) =>
    `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(version)}</td></tr>`
  );
  return `<section id="metadata"><h2>Run metadata</h2><div class="meta-grid"><dl>${
    items.map(([term, value]) => `<dt>${escapeHtml(term)}</dt><dd>${escapeHtml(value)}</dd>`).join(
      "",
    )
  }</dl><table class="plain"><caption>Time summed over cells</caption><tbody>${
    timingRows.join("")
  }</tbody></table>${
    versionRows.length
      ? `<table class="plain"><caption>Versions</caption><tbody>${
        versionRows.join("")
      }</tbody></table>`
      : ""
  }</div>${
    meta
      ? `<details><summary>Configuration (run.json)</summary><pre>${
        escapeHtml(JSON.stringify(meta.config, null, 2))
      }</pre>${
        meta.shards === undefined || Array.isArray(meta.shards)
          ? ""
          : `<pre>${escapeHtml(JSON.stringify({ shards: meta.shards }, null, 2))}</pre>`
      }</details>${shardTable(meta.shards)}`
      : "<p>No run.json in this folder: metadata comes from the cell files.</p>"
  }</section>`;
}

function qualitySection(summary: ReportSummary, replayCharts: ChartSpec[]): string {
  if (summary.quality.length === 0) {
    return `<section id="quality"><h2>Synthetic data quality</h2><p>No cell of this run records its data's quality (cells from before it was recorded).</p></section>`;
  }
  const columns = presentColumns(summary.quality);
  const rows = summary.quality.map((entry) =>
    `<tr${entry.source === referenceLabel ? ' class="reference"' : ""}><td>${
      escapeHtml(entry.dataset)
    }</td><td>${escapeHtml(entry.source)}</td>${
      columns.map((column) =>
        `<td class="num">${formatQualityValue(entry.values[column.key], column.digits)}</td>`
      ).join("")
    }</tr>`
  );
  return `<section id="quality"><h2>Synthetic data quality</h2><p class="legend">${
    escapeHtml(qualityLegend)
  } Also in <a href="quality.csv">quality.csv</a>.</p><div class="scroll"><table class="plain" id="table-quality"><thead><tr><th>Dataset</th><th>Data</th>${
    columns.map((column) => `<th>${escapeHtml(column.title)}</th>`).join("")
  }</tr></thead><tbody>${rows.join("")}</tbody></table></div>${
    replayCharts.length
      ? `<p class="legend">Replay error (the paper's Figure 6 measure, from each cell's data): the simulator starts at a run's first state and replays its actions; the mean distance to the run's states after each step. Dashed: the real dataset.</p><div class="charts">${
        replayCharts.map((chart) => chartBlock(chart)).join("")
      }</div>`
      : ""
  }${
    summary.planFigures.length
      ? `<p class="legend">Trajectories from each source on the maze: walls grey, the goal a star, each line from its start (dot); real data first, then each source's last generation (the guided one for policy guidance).</p>${
        summary.planFigures.map(renderPlanFigure).join("")
      }`
      : ""
  }</section>`;
}

function cellList(summary: ReportSummary): string {
  const rows: string[] = [];
  for (const cell of summary.cells) {
    cell.seeds.forEach((seed, i) => {
      rows.push(
        `<tr><td>${escapeHtml(cell.dataset)}</td><td>${escapeHtml(cell.source)}</td><td>${
          escapeHtml(cell.agent)
        }</td><td>${seed}</td><td class="num" data-score="${cell.scores[i]}">${
          formatNumber(cell.scores[i], 2)
        }</td><td><a href="${escapeHtml(encodeURI(cell.files[i]))}">${
          escapeHtml(cell.files[i])
        }</a></td></tr>`,
      );
    });
  }
  return `<section id="cells"><h2>Cell results</h2><p>Final normalised score of every run, with its JSON.</p><table class="plain" id="table-cells"><thead><tr><th>Dataset</th><th>Source</th><th>Agent</th><th>Seed</th><th>Score</th><th>File</th></tr></thead><tbody>${
    rows.join("")
  }</tbody></table></section>`;
}

const styles = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;margin:0;background:#f9fafb}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
header{background:#111827;color:#f9fafb;padding:16px 24px}
header h1{margin:0 0 4px;font-size:22px}header p{margin:0;color:#d1d5db}
nav a{color:#93c5fd;margin-right:14px}
h2{margin-top:32px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
section{margin-bottom:24px}
.plan-panels{display:flex;flex-wrap:wrap;gap:12px}.plan-panel{margin:0;text-align:center}.plan-panel figcaption{font-size:13px}
table{border-collapse:collapse;background:#fff;margin:8px 0}
th,td{border:1px solid #e5e7eb;padding:4px 8px}
table.scores td{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.scores th{text-align:left;white-space:nowrap}
table.scores thead th{text-align:center;background:#f3f4f6}
table.scores th.agent{background:#e5e7eb}
td.better{background:#bfdbfe;font-weight:600}
td.none{color:#9ca3af}
.swatch{background:#bfdbfe;font-weight:600;padding:0 4px}
tr.block th{background:#f3f4f6;font-style:italic}
tr.total th,tr.total td{border-top:2px solid #9ca3af}
sup.dagger{color:#b45309;font-weight:700}
.legend{color:#4b5563;max-width:1000px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:16px}
figure.chart{background:#fff;border:1px solid #e5e7eb;margin:0;padding:8px}
figure.chart.wide{grid-column:1/-1}
figcaption{font-weight:600;margin-bottom:4px}
.canvas-box{position:relative;height:300px}
.meta-grid{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:8px 0}
dt{font-weight:600}dd{margin:0}
table.plain td.num{text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:2px 0}
pre{background:#fff;border:1px solid #e5e7eb;padding:8px;overflow:auto;max-height:400px}
.scroll{overflow-x:auto}
`;

// Runs in the page: draws every chart, then records per canvas whether pixels were painted.
const pageScript = `
(function () {
  const spec = JSON.parse(document.getElementById("report-data").textContent);
  const errorBars = {
    id: "errorBars",
    afterDatasetsDraw(chart) {
      const ctx = chart.ctx;
      chart.data.datasets.forEach((dataset, index) => {
        const meta = chart.getDatasetMeta(index);
        if (!dataset.errorBars || meta.hidden) return;
        const scale = chart.scales[meta.yAxisID];
        ctx.save();
        ctx.strokeStyle = "#111827";
        ctx.lineWidth = 1.2;
        meta.data.forEach((bar, i) => {
          const range = dataset.errorBars[i];
          if (!range || range[0] === null || range[1] === null) return;
          const top = scale.getPixelForValue(range[1]);
          const bottom = scale.getPixelForValue(range[0]);
          const cap = Math.min(6, bar.width / 4);
          ctx.beginPath();
          ctx.moveTo(bar.x, top); ctx.lineTo(bar.x, bottom);
          ctx.moveTo(bar.x - cap, top); ctx.lineTo(bar.x + cap, top);
          ctx.moveTo(bar.x - cap, bottom); ctx.lineTo(bar.x + cap, bottom);
          ctx.stroke();
        });
        ctx.restore();
      });
    },
  };
  // Strokes each reference dataset (its score is in the dataset's "reference") across the chart
  // area, and records on the canvas what it drew, for a reader's tools and the browser test.
  const referenceLines = {
    id: "referenceLines",
    afterDatasetsDraw(chart) {
      const ctx = chart.ctx;
      const area = chart.chartArea;
      const drawn = [];
      chart.data.datasets.forEach((dataset, index) => {
        if (typeof dataset.reference !== "number" || !chart.isDatasetVisible(index)) return;
        const y = chart.scales[chart.getDatasetMeta(index).yAxisID].getPixelForValue(dataset.reference);
        if (!(y >= area.top - 0.5 && y <= area.bottom + 0.5)) return;
        ctx.save();
        ctx.strokeStyle = dataset.borderColor;
        ctx.lineWidth = dataset.borderWidth || 1.5;
        ctx.setLineDash(dataset.borderDash || []);
        ctx.beginPath();
        ctx.moveTo(area.left, y); ctx.lineTo(area.right, y);
        ctx.stroke();
        ctx.restore();
        drawn.push({
          kind: dataset.referenceKind,
          label: dataset.label,
          value: dataset.reference,
          y: Math.round(y),
          left: Math.round(area.left),
          right: Math.round(area.right),
        });
      });
      chart.canvas.dataset.referenceLines = JSON.stringify(drawn);
    },
  };
  Chart.register(errorBars, referenceLines);
  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  let drawn = 0;
  for (const chart of spec.charts) {
    const canvas = document.getElementById(chart.id);
    try {
      const config = chart.config;
      config.options = config.options || {};
      config.options.animation = false;
      config.options.plugins = Object.assign({}, config.options.plugins, {
        legend: { labels: { filter: (item, data) => !data.datasets[item.datasetIndex].band } },
        tooltip: { filter: (item) => !item.dataset.band && item.dataset.reference === undefined },
      });
      let points = 0;
      for (const dataset of config.data.datasets) {
        if (dataset.band || dataset.reference !== undefined) continue;
        for (const value of dataset.data) {
          const y = value !== null && typeof value === "object" ? value.y : value;
          if (y !== null && y !== undefined) points++;
        }
      }
      canvas.dataset.points = String(points);
      new Chart(canvas, config);
      const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted++;
      canvas.dataset.paintedPixels = String(painted);
      canvas.dataset.drawn = painted > 0 ? "true" : "false";
      if (painted > 0) drawn++;
    } catch (error) {
      canvas.dataset.drawn = "false";
      canvas.dataset.error = String(error && error.message || error);
    }
  }
  document.body.dataset.chartsTotal = String(spec.charts.length);
  document.body.dataset.chartsDrawn = String(drawn);
})();
`;

/** Renders the report page; `chartJs` is chart.js's UMD bundle, inlined as is. */
export function renderHtml(summary: ReportSummary, chartJs: string): string {
  const families = groupsOf(summary, "family");
  const levels = groupsOf(summary, "level");
  const suites = groupsOf(summary, "suite");
  const aggregateCharts: ChartSpec[] = [];
  if (families.length > 0) {
    aggregateCharts.push(
      aggregateBars(summary, "chart-family", "Figure 4a: by environment", families),
    );
  }
  if (levels.length > 0) {
    aggregateCharts.push(
      aggregateBars(summary, "chart-level", "Figure 4b: by behaviour level", levels),
    );
  }
  if (suites.length > 0) {
    aggregateCharts.push(
      aggregateBars(summary, "chart-suite", "Suites (Table 2 totals)", suites),
    );
  }
  const iqmGroups = [...suites, ...families, ...levels];
  const iqmChart = iqmGroups.length > 0 ? interquartileBars(summary, iqmGroups) : undefined;
  const curves = curveCharts(summary);
  const datasetCharts = datasetScoreBars(summary);
  const analysisCharts: ChartSpec[] = [];
  // Figure 5 before Figure 6, whatever the file names.
  const analysis = [...summary.analysis].sort((a, b) =>
    Number(a.result.kind === "dynamics-error") - Number(b.result.kind === "dynamics-error")
  );
  analysis.forEach(({ result }, index) => {
    if (result.kind === "trajectory-likelihood") {
      analysisCharts.push(likelihoodChart(result, `chart-figure5-${index}`));
    } else analysisCharts.push(...dynamicsCharts(result, `chart-figure6-${index}`));
  });
  const replayCharts = summary.replayFigures.map((figure, index) =>
    lineChart(
      `chart-replay-${index}`,
      `${figure.dataset}: replay error along runs of transitions`,
      figure.series.map((series, i) => ({
        label: series.source,
        colour: colourFor(series.source, i),
        x: series.mean.map((_, k) => k + 1),
        mean: series.mean,
        standardError: series.standardError.map((v) => (Number.isFinite(v) ? v : null)),
        dashed: series.source === datasetPanelLabel,
      })),
      "replayed steps",
      "mean |s_sim − s|",
    )
  );
  const charts = [
    ...datasetCharts,
    ...aggregateCharts,
    ...(iqmChart ? [iqmChart] : []),
    ...curves,
    ...replayCharts,
    ...analysisCharts,
  ];

  const data = JSON.stringify({ charts: charts.map(({ id, config }) => ({ id, config })) })
    .replaceAll("<", "\\u003c");
  const inlineChartJs = chartJs.replace(/<\/(script)/gi, "<\\/$1");
  const agentNote = summary.agents.length > 1
    ? "Agents are kept apart, as in the paper's Figure 4."
    : "";
  const notes = summary.analysis.map(({ result, file }) =>
    result.notes ? `<p class="legend">${escapeHtml(file)}: ${escapeHtml(result.notes)}</p>` : ""
  ).join("");

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgd-bench report: ${escapeHtml(summary.runName)}</title>
<style>${styles}</style>
</head>
<body>
<header><h1>pgd-bench report: ${escapeHtml(summary.runName)}</h1>
<p>${plural(summary.cellCount, "cell result", "cell results")} · ${
    plural(summary.datasets.length, "dataset", "datasets")
  } · ${plural(summary.sources.length, "source", "sources")} · ${
    plural(summary.agents.length, "agent", "agents")
  }${
    summary.missing.length ? ` · <strong>${summary.missing.length} missing</strong>` : ""
  } · generated ${escapeHtml(summary.generatedAt)}</p>
<nav><a href="#table2">Table 2</a><a href="#aggregates">Aggregates</a><a href="#curves">Learning curves</a><a href="#quality">Data quality</a><a href="#analysis">Trajectory analysis</a><a href="#missing">Missing</a><a href="#metadata">Metadata</a><a href="#cells">Cells</a><a href="summary.md">summary.md</a><a href="results.csv">results.csv</a><a href="summary.json">summary.json</a></nav>
</header>
<main>
<section id="table2"><h2>Final score (Table 2)</h2><div class="scroll">${mainTable(summary)}</div>
<p class="legend">${
    escapeHtml(legend(summary)).replace(/\*\*bold\*\*/, '<span class="swatch">shaded</span>')
      .replaceAll("`", "")
  }</p>
<h3>Late score</h3><p class="legend">Mean of each run's last ${lateEvaluations} evaluations, then mean ± standard error over seeds: a single evaluation of a short run can swing by tens of points from the next, and this is the steadier reading. No tests.</p><div class="scroll">${
    lateTable(summary)
  }</div>
${
    pairedSection(summary)
  }<h3>Per dataset</h3><p class="legend">Bars: mean ± standard error over seeds, as in the table. ${
    escapeHtml(referenceLinesLegend)
  }</p><div class="charts">${datasetCharts.map((c) => chartBlock(c)).join("")}</div></section>
<section id="aggregates"><h2>Aggregates</h2><p class="legend">Mean over datasets of the per-dataset means ± standard error; the IQM chart pools all runs with 95% stratified bootstrap intervals. ${agentNote} Reference lines belong to one dataset each, so these charts draw none (see Table 2's per-dataset charts and the learning curves).</p>
<div class="charts">${aggregateCharts.map((c) => chartBlock(c)).join("")}${
    iqmChart ? chartBlock(iqmChart, iqmGroups.length > 3) : ""
  }</div>
${
    families.length
      ? `<h3>By environment</h3><div class="scroll">${
        aggregateTable(summary, families, "table-family")
      }</div>`
      : ""
  }
${
    levels.length
      ? `<h3>By behaviour level</h3><div class="scroll">${
        aggregateTable(summary, levels, "table-level")
      }</div>`
      : ""
  }
</section>
<section id="curves"><h2>Learning curves</h2><p class="legend">Mean normalised score over seeds at each evaluation, shaded ± standard error. ${
    escapeHtml(referenceLinesLegend)
  }</p><div class="charts">${curves.map((c) => chartBlock(c)).join("")}</div></section>
${qualitySection(summary, replayCharts)}
<section id="analysis"><h2>Trajectory analysis (Figures 5 and 6)</h2>${
    analysisCharts.length
      ? `<div class="charts">${
        analysisCharts.map((c) => chartBlock(c, true)).join("")
      }</div>${notes}`
      : `<p>No analysis results in this run yet. Figures 5 and 6 (action likelihood over λ, replayed dynamics error) come from <code>deno task pgd analyze --out &lt;this result folder&gt;</code>, which writes <code>analysis/*.json</code> here and rebuilds this page.</p>`
  }</section>
<section id="missing"><h2>Missing cells</h2>${
    summary.missing.length
      ? `<p>${
        plural(summary.missing.length, "expected cell has", "expected cells have")
      } no result:</p><ul id="missing-list">${
        summary.missing.map((cell) =>
          `<li><code>${escapeHtml(cell.file)}</code>${
            cell.reason ? ` — failed: <span class="reason">${escapeHtml(cell.reason)}</span>` : ""
          }</li>`
        ).join("")
      }</ul>`
      : "<p>None: every expected cell has a result.</p>"
  }${
    summary.warnings.length
      ? `<h3>Warnings</h3><ul>${
        summary.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join("")
      }</ul>`
      : ""
  }</section>
${metadataSection(summary)}
${cellList(summary)}
</main>
<script type="application/json" id="report-data">${data}</script>
<script>${inlineChartJs}</script>
<script>${pageScript}</script>
</body>
</html>
`;
}
