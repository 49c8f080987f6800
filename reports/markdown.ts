/**
 * The Markdown report: Table 2 (rows datasets, columns agent × source, mean ±
 * s.e. over seeds, significant improvements marked), the Figure 4 aggregates,
 * interquartile means, the t-tests behind the marks, paired t-tests of
 * policy-guided against unguided data, and missing cells.
 *
 * @module
 */
import {
  fewSeedsClause,
  formatEstimate,
  formatNumber,
  formatPValue,
  unguidedMark,
} from "./format.ts";
import { formatQualityValue, presentColumns, qualityColumns } from "./quality.ts";
import {
  type AggregateSummary,
  allAgents,
  type CellSummary,
  type Comparison,
  type DatasetGroup,
  findAggregate,
  findCell,
  lateEvaluations,
  type ReportSummary,
} from "./summary.ts";
import type { PairedResult } from "../stats/paired.ts";

function row(cells: string[]): string {
  return `| ${cells.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`;
}

function header(titles: string[]): string {
  return [row(titles), row(titles.map((_, i) => (i === 0 ? "---" : "---:")))].join("\n");
}

function entry(summary: ReportSummary, item: CellSummary | AggregateSummary | undefined): string {
  if (!item) return "—";
  if ("complete" in item && !item.complete) return `– (${item.tasksCovered}/${item.tasks})`;
  let text = formatEstimate(item.estimate, 1, "scores" in item ? summary.seedsPerEntry : 0);
  if (item.versusReal?.improvement) text = `**${text}**`;
  if (item.versusUnguided?.improvement) text += ` ${unguidedMark}`;
  return text;
}

/** The legend under Table 2. */
export function legend(summary: ReportSummary): string {
  const seeds = summary.seedsPerEntry;
  return `Final D4RL normalised score ×100, mean ± standard error over ${seeds} seed${
    seeds === 1 ? "" : "s"
  } per entry (n where fewer); **bold**: ` +
    `significantly above \`real\` for the same agent, ${unguidedMark}: policy-guided ` +
    `significantly above unguided (Welch's t-test, two-sided p < ${summary.significanceLevel}` +
    fewSeedsClause(seeds) +
    `).` +
    (summary.blocks.some((block) => block.datasets.length > 1)
      ? " Totals average the per-dataset means."
      : "") +
    ` — : no result.` + referencesLine(summary);
}

/** Reference points per dataset, one sentence. */
function referencesLine(summary: ReportSummary): string {
  if (!summary.references.length) return "";
  return " References (D4RL normalisation: random reference 0, expert 100): " +
    summary.references.map((r) =>
      `${r.dataset}: random policy ${formatNumber(r.randomPolicy)}, zero return ${
        formatNumber(r.zeroReturn)
      }, the dataset's behaviour ${formatNumber(r.datasetBehavior)}`
    ).join("; ") + ".";
}

/**
 * The columns of an agent × source table, each agent's sources side by side,
 * and its header row with `first` over the row labels.
 */
function agentSourceColumns(
  agents: readonly string[],
  sources: readonly string[],
  first: string,
): { columns: { agent: string; source: string }[]; headerLine: string } {
  const columns = agents.flatMap((agent) => sources.map((source) => ({ agent, source })));
  return {
    columns,
    headerLine: header([first, ...columns.map((c) => `${c.agent} · ${c.source}`)]),
  };
}

/** Table 2 in Markdown: rows datasets (with block totals), columns agent × source. */
export function renderMainTable(summary: ReportSummary): string {
  const { columns, headerLine } = agentSourceColumns(summary.agents, summary.sources, "Dataset");
  const lines = [headerLine];
  for (const block of summary.blocks) {
    if (summary.blocks.length > 1) lines.push(row([`*${block.title}*`, ...columns.map(() => "")]));
    for (const dataset of block.datasets) {
      lines.push(row([
        dataset,
        ...columns.map((c) => entry(summary, findCell(summary, dataset, c.source, c.agent))),
      ]));
    }
    if (block.datasets.length > 1) {
      lines.push(row([
        `${block.title} total`,
        ...columns.map((c) =>
          entry(summary, findAggregate(summary, block.total, c.source, c.agent))
        ),
      ]));
    }
  }
  return lines.join("\n");
}

/** Each dataset's late scores (see `lateScore`), in the main table's layout. */
function renderLateTable(summary: ReportSummary): string {
  const { columns, headerLine } = agentSourceColumns(summary.agents, summary.sources, "Dataset");
  const lines = [headerLine];
  for (const dataset of summary.datasets) {
    lines.push(row([
      dataset,
      ...columns.map((c) => {
        const cell = findCell(summary, dataset, c.source, c.agent);
        return cell ? formatEstimate(cell.late) : "—";
      }),
    ]));
  }
  return lines.join("\n");
}

function aggregateTable(summary: ReportSummary, groups: DatasetGroup[]): string {
  const agents = summary.agents.length > 1 ? [...summary.agents, allAgents] : summary.agents;
  const { columns, headerLine } = agentSourceColumns(agents, summary.sources, "Group");
  const lines = [headerLine];
  for (const group of groups) {
    lines.push(row([
      group.name,
      ...columns.map((c) => entry(summary, findAggregate(summary, group, c.source, c.agent))),
    ]));
  }
  return lines.join("\n");
}

function interquartileTable(summary: ReportSummary, groups: DatasetGroup[]): string {
  const agents = summary.agents.length > 1 ? [...summary.agents, allAgents] : summary.agents;
  const { columns, headerLine } = agentSourceColumns(agents, summary.sources, "Group");
  const lines = [headerLine];
  for (const group of groups) {
    lines.push(row([
      `${group.name} (${group.kind})`,
      ...columns.map((c) => {
        const aggregate = findAggregate(summary, group, c.source, c.agent);
        if (!aggregate?.complete) return "–";
        const { estimate, lower, upper } = aggregate.interquartileMean;
        return `${formatNumber(estimate)} [${formatNumber(lower)}, ${formatNumber(upper)}]`;
      }),
    ]));
  }
  return lines.join("\n");
}

function testRows(label: string, agent: string, source: string, tests: (Comparison | undefined)[]) {
  return tests.filter((test): test is Comparison => test !== undefined).map((test) =>
    row([
      label,
      agent,
      `${source} vs ${test.against}`,
      formatNumber(test.difference, 2),
      formatNumber(test.t, 2),
      formatNumber(test.degreesOfFreedom, 1),
      formatPValue(test.pValue),
      // "—" where the test cannot be made (fewer than two seeds on a side).
      Number.isFinite(test.pValue) ? (test.improvement ? "yes" : "no") : "—",
    ])
  );
}

/** What the data-quality table shows, in one paragraph. */
export const qualityLegend =
  "Means over a bounded sample of every generation (all seeds and agents) of each source, under " +
  "held-out real data measured the same way: " +
  qualityColumns.map((column) => `*${column.title}*: ${column.meaning}`).join("; ") + ".";

/** The data-quality table in Markdown (columns no row has are left out). */
export function renderQualityTable(summary: ReportSummary): string {
  const columns = presentColumns(summary.quality);
  return [
    header(["Dataset", "Data", ...columns.map((column) => column.title)]),
    ...summary.quality.map((entry) =>
      row([
        entry.dataset,
        entry.source,
        ...columns.map((column) => formatQualityValue(entry.values[column.key], column.digits)),
      ])
    ),
  ].join("\n");
}

/** Why and how policy-guided entries are also tested against unguided ones seed by seed. */
export const pairedLegend =
  "Policy-guided minus unguided, seed by seed, over the seeds both have (mean difference ± " +
  "standard error, two-sided paired t-test): runs of one seed share the agent's initialisation, " +
  "its evaluation episodes and, with the same denoiser options, the first (unguided) " +
  "generation, so until the first guided generation the two runs are the same run, and the " +
  "pairing removes the spread between seeds that Welch's test carries.";

/** Columns of the paired table. */
export const pairedColumns = [
  "Dataset",
  "Agent",
  "Seeds",
  "Final: difference",
  "p",
  "Late: difference",
  "p",
] as const;

/** The paired table's rows, one per dataset × agent with both diffusion sources, as text. */
export function pairedRows(summary: ReportSummary): string[][] {
  const difference = (result: PairedResult) =>
    Number.isFinite(result.standardError)
      ? `${formatNumber(result.difference)} ± ${formatNumber(result.standardError)}`
      : formatNumber(result.difference);
  return summary.cells.flatMap((cell) => {
    const paired = cell.pairedVersusUnguided;
    if (!paired) return [];
    return [[
      cell.dataset,
      cell.agent,
      paired.seeds.join(", "),
      difference(paired.final),
      formatPValue(paired.final.pValue),
      difference(paired.late),
      formatPValue(paired.late.pValue),
    ]];
  });
}

/** The full `summary.md`. */
export function renderMarkdown(summary: ReportSummary): string {
  const groupsOf = (kind: DatasetGroup["kind"]) => {
    const seen = new Map<string, DatasetGroup>();
    for (const aggregate of summary.aggregates) {
      if (aggregate.group.kind === kind) seen.set(aggregate.group.name, aggregate.group);
    }
    return [...seen.values()];
  };
  const suites = groupsOf("suite");
  const families = groupsOf("family");
  const levels = groupsOf("level");
  const parts: string[] = [
    `# pgd-bench report: ${summary.runName}`,
    "",
    `Generated ${summary.generatedAt} from ${summary.cellCount} cell results` +
    (summary.hosts.length ? ` (hosts: ${summary.hosts.join(", ")})` : "") +
    (summary.presets.length ? `; preset ${summary.presets.join(", ")}` : "") +
    (summary.backends.length ? `; backend ${summary.backends.join(", ")}` : "") + ".",
    "",
    "## Final score (Table 2)",
    "",
    renderMainTable(summary),
    "",
    legend(summary),
    "",
    `## Late score (mean of each run's last ${lateEvaluations} evaluations)`,
    "",
    "A single evaluation of a short run can swing by tens of points from the next; this mean of " +
    "the last few is steadier. Mean ± standard error over seeds, no tests.",
    "",
    renderLateTable(summary),
  ];
  if (families.length > 0 || levels.length > 0) {
    parts.push("", "## Aggregates (Figure 4)", "");
    parts.push(
      "Mean over datasets of the per-dataset means ± standard error; marks as in Table 2. " +
        "`all agents` averages over agents too.",
    );
    if (families.length > 0) {
      parts.push("", "### By environment", "", aggregateTable(summary, families));
    }
    if (levels.length > 0) {
      parts.push("", "### By behaviour level", "", aggregateTable(summary, levels));
    }
  }
  const allGroups = [...suites, ...families, ...levels];
  if (allGroups.length > 0) {
    parts.push(
      "",
      "## Interquartile mean",
      "",
      "IQM of all runs in the group with a 95% stratified bootstrap interval (datasets × agents " +
        "as strata, seeded).",
      "",
      interquartileTable(summary, allGroups),
    );
  }
  const tests: string[] = [];
  for (const cell of summary.cells) {
    tests.push(
      ...testRows(cell.dataset, cell.agent, cell.source, [cell.versusReal, cell.versusUnguided]),
    );
  }
  for (const aggregate of summary.aggregates) {
    tests.push(
      ...testRows(
        `${aggregate.group.name} (${aggregate.group.kind})`,
        aggregate.agent,
        aggregate.source,
        [aggregate.versusReal, aggregate.versusUnguided],
      ),
    );
  }
  if (tests.length > 0) {
    parts.push(
      "",
      "## Welch's t-tests",
      "",
      header(["Dataset or group", "Agent", "Test", "Difference", "t", "df", "p", "Improvement"]),
      ...tests,
    );
  }
  const paired = pairedRows(summary);
  if (paired.length > 0) {
    parts.push(
      "",
      "## Paired t-tests: policy-guided against unguided",
      "",
      pairedLegend,
      "",
      header([...pairedColumns]),
      ...paired.map((cells) => row(cells)),
    );
  }
  if (summary.quality.length > 0) {
    parts.push("", "## Synthetic data quality", "", qualityLegend, "", renderQualityTable(summary));
  }
  parts.push("", "## Missing cells", "");
  if (summary.missing.length === 0) parts.push("None: every expected cell has a result.");
  else {
    const count = summary.missing.length;
    parts.push(`${count} expected ${count === 1 ? "cell has" : "cells have"} no result:`, "");
    for (const cell of summary.missing) {
      parts.push(`- \`${cell.file}\`${cell.reason ? ` — failed: ${cell.reason}` : ""}`);
    }
  }
  if (summary.analysis.length > 0) {
    parts.push("", "## Trajectory analysis", "");
    for (const { result, file } of summary.analysis) {
      const figure = result.kind === "trajectory-likelihood" ? "Figure 5" : "Figure 6";
      parts.push(`- ${figure} (${result.kind}, ${result.dataset}): \`${file}\``);
    }
  }
  if (summary.warnings.length > 0) {
    parts.push("", "## Warnings", "", ...summary.warnings.map((warning) => `- ${warning}`));
  }
  return parts.join("\n") + "\n";
}
