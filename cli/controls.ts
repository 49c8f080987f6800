/**
 * The grids of `pgd controls`: a source's data beside the controls that
 * locate what keeps agents from learning from it (`core/controls.ts`) —
 * the source with exact dynamics, real states with shuffled actions, and
 * real data with state noise of growing multiples of the source's own
 * one-step error (a noise-tolerance curve).
 *
 * @module
 */
import type { GridConfig } from "../core/config.ts";
import { UserError } from "../core/errors.ts";
import { loadRun } from "../reports/mod.ts";

/** The noise multiples of the tolerance curve. */
export const defaultNoiseScales = [0, 0.1, 0.25, 0.5, 1];

/** A one-step error per entry: the unit of the noise curve. */
export interface OneStepError {
  /** Mean |s′ − s′_sim| over position entries. */
  positionError: number;
  /** The same over velocity entries. */
  velocityError: number;
}

/**
 * The first grid: real data, the subject source, the subject with exact
 * dynamics, and real states with shuffled actions (sources deduplicated,
 * the subject's options carried to its control).
 */
export function subjectGrid(config: GridConfig, subject: string): GridConfig {
  if (config.datasets.length !== 1) {
    throw new UserError(
      `controls: --datasets: one dataset at a time (the noise is sized to its error), got ${config.datasets.length}`,
    );
  }
  const exact = `${subject}+exact-dynamics`;
  const sources = [...new Set(["real", subject, exact, "real+shuffled-actions"])];
  const sourceOptions = { ...config.sourceOptions };
  if (config.sourceOptions[subject] !== undefined) {
    sourceOptions[exact] = config.sourceOptions[subject];
  }
  return { ...config, sources, sourceOptions };
}

/** The first grid plus real data with noise `scale × error` on its states, per scale. */
export function noiseGrid(
  config: GridConfig,
  error: OneStepError,
  scales: readonly number[],
): GridConfig {
  const noisy = scales.map((scale) => `real+state-noise-${scale}`);
  const sourceOptions = { ...config.sourceOptions };
  for (const name of noisy) sourceOptions[name] = { control: { ...error } };
  return { ...config, sources: [...new Set([...config.sources, ...noisy])], sourceOptions };
}

/**
 * The subject's mean one-step simulator error over every generation of its
 * cells in a run folder (from their data-quality records).
 */
export async function measuredError(
  runDir: string,
  dataset: string,
  subject: string,
): Promise<OneStepError> {
  const run = await loadRun(runDir);
  const records = run.cells
    .filter((cell) => cell.result.cell.dataset === dataset && cell.result.cell.source === subject)
    .flatMap((cell) => cell.result.quality?.generations ?? [])
    .flatMap((record) => record.simulator ? [record.simulator] : []);
  if (records.length === 0) {
    throw new UserError(
      `controls: no one-step error recorded for '${subject}' on ${dataset} in ${runDir}; ` +
        "give it with --noise-error <position>,<velocity>",
    );
  }
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
  return {
    positionError: mean(records.map((record) => record.position)),
    velocityError: mean(records.map((record) => record.velocity)),
  };
}
