/**
 * The environment plugin contract: a simulator for evaluation and analysis,
 * and a way to make datasets in D4RL's layout where no file is at hand.
 *
 * @module
 */
import { z } from "zod";
import { hook, type PresetName } from "./common.ts";
import type { D4rlDataset } from "../types.ts";

/** The D4RL normalised-score references of a dataset family. */
export interface ScoreReference {
  /** Return of the random reference policy. */
  min: number;
  /** Return of the expert reference policy. */
  max: number;
}

/** What an environment is: sizes, limits and score references. */
export interface EnvironmentSpec {
  /** Environment id, e.g. `maze2d-umaze`. */
  id: string;
  /** Width of one observation. */
  observationDim: number;
  /** Width of one action; every action dimension lies in [−1, 1]. */
  actionDim: number;
  /** Steps before an episode is cut by the time limit. */
  maxEpisodeSteps: number;
  /** D4RL normalised-score references. */
  scoreReference: ScoreReference;
  /**
   * How many leading observation entries are positions (the rest are
   * velocities), so errors can be told apart; absent: not told apart.
   */
  positionDims?: number;
  /**
   * The environment's termination rule stated on observations alone, so that
   * states a learned model predicts can end a rollout where the simulator
   * would have ended the episode. `observations` holds `count` rows; the
   * result has 1 for each terminal row, 0 otherwise. Absent: never terminal.
   */
  isTerminal?(observations: Float32Array, count: number): Uint8Array;
}

/** {@link EnvironmentSpec.isTerminal} of an environment whose episodes end only by the time limit. */
export function neverTerminal(_observations: Float32Array, count: number): Uint8Array {
  return new Uint8Array(count);
}

/** A map of walls and a goal, in the coordinates of the observation's first two entries. */
export interface PlanView {
  /** Axis-aligned walls as `[xMin, yMin, xMax, yMax]`. */
  walls: [number, number, number, number][];
  /** The goal's position. */
  goal: [number, number];
}

/** The result of one environment step. */
export interface StepResult {
  /** Observation after the step. */
  observation: Float32Array;
  /** Reward of the step. */
  reward: number;
  /** The episode reached a terminal state (not a time limit). */
  terminated: boolean;
}

/** One running simulator. Episode length limits are the caller's job (see `spec.maxEpisodeSteps`). */
export interface Environment {
  /** Sizes and references. */
  readonly spec: EnvironmentSpec;
  /** Starts an episode; the same seed gives the same initial state. */
  reset(seed: number): Float32Array;
  /** Applies one action (clipped to [−1, 1] by the environment). */
  step(action: Float32Array): StepResult;
  /**
   * Puts the simulator in the state an observation describes (positions not
   * in the observation, such as locomotion's x, are set to 0 since they do not
   * change the dynamics), so an action sequence can be replayed from it.
   */
  resetToObservation?(observation: Float32Array): void;
  /** Whether the state an observation describes touches an obstacle (a wall of a maze). */
  touchesObstacle?(observation: Float32Array): boolean;
  /** Whether the simulator could never be in this state (a ball inside a wall). */
  isImpossible?(observation: Float32Array): boolean;
  /**
   * A plan view in the coordinates of the observation's first two entries,
   * for environments where those are a position on a map (Maze2d): reports
   * draw trajectories on it (the paper's Figure 2).
   */
  planView?(): PlanView;
  /** Frees simulator memory. */
  close(): void;
}

/** What `collect` is asked to make. */
export interface CollectRequest {
  /** Dataset id, e.g. `maze2d-umaze` or `halfcheetah-medium`. */
  dataset: string;
  /** Number of steps to record; absent: the plugin's size for the preset (`paper`: D4RL's size). */
  size?: number;
  /** Seed of every random choice. */
  seed: number;
  /** Size preset: sizes of any behaviour-policy training. */
  preset: PresetName;
  /** Called with a fraction in [0, 1] as work proceeds. */
  onProgress?: (fraction: number) => void;
}

/** An environment plugin: `name` plus its hooks, made by a factory. */
export interface EnvironmentPlugin {
  /** Plugin name, e.g. `maze2d`. */
  name: string;
  /** Dataset ids this plugin serves, e.g. `["maze2d-umaze", …]`. */
  datasets: readonly string[];
  /** The spec of a dataset's environment without starting a simulator. */
  spec(dataset: string): EnvironmentSpec;
  /** Starts a simulator for a dataset's environment. */
  make(dataset: string): Promise<Environment>;
  /** Records a D4RL-layout dataset as D4RL made it. */
  collect?(request: CollectRequest): Promise<D4rlDataset>;
  /** The D4RL file name of a dataset, e.g. `maze2d-umaze-v1.hdf5`. */
  d4rlFileName?(dataset: string): string;
}

/** The hooks of an {@link EnvironmentSpec}; checked on every dataset's spec when a plugin is loaded. */
const environmentSpecHooksSchema = z.object({
  isTerminal: hook("isTerminal(observations, count) → Uint8Array").optional(),
});

/** The shape every environment plugin must have; checked when a plugin is loaded. */
export const environmentPluginSchema = z.object({
  name: z.string().min(1),
  datasets: z.array(z.string()),
  spec: hook("spec(dataset) → EnvironmentSpec"),
  make: hook("make(dataset) → Promise<Environment>"),
  collect: hook("collect(request) → Promise<D4rlDataset>").optional(),
  d4rlFileName: hook("d4rlFileName(dataset) → string").optional(),
}).superRefine((plugin, context) => {
  // A spec's hooks exist only per dataset, so each served dataset's spec is asked for.
  for (const dataset of plugin.datasets) {
    let spec: unknown;
    try {
      spec = (plugin.spec as (dataset: string) => unknown)(dataset);
    } catch (error) {
      context.addIssue({
        code: "custom",
        path: ["spec"],
        message: `spec("${dataset}") failed: ${(error as Error).message}`,
      });
      continue;
    }
    const parsed = environmentSpecHooksSchema.safeParse(spec);
    for (const issue of parsed.error?.issues ?? []) {
      context.addIssue({
        code: "custom",
        path: ["spec", ...issue.path],
        message: `spec("${dataset}"): ${issue.message}`,
      });
    }
  }
});

/** D4RL normalised score ×100 of an undiscounted episode return. */
export function normalizedScore(episodeReturn: number, reference: ScoreReference): number {
  return (100 * (episodeReturn - reference.min)) / (reference.max - reference.min);
}
