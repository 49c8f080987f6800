/**
 * The synthetic-data-quality table: per dataset × source, the means of the
 * cells' data-quality records (every seed, agent and generation), under a
 * row for held-out real data measured the same way. The Markdown, CSV and
 * HTML reports all render it from {@link summarizeQuality}.
 *
 * @module
 */
import type { CellQuality, QualityRecord } from "../core/quality.ts";
import type { LoadedCell } from "./load.ts";
import { csvField } from "./csv.ts";
import { mean, standardError } from "../stats/summary.ts";

/** The label of the held-out real data's row. */
export const referenceLabel = "real (held out)";

/** One measure of the table: its key, heading, decimals and how to read it. */
export interface QualityColumn {
  /** Key of {@link QualityRow.values}. */
  key: string;
  /** Column heading. */
  title: string;
  /** Significant digits shown. */
  digits: number;
  /** One sentence for the legend. */
  meaning: string;
  /** The value in one record, if it has one. */
  of(record: QualityRecord): number | undefined;
}

/** The measures, in table order. */
export const qualityColumns: readonly QualityColumn[] = [
  {
    key: "positionError",
    title: "pos. error",
    digits: 2,
    meaning: "mean |s′ − s′_sim| over position entries, one step of the simulator from (s, a)",
    of: (record) => record.simulator?.position,
  },
  {
    key: "velocityError",
    title: "vel. error",
    digits: 2,
    meaning: "the same over velocity entries",
    of: (record) => record.simulator?.velocity,
  },
  {
    key: "contactPositionError",
    title: "pos. error at obstacles",
    digits: 2,
    meaning: "position error over states touching an obstacle (Maze2d walls)",
    of: (record) => record.simulator?.contact?.position,
  },
  {
    key: "rewardError",
    title: "reward error",
    digits: 2,
    meaning: "mean |r − r_sim|",
    of: (record) => record.simulator?.reward,
  },
  {
    key: "rewardBias",
    title: "reward bias",
    digits: 2,
    meaning:
      "mean r − r_sim: above 0 the data promise more reward than the simulator gives for the same (s, a)",
    of: (record) => record.simulator?.rewardBias,
  },
  {
    key: "invalidFraction",
    title: "invalid %",
    digits: 2,
    meaning:
      "transitions with a non-finite value or a state the simulator cannot be in, in % of every transition (the real row: of the whole dataset)",
    of: (record) => 100 * record.invalidFraction,
  },
  {
    key: "contactFraction",
    title: "at obstacles %",
    digits: 2,
    meaning: "states touching an obstacle, in %",
    of: (record) => record.contactFraction === undefined ? undefined : 100 * record.contactFraction,
  },
  {
    key: "stateDistance",
    title: "state distance",
    digits: 2,
    meaning:
      "energy distance to real states (normalised); the held-out row is two real draws, the noise floor",
    of: (record) => record.stateDistance,
  },
  {
    key: "actionFit",
    title: "action fit",
    digits: 2,
    meaning: "mean |a − mean action of the 16 nearest real states|: how tied actions are to states",
    of: (record) => record.actionFit,
  },
  {
    key: "rewardedFraction",
    title: "rewarded %",
    digits: 2,
    meaning:
      "rewards above the middle of the real rewards' range (Maze2d: at the goal), in % of every transition (the real row: of the whole dataset)",
    of: (record) => 100 * record.rewardedFraction,
  },
  {
    key: "doneFraction",
    title: "done %",
    digits: 2,
    meaning: "transitions marked terminal, which stop the value bootstrap, in %",
    of: (record) => record.doneFraction === undefined ? undefined : 100 * record.doneFraction,
  },
  {
    key: "guideLogLikelihood",
    title: "log-lik. (guide)",
    digits: 3,
    meaning:
      "actions' log-likelihood under the agent's policy handed to the source at that generation (the guide, for policy-guided)",
    of: (record) => record.guideLogLikelihood,
  },
  {
    key: "realGuideLogLikelihood",
    title: "real log-lik. (guide)",
    digits: 3,
    meaning:
      "held-out real actions' log-likelihood under that same policy: guided data should score above it",
    of: (record) => record.realGuideLogLikelihood,
  },
  {
    key: "finalLogLikelihood",
    title: "log-lik. (final)",
    digits: 3,
    meaning: "actions' log-likelihood under the agent's final policy",
    of: (record) => record.finalLogLikelihood,
  },
];

/** One row of the table. */
export interface QualityRow {
  /** Dataset id. */
  dataset: string;
  /** Source name, or {@link referenceLabel}. */
  source: string;
  /** Cells whose records were averaged. */
  cells: number;
  /** Records averaged (generations over all those cells). */
  records: number;
  /** Mean of each column's values, by key; absent where no record has the measure. */
  values: Record<string, number | undefined>;
}

function meanRow(dataset: string, source: string, cells: number, records: QualityRecord[]) {
  const values: Record<string, number | undefined> = {};
  for (const column of qualityColumns) {
    const present = records.map(column.of).filter((v): v is number => Number.isFinite(v));
    values[column.key] = present.length ? mean(present) : undefined;
  }
  return { dataset, source, cells, records: records.length, values };
}

/**
 * The table's rows: per dataset (in `datasets` order) the held-out real row,
 * then one row per source (in `sources` order) with records.
 */
export function summarizeQuality(
  cells: LoadedCell[],
  datasets: readonly string[],
  sources: readonly string[],
): QualityRow[] {
  const rows: QualityRow[] = [];
  for (const dataset of datasets) {
    const ofDataset = cells.filter((cell) => cell.result.cell.dataset === dataset);
    const measured = ofDataset.filter((cell) => cell.result.quality);
    if (measured.length === 0) continue;
    rows.push(
      meanRow(
        dataset,
        referenceLabel,
        measured.length,
        measured.map((cell) => cell.result.quality!.reference),
      ),
    );
    for (const source of sources) {
      const ofSource = measured.filter((cell) => cell.result.cell.source === source);
      if (ofSource.length === 0) continue;
      rows.push(
        meanRow(
          dataset,
          source,
          ofSource.length,
          ofSource.flatMap((cell) => cell.result.quality!.generations),
        ),
      );
    }
  }
  return rows;
}

/** A value as the tables show it: `digits` significant digits, `—` when absent. */
export function formatQualityValue(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  if (value === 0) return "0";
  return Math.abs(value) >= 10 ** digits ? value.toFixed(0) : Number(value.toPrecision(digits))
    .toString();
}

/** The columns any row has a value for (a Maze2d-only measure is left out of a locomotion run). */
export function presentColumns(rows: readonly QualityRow[]): QualityColumn[] {
  return qualityColumns.filter((column) =>
    rows.some((row) => row.values[column.key] !== undefined)
  );
}

/** The table as CSV (RFC 4180): dataset, source, cells, records, then every measure. */
export function renderQualityCsv(rows: readonly QualityRow[]): string {
  const header = ["dataset", "source", "cells", "records", ...qualityColumns.map((c) => c.key)];
  const lines = rows.map((row) =>
    [
      csvField(row.dataset),
      csvField(row.source),
      csvField(row.cells),
      csvField(row.records),
      ...qualityColumns.map((column) => csvField(row.values[column.key])),
    ].join(",")
  );
  return [header.join(","), ...lines].join("\n") + "\n";
}

/** One panel of a plan-view figure: a source's trajectories. */
export interface PlanPanel {
  /** Source name, or {@link referenceLabel}. */
  source: string;
  /** Trajectories as lists of points. */
  paths: [number, number][][];
}

/** The label of the panel drawn from the real dataset itself. */
export const datasetPanelLabel = "dataset";

/** The paper's Figure 2 for one dataset: trajectories of each source on the environment's map. */
export interface PlanFigure {
  /** Dataset id. */
  dataset: string;
  /** Walls and goal. */
  planView: NonNullable<CellQuality["planView"]>;
  /** Real data first, then each source (its last generation, the guided one for policy guidance). */
  panels: PlanPanel[];
}

/**
 * A figure per dataset whose environment has a plan view: the first cell
 * (lowest seed) of each source gives the trajectories of its last generation.
 */
export function planFigures(
  cells: LoadedCell[],
  datasets: readonly string[],
  sources: readonly string[],
): PlanFigure[] {
  const figures: PlanFigure[] = [];
  for (const dataset of datasets) {
    const drawn = cells
      .filter((cell) => cell.result.cell.dataset === dataset && cell.result.quality?.planView)
      .sort((a, b) => a.result.cell.seed - b.result.cell.seed);
    if (drawn.length === 0) continue;
    const panels: PlanPanel[] = [{
      source: datasetPanelLabel,
      paths: drawn[0].result.quality!.reference.paths ?? [],
    }];
    for (const source of sources) {
      const cell = drawn.find((candidate) => candidate.result.cell.source === source);
      const last = cell?.result.quality?.generations.at(-1);
      if (last?.paths) panels.push({ source, paths: last.paths });
    }
    figures.push({ dataset, planView: drawn[0].result.quality!.planView!, panels });
  }
  return figures;
}

/** A source's mean replay-error curve over its records, with the standard error per step. */
export interface ReplaySeries {
  /** Source name, or {@link datasetPanelLabel} for the real dataset. */
  source: string;
  /** Mean |s_sim − s| after 1, 2, … replayed steps. */
  mean: number[];
  /** Standard error of each step's mean over records (NaN with one record). */
  standardError: number[];
}

/** Replay-error curves of one dataset (the paper's Figure 6 measure, from the grid). */
export interface ReplayFigure {
  /** Dataset id. */
  dataset: string;
  /** The real dataset first, then each source with curves. */
  series: ReplaySeries[];
}

function meanCurve(source: string, curves: number[][]): ReplaySeries {
  const steps = Math.max(...curves.map((curve) => curve.length));
  const atStep = (k: number) => curves.map((curve) => curve[k]).filter((v) => Number.isFinite(v));
  const byStep = Array.from({ length: steps }, (_, k) => atStep(k));
  return {
    source,
    mean: byStep.map((values) => mean(values)),
    standardError: byStep.map((values) => standardError(values)),
  };
}

/** Per dataset, the mean replay-error curve of the real data and of each source's generations. */
export function replayFigures(
  cells: LoadedCell[],
  datasets: readonly string[],
  sources: readonly string[],
): ReplayFigure[] {
  const figures: ReplayFigure[] = [];
  for (const dataset of datasets) {
    const measured = cells.filter((cell) =>
      cell.result.cell.dataset === dataset && cell.result.quality
    );
    const series: ReplaySeries[] = [];
    if (measured.some((cell) => cell.result.quality!.reference.replayError)) {
      series.push(
        meanCurve(
          datasetPanelLabel,
          measured.flatMap((cell) =>
            cell.result.quality!.reference.replayError
              ? [cell.result.quality!.reference.replayError]
              : []
          ),
        ),
      );
    }
    for (const source of sources) {
      const curves = measured
        .filter((cell) => cell.result.cell.source === source)
        .flatMap((cell) => cell.result.quality!.generations)
        .flatMap((record) => record.replayError ? [record.replayError] : []);
      if (curves.length) series.push(meanCurve(source, curves));
    }
    if (series.length) figures.push({ dataset, series });
  }
  return figures;
}
