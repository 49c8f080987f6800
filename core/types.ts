/**
 * Plain data shared by every module: datasets in D4RL's layout, transition
 * sets that agents train on, and the policy view that guidance reads.
 *
 * Arrays are row-major `Float32Array`s (`size × dim`), so they cross process
 * and plugin boundaries without any tensor library.
 *
 * @module
 */

/** One numeric array of a dataset's `infos/` group, as stored (float32, float64 or int). */
export type InfoArray = Float32Array | Float64Array | Int32Array | Int8Array | Uint8Array;

/** A dataset in D4RL's layout, one row per environment step. */
export interface D4rlDataset {
  /** Number of steps (rows). */
  size: number;
  /** Width of one observation. */
  observationDim: number;
  /** Width of one action. */
  actionDim: number;
  /** `size × observationDim`. */
  observations: Float32Array;
  /** `size × actionDim`. */
  actions: Float32Array;
  /** `size`. */
  rewards: Float32Array;
  /** `size`, 0 or 1: the episode ended in a terminal state. */
  terminals: Uint8Array;
  /** `size`, 0 or 1: the episode was cut by the time limit. */
  timeouts: Uint8Array;
  /** `size × observationDim` when the file has it (D4RL's MuJoCo v2 files do). */
  nextObservations?: Float32Array;
  /** Per-step extra arrays (`infos/goal`, `infos/qpos`, …), flattened row-major with their row width. */
  infos: Record<string, { data: InfoArray; width: number }>;
  /** `metadata/` and root attributes: strings, numbers and nested records. */
  metadata: Record<string, unknown>;
}

/** Transitions `(s, a, r, s', done)` an agent trains on, whatever made them. */
export interface Transitions {
  /** Number of transitions. */
  size: number;
  /** Width of one observation. */
  observationDim: number;
  /** Width of one action. */
  actionDim: number;
  /** `size × observationDim`. */
  observations: Float32Array;
  /** `size × actionDim`, in the environment's action range. */
  actions: Float32Array;
  /** `size`. */
  rewards: Float32Array;
  /** `size × observationDim`. */
  nextObservations: Float32Array;
  /** `size`, 1 where `s'` is terminal (TD targets use `1 − done`), else 0. */
  dones: Float32Array;
}

/** A batch of transitions drawn for one gradient step; same layout as {@link Transitions}. */
export type TransitionBatch = Transitions;

/** Per-dimension mean and standard deviation of a set of vectors. */
export interface VectorStats {
  /** Per-dimension mean. */
  mean: Float32Array;
  /** Per-dimension standard deviation (zeros replaced by 1). */
  std: Float32Array;
}

/** The action distribution of a target policy for a set of states. */
export interface ActionDistribution {
  /** `count × actionDim` Gaussian means, in the environment's action range. */
  mean: Float32Array;
  /** `count × actionDim` Gaussian standard deviations. */
  std: Float32Array;
}

/**
 * What a data source may know of the agent being trained: its target policy's
 * action distribution, which policy guidance (eq. 11–14) differentiates.
 */
export interface PolicyView {
  /** Gaussian `π(·|s)` per state of `observations` (`count × observationDim`). */
  actionDistribution(observations: Float32Array, count: number): ActionDistribution;
}
