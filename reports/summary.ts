/**
 * The numbers every report shows, computed once from a loaded run: per-cell
 * mean ± standard error over seeds with Welch's t-tests (each synthetic source
 * against `real`, policy-guided against unguided) and a paired t-test of
 * policy-guided against unguided over the seeds both have, aggregates per environment
 * family, per behaviour level and per suite (the paper's Table 2 "Total" rows
 * and Figure 4) with interquartile means and stratified bootstrap intervals,
 * learning curves, missing cells and run metadata.
 *
 * @module
 */
import type { CellKey, CellResult } from "../core/results.ts";
import { cellId, cellPath } from "../core/results.ts";
import { deriveSeed } from "../core/rng.ts";
import { averageEstimates, estimateMean, mean, type MeanEstimate } from "../stats/summary.ts";
import { welchTestOfEstimates } from "../stats/welch.ts";
import { type PairedResult, pairedTTest } from "../stats/paired.ts";
import { type IntervalEstimate, stratifiedBootstrap } from "../stats/bootstrap.ts";
import {
  type PlanFigure,
  planFigures,
  type QualityRow,
  type ReplayFigure,
  replayFigures,
  summarizeQuality,
} from "./quality.ts";
import type { LoadedAnalysis, RunMetadata, RunResults } from "./load.ts";

/** The source every synthetic source is tested against. */
export const realSource = "real";
/** The guided source, also tested against {@link unguidedSource}. */
export const guidedSource = "policy-guided";
/** The unguided diffusion source (λ = 0). */
export const unguidedSource = "unguided";
/** Significance level of the marked improvements (the paper's p < 0.05). */
export const significanceLevel = 0.05;
/** The agent name of aggregates taken over all agents (Figure 4 averages TD3+BC and IQL). */
export const allAgents = "all agents";

/**
 * Evaluations averaged into a run's late score. One evaluation of a short
 * run can swing by tens of points from the next (maze2d at `quick`), so the
 * reports give the mean of the last few beside the final score the paper
 * reports.
 */
export const lateEvaluations = 3;

/** The mean normalised score of a run's last {@link lateEvaluations} evaluations (fewer where it has fewer). */
export function lateScore(result: Pick<CellResult, "evaluations" | "finalScore">): number {
  const late = result.evaluations.slice(-lateEvaluations);
  return late.length
    ? mean(late.map((evaluation) => evaluation.normalizedScore))
    : result.finalScore;
}

/** Families whose datasets vary the behaviour policy (random … expert); others vary the layout. */
const locomotionFamilies = ["halfcheetah", "hopper", "walker2d", "ant"];
const familyOrder = [...locomotionFamilies, "maze2d", "antmaze"];
/** Behaviour levels, from the weakest policy up (the paper lists random, mixed, medium). */
const behaviourLevelOrder = [
  "random",
  "medium-replay",
  "medium",
  "medium-expert",
  "expert",
  "full-replay",
];
/** Maze layouts, from small to large. */
const layoutOrder = [
  "umaze",
  "umaze-diverse",
  "medium",
  "medium-play",
  "medium-diverse",
  "large",
  "large-play",
  "large-diverse",
];
const sourceOrder = [realSource, unguidedSource, guidedSource, "pets"];

/** The family of a dataset id: the part before the first `-` (`maze2d-umaze` → `maze2d`). */
export function datasetFamily(dataset: string): string {
  const dash = dataset.indexOf("-");
  return dash < 0 ? dataset : dataset.slice(0, dash);
}

/** The level of a dataset id: the part after the first `-` (`hopper-medium-replay` → `medium-replay`). */
export function datasetLevel(dataset: string): string {
  const dash = dataset.indexOf("-");
  return dash < 0 ? "" : dataset.slice(dash + 1);
}

/** Whether a dataset's level is a behaviour level (locomotion) rather than a layout (mazes). */
export function isLocomotion(dataset: string): boolean {
  return locomotionFamilies.includes(datasetFamily(dataset));
}

function rank(order: readonly string[], name: string): number {
  const index = order.indexOf(name);
  return index < 0 ? order.length : index;
}

function byOrder(order: readonly string[]) {
  return (a: string, b: string) => rank(order, a) - rank(order, b) || a.localeCompare(b);
}

/** Dataset order of Table 2: locomotion by level then family, then each other family by level. */
export function compareDatasets(a: string, b: string): number {
  const locomotionA = isLocomotion(a);
  const locomotionB = isLocomotion(b);
  if (locomotionA !== locomotionB) return locomotionA ? -1 : 1;
  const family = byOrder(familyOrder)(datasetFamily(a), datasetFamily(b));
  const level = byOrder(locomotionA ? behaviourLevelOrder : layoutOrder)(
    datasetLevel(a),
    datasetLevel(b),
  );
  return locomotionA ? level || family : family || level;
}

/** A Welch t-test of one column against another. */
export interface Comparison {
  /** The source compared against. */
  against: string;
  /** Difference of means (this − against). */
  difference: number;
  /** Welch's t. */
  t: number;
  /** Welch–Satterthwaite degrees of freedom. */
  degreesOfFreedom: number;
  /** Two-sided p-value (NaN with fewer than two seeds on a side). */
  pValue: number;
  /** A higher mean with p below {@link significanceLevel}. */
  improvement: boolean;
}

/**
 * A paired t-test of one entry against another over the seeds both have:
 * runs of one seed share the agent's initialisation and evaluation episodes,
 * and the two diffusion sources also their first (unguided) generation.
 */
export interface PairedComparison {
  /** The source compared against. */
  against: string;
  /** Seeds both entries have. */
  seeds: number[];
  /** Of the final scores. */
  final: PairedResult;
  /** Of the late scores. */
  late: PairedResult;
}

/** Scores a dataset's results are read against. */
export interface DatasetReferences {
  /** Dataset id. */
  dataset: string;
  /** A uniformly random policy on the evaluation episodes. */
  randomPolicy: number;
  /** An episode return of 0 (Maze2d: never reaching the goal). */
  zeroReturn: number;
  /** The dataset's own behaviour (mean over its episodes). */
  datasetBehavior: number;
}

/** Means of the cells' recorded references, per dataset that has any. */
function datasetReferences(results: CellResult[], datasets: string[]): DatasetReferences[] {
  const found: DatasetReferences[] = [];
  for (const dataset of datasets) {
    const recorded = results.flatMap((result) =>
      result.cell.dataset === dataset && result.references ? [result.references] : []
    );
    if (!recorded.length) continue;
    const meanOf = (key: keyof typeof recorded[0]) => mean(recorded.map((r) => r[key]));
    found.push({
      dataset,
      randomPolicy: meanOf("randomPolicy"),
      zeroReturn: meanOf("zeroReturn"),
      datasetBehavior: meanOf("datasetBehavior"),
    });
  }
  return found;
}

/** One dataset × source × agent entry of Table 2. */
export interface CellSummary {
  /** Dataset id. */
  dataset: string;
  /** Source name. */
  source: string;
  /** Agent name. */
  agent: string;
  /** Seeds with a result. */
  seeds: number[];
  /** Final normalised scores (×100), one per seed, in seed order. */
  scores: number[];
  /** Mean ± s.e. over seeds. */
  estimate: MeanEstimate;
  /** Mean ± s.e. over seeds of each run's {@link lateScore}. */
  late: MeanEstimate;
  /** Each run's {@link lateScore}, in seed order. */
  lateScores: number[];
  /** Against `real` (absent for `real` itself or without a `real` entry). */
  versusReal?: Comparison;
  /** Policy-guided against unguided (absent otherwise). */
  versusUnguided?: Comparison;
  /** Policy-guided against unguided, seed by seed (absent otherwise). */
  pairedVersusUnguided?: PairedComparison;
  /** Cell JSON files, relative to the run folder, in seed order. */
  files: string[];
}

/** The kind of a group of datasets an aggregate is taken over. */
export type GroupKind = "suite" | "family" | "level";

/** A set of datasets aggregated together. */
export interface DatasetGroup {
  /** `suite` (all locomotion, or a whole non-locomotion family), `family` or `level`. */
  kind: GroupKind;
  /** Display name, e.g. `halfcheetah`, `medium-replay`, `locomotion`. */
  name: string;
  /** Datasets in the group. */
  datasets: string[];
}

/** One aggregate of a source × agent over a group of datasets. */
export interface AggregateSummary {
  /** The datasets aggregated. */
  group: DatasetGroup;
  /** Source name. */
  source: string;
  /** Agent name, or {@link allAgents}. */
  agent: string;
  /** Every dataset × agent of the group has at least one result; otherwise no numbers. */
  complete: boolean;
  /** Dataset × agent pairs with results, of those in the group. */
  tasksCovered: number;
  /** Tasks (dataset × agent pairs) in the group. */
  tasks: number;
  /** Mean over tasks of the per-task means, with its standard error. */
  estimate: MeanEstimate;
  /** Interquartile mean of all runs with a stratified bootstrap 95% interval (tasks as strata). */
  interquartileMean: IntervalEstimate;
  /** Against `real`. */
  versusReal?: Comparison;
  /** Policy-guided against unguided. */
  versusUnguided?: Comparison;
}

/** A block of Table 2 rows with its total row. */
export interface TableBlock {
  /** Title, e.g. `Locomotion` or `maze2d`. */
  title: string;
  /** Datasets of the block, in table order. */
  datasets: string[];
  /** The suite aggregated in the block's total row. */
  total: DatasetGroup;
}

/** Mean learning curve of one dataset × source × agent over seeds. */
export interface CurveSummary {
  /** Dataset id. */
  dataset: string;
  /** Source name. */
  source: string;
  /** Agent name. */
  agent: string;
  /** Gradient steps of the evaluations. */
  steps: number[];
  /** Mean normalised score at each step. */
  mean: number[];
  /** Standard error at each step (NaN with one seed). */
  standardError: number[];
}

/** Time spent, summed over cells, in seconds. */
export interface TimingTotals {
  /** Preparing sources (fitting models). */
  prepareSeconds: number;
  /** Generating synthetic data. */
  generateSeconds: number;
  /** Training agents. */
  trainSeconds: number;
  /** Evaluating agents. */
  evaluateSeconds: number;
  /** All of it. */
  totalSeconds: number;
}

/** Everything the reports print, as written to `summary.json`. */
export interface ReportSummary {
  /** When the summary was built. */
  generatedAt: string;
  /** The run folder's name. */
  runName: string;
  /** Significance level of marked improvements. */
  significanceLevel: number;
  /** Datasets in table order. */
  datasets: string[];
  /** Sources in column order. */
  sources: string[];
  /** Agents in column order. */
  agents: string[];
  /** Table 2 row blocks. */
  blocks: TableBlock[];
  /** All cells with at least one seed. */
  cells: CellSummary[];
  /** The most seeds any entry has: entries with fewer show their count. */
  seedsPerEntry: number;
  /** Aggregates over suites, families and levels. */
  aggregates: AggregateSummary[];
  /** Learning curves. */
  curves: CurveSummary[];
  /** Expected cells (run.json) without a result. */
  missing: (CellKey & { file: string; reason?: string })[];
  /** Result files present for the run. */
  cellCount: number;
  /** Hosts that produced cells (several after a merge). */
  hosts: string[];
  /** Presets, backends and compute paths seen in cells. */
  presets: string[];
  /** Backends seen in cells. */
  backends: string[];
  /** Compute paths seen in cells. */
  computePaths: string[];
  /** Versions recorded in cells (several values, comma-separated, after a merge). */
  versions: Record<string, string>;
  /** Time summed over cells. */
  timings: TimingTotals;
  /** First cell start to last cell finish (ISO 8601), when any cell exists. */
  span?: { startedAt: string; finishedAt: string };
  /** `run.json`, when present. */
  metadata?: RunMetadata;
  /** Analysis results (Figures 5 and 6). */
  analysis: LoadedAnalysis[];
  /** Warnings from loading. */
  warnings: string[];
  /** The data-quality table: held-out real data, then each source, per dataset. */
  quality: QualityRow[];
  /** Trajectories on the map, per dataset whose environment has one (Figure 2). */
  planFigures: PlanFigure[];
  /** Replay-error curves per dataset (the Figure 6 measure, from the cells). */
  replayFigures: ReplayFigure[];
  /** Per dataset, the normalised scores to read results against (means over its cells). */
  references: DatasetReferences[];
}

/** Options of {@link summarizeRun}. */
export interface SummaryOptions {
  /** Bootstrap resamples per aggregate. */
  bootstrapRepetitions?: number;
  /** Clock for `generatedAt` (tests pin it). */
  now?: () => Date;
}

function unique(values: Iterable<string>): string[] {
  return [...new Set(values)];
}

function compare(
  estimate: MeanEstimate,
  baseline: MeanEstimate | undefined,
  against: string,
): Comparison | undefined {
  if (!baseline) return undefined;
  const test = welchTestOfEstimates(estimate, baseline);
  return {
    against,
    ...test,
    improvement: test.difference > 0 && test.pValue < significanceLevel,
  };
}

function compareBySeed(cell: CellSummary, baseline: CellSummary): PairedComparison | undefined {
  const seeds = cell.seeds.filter((seed) => baseline.seeds.includes(seed));
  if (seeds.length === 0) return undefined;
  const pick = (entry: CellSummary, values: number[]) =>
    seeds.map((seed) => values[entry.seeds.indexOf(seed)]);
  return {
    against: baseline.source,
    seeds,
    final: pairedTTest(pick(cell, cell.scores), pick(baseline, baseline.scores)),
    late: pairedTTest(pick(cell, cell.lateScores), pick(baseline, baseline.lateScores)),
  };
}

function key(dataset: string, source: string, agent: string): string {
  return `${dataset}\u0000${source}\u0000${agent}`;
}

function learningCurve(results: CellResult[]): Omit<CurveSummary, "dataset" | "source" | "agent"> {
  const byStep = new Map<number, number[]>();
  for (const result of results) {
    for (const evaluation of result.evaluations) {
      const scores = byStep.get(evaluation.step) ?? [];
      scores.push(evaluation.normalizedScore);
      byStep.set(evaluation.step, scores);
    }
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  const estimates = steps.map((step) => estimateMean(byStep.get(step)!));
  return {
    steps,
    mean: estimates.map((estimate) => estimate.mean),
    standardError: estimates.map((estimate) => estimate.standardError),
  };
}

/** Builds the report's numbers from a loaded run. */
export function summarizeRun(run: RunResults, options: SummaryOptions = {}): ReportSummary {
  const results = run.cells.map((cell) => cell.result);
  const expected = run.metadata?.expectedCells ?? [];
  const config = run.metadata?.config ?? {};
  const configured = (name: string): string[] =>
    Array.isArray(config[name]) ? (config[name] as unknown[]).map(String) : [];

  const datasets = unique([...expected, ...results.map((r) => r.cell)].map((c) => c.dataset))
    .sort(compareDatasets);
  const seenSources = unique([...expected, ...results.map((r) => r.cell)].map((c) => c.source));
  const sources = seenSources.sort(byOrder(sourceOrder));
  const seenAgents = unique([...expected, ...results.map((r) => r.cell)].map((c) => c.agent));
  const agents = [
    ...configured("agents").filter((a) => seenAgents.includes(a)),
    ...seenAgents.filter((a) => !configured("agents").includes(a)).sort(),
  ];

  // Cells: scores over seeds per dataset × source × agent.
  const grouped = new Map<string, { result: CellResult; file: string }[]>();
  for (const cell of run.cells) {
    const { dataset, source, agent } = cell.result.cell;
    const list = grouped.get(key(dataset, source, agent)) ?? [];
    list.push(cell);
    grouped.set(key(dataset, source, agent), list);
  }
  const cellMap = new Map<string, CellSummary>();
  for (const dataset of datasets) {
    for (const source of sources) {
      for (const agent of agents) {
        const entries = (grouped.get(key(dataset, source, agent)) ?? [])
          .sort((a, b) => a.result.cell.seed - b.result.cell.seed);
        if (entries.length === 0) continue;
        const scores = entries.map((entry) => entry.result.finalScore);
        const lateScores = entries.map((entry) => lateScore(entry.result));
        cellMap.set(key(dataset, source, agent), {
          dataset,
          source,
          agent,
          seeds: entries.map((entry) => entry.result.cell.seed),
          scores,
          estimate: estimateMean(scores),
          late: estimateMean(lateScores),
          lateScores,
          files: entries.map((entry) => entry.file),
        });
      }
    }
  }
  for (const cell of cellMap.values()) {
    if (cell.source !== realSource) {
      const real = cellMap.get(key(cell.dataset, realSource, cell.agent));
      cell.versusReal = compare(cell.estimate, real?.estimate, realSource);
    }
    if (cell.source === guidedSource) {
      const unguided = cellMap.get(key(cell.dataset, unguidedSource, cell.agent));
      cell.versusUnguided = compare(cell.estimate, unguided?.estimate, unguidedSource);
      if (unguided) cell.pairedVersusUnguided = compareBySeed(cell, unguided);
    }
  }

  // Groups: suites (Table 2 totals), families and behaviour levels (Figure 4).
  const locomotion = datasets.filter(isLocomotion);
  const blocks: TableBlock[] = [];
  const groups: DatasetGroup[] = [];
  if (locomotion.length > 0) {
    const total: DatasetGroup = { kind: "suite", name: "locomotion", datasets: locomotion };
    blocks.push({ title: "Locomotion", datasets: locomotion, total });
    groups.push(total);
  }
  for (const family of unique(datasets.filter((d) => !isLocomotion(d)).map(datasetFamily))) {
    const members = datasets.filter((d) => datasetFamily(d) === family);
    const total: DatasetGroup = { kind: "suite", name: family, datasets: members };
    blocks.push({ title: family, datasets: members, total });
    groups.push(total);
  }
  for (const family of unique(locomotion.map(datasetFamily))) {
    groups.push({
      kind: "family",
      name: family,
      datasets: locomotion.filter((d) => datasetFamily(d) === family),
    });
  }
  for (const level of unique(locomotion.map(datasetLevel)).sort(byOrder(behaviourLevelOrder))) {
    groups.push({
      kind: "level",
      name: level,
      datasets: locomotion.filter((d) => datasetLevel(d) === level),
    });
  }

  const aggregates: AggregateSummary[] = [];
  const aggregateOf = new Map<string, AggregateSummary>();
  for (const group of groups) {
    for (const agent of [...agents, allAgents]) {
      const taskAgents = agent === allAgents ? agents : [agent];
      for (const source of sources) {
        const taskCells = group.datasets.flatMap((dataset) =>
          taskAgents.map((a) => cellMap.get(key(dataset, source, a)))
        );
        const present = taskCells.filter((cell): cell is CellSummary => cell !== undefined);
        const complete = present.length === taskCells.length && taskCells.length > 0;
        const label = `${group.kind}/${group.name}/${source}/${agent}`;
        const aggregate: AggregateSummary = {
          group,
          source,
          agent,
          complete,
          tasksCovered: present.length,
          tasks: taskCells.length,
          estimate: complete
            ? averageEstimates(present.map((cell) => cell.estimate))
            : { count: 0, mean: NaN, standardError: NaN, degreesOfFreedom: NaN },
          interquartileMean: complete
            ? stratifiedBootstrap(present.map((cell) => cell.scores), {
              repetitions: options.bootstrapRepetitions,
              seed: deriveSeed(0, label),
            })
            : { estimate: NaN, lower: NaN, upper: NaN, confidence: 0.95 },
        };
        aggregates.push(aggregate);
        aggregateOf.set(`${group.kind}/${group.name}\u0000${source}\u0000${agent}`, aggregate);
      }
    }
  }
  for (const aggregate of aggregates) {
    if (!aggregate.complete) continue;
    const lookup = (source: string) => {
      const other = aggregateOf.get(
        `${aggregate.group.kind}/${aggregate.group.name}\u0000${source}\u0000${aggregate.agent}`,
      );
      return other?.complete ? other.estimate : undefined;
    };
    if (aggregate.source !== realSource) {
      aggregate.versusReal = compare(aggregate.estimate, lookup(realSource), realSource);
    }
    if (aggregate.source === guidedSource) {
      aggregate.versusUnguided = compare(
        aggregate.estimate,
        lookup(unguidedSource),
        unguidedSource,
      );
    }
  }

  const curves: CurveSummary[] = [];
  for (const cell of cellMap.values()) {
    const cellResults = grouped.get(key(cell.dataset, cell.source, cell.agent))!.map((e) =>
      e.result
    );
    curves.push({
      dataset: cell.dataset,
      source: cell.source,
      agent: cell.agent,
      ...learningCurve(cellResults),
    });
  }

  const present = new Set(results.map((result) => cellId(result.cell)));
  const missing = expected
    .filter((cell) => !present.has(cellId(cell)))
    .map((cell) => {
      const failure = run.failures.find((failed) => cellId(failed.cell) === cellId(cell));
      const reason = failure?.message.split("\n")[0];
      return { ...cell, file: cellPath(cell), ...(reason ? { reason } : {}) };
    });

  const timings: TimingTotals = {
    prepareSeconds: 0,
    generateSeconds: 0,
    trainSeconds: 0,
    evaluateSeconds: 0,
    totalSeconds: 0,
  };
  for (const result of results) {
    for (const name of Object.keys(timings) as (keyof TimingTotals)[]) {
      timings[name] += result.timings[name];
    }
  }
  const starts = results.map((result) => result.startedAt).sort();
  const finishes = results.map((result) => result.finishedAt).sort();

  return {
    generatedAt: (options.now ?? (() => new Date()))().toISOString(),
    runName: run.runDir.replace(/[\\/]+$/, "").split(/[\\/]/).pop() ?? run.runDir,
    significanceLevel,
    datasets,
    sources,
    agents,
    blocks,
    cells: [...cellMap.values()],
    seedsPerEntry: Math.max(0, ...[...cellMap.values()].map((cell) => cell.scores.length)),
    aggregates,
    curves,
    missing,
    cellCount: results.length,
    hosts: unique(results.map((result) => result.host)).sort(),
    presets: unique(results.map((result) => result.preset)).sort(),
    backends: unique(results.map((result) => result.backend)).sort(),
    computePaths: unique(results.map((result) => result.computePath)).sort(),
    versions: collectVersions(results),
    timings,
    span: results.length > 0
      ? { startedAt: starts[0], finishedAt: finishes[finishes.length - 1] }
      : undefined,
    metadata: run.metadata,
    analysis: run.analysis,
    warnings: run.warnings,
    quality: summarizeQuality(run.cells, datasets, sources),
    planFigures: planFigures(run.cells, datasets, sources),
    replayFigures: replayFigures(run.cells, datasets, sources),
    references: datasetReferences(results, datasets),
  };
}

function collectVersions(results: CellResult[]): Record<string, string> {
  const seen = new Map<string, Set<string>>();
  for (const result of results) {
    for (const [name, version] of Object.entries(result.versions)) {
      if (!seen.has(name)) seen.set(name, new Set());
      seen.get(name)!.add(version);
    }
  }
  return Object.fromEntries(
    [...seen.entries()].sort(([a], [b]) => a.localeCompare(b)).map((
      [name, versions],
    ) => [name, [...versions].sort().join(", ")]),
  );
}

/** Looks up the summary of one dataset × source × agent. */
export function findCell(
  summary: ReportSummary,
  dataset: string,
  source: string,
  agent: string,
): CellSummary | undefined {
  return summary.cells.find((cell) =>
    cell.dataset === dataset && cell.source === source && cell.agent === agent
  );
}

/** Looks up the aggregate of one group × source × agent. */
export function findAggregate(
  summary: ReportSummary,
  group: DatasetGroup,
  source: string,
  agent: string,
): AggregateSummary | undefined {
  return summary.aggregates.find((aggregate) =>
    aggregate.group.kind === group.kind && aggregate.group.name === group.name &&
    aggregate.source === source && aggregate.agent === agent
  );
}
