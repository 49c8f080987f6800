/**
 * How good a set of transitions is as training data, measured the same way
 * for every source (real, diffusion, world model, a user's plugin) on a
 * bounded sample, beside the same numbers for held-out real data:
 *
 * - **simulator error**: put the simulator in `s`, apply `a`, compare its
 *   `s′` (positions and velocities apart) and `r` with the transition's,
 *   split by whether `s` touches an obstacle where the environment can say;
 * - **invalid states**: non-finite values, or states the environment cannot
 *   be in (a ball inside a wall);
 * - **state distance**: the energy distance between the sample's states and
 *   real states, both normalised by the real data's statistics;
 * - **action fit**: how far each action lies from the mean action of the 16
 *   nearest real states — whether actions are tied to their states;
 * - **rewards**: mean reward and the fraction of rewards above the middle of
 *   the real rewards' range (Maze2d: at the goal);
 * - **policy likelihood**: the actions' mean log-likelihood under the policy
 *   that guided the generation and under the agent's final policy.
 *
 * The numbers are means over the sample; docs/data-quality.md says how to
 * read them.
 *
 * @module
 */
import { z } from "zod";
import type { Environment } from "./contracts/environment.ts";
import { Rng } from "./rng.ts";
import type { PolicyView, Transitions } from "./types.ts";

/** Transitions measured per record (fewer where the real data hold under three times as many). */
export const qualitySampleSize = 256;
/**
 * Transitions the state distance compares, per side. Larger than the rest of
 * the record's sample because the energy distance of 256 states scattered by
 * ±0.02 between two real draws, as much as the synthetic data's distance
 * itself; it costs no simulator calls, only pairwise distances.
 */
export const distanceSampleSize = 2048;
/**
 * Transitions the fractions and the mean reward are counted over: every
 * transition of the set up to this many, evenly strided beyond it. Counting
 * costs no simulator call, and a 256-row sample leaves the rewarded fraction
 * of a sparse reward (Maze2d: about 6%) uncertain by ±1.5 points.
 */
export const countSampleSize = 65536;
/** Real transitions the action fit compares against. */
const referencePoolSize = 4096;
/** Nearest real states whose mean action an action is compared with. */
const neighbours = 16;

/** One-step errors against the simulator, means over the transitions measured. */
export const simulatorErrorSchema = z.object({
  /** Transitions measured. */
  count: z.number().int().nonnegative(),
  /** Mean |s′ − s′_sim| over the position entries of the observation. */
  position: z.number(),
  /** Mean |s′ − s′_sim| over the velocity entries (all entries where positions are not told apart). */
  velocity: z.number(),
  /** Mean |r − r_sim|. */
  reward: z.number(),
  /**
   * Mean r − r_sim: above 0 the data promise more reward than the simulator
   * gives for the same (s, a), which a value function learns and a policy
   * then seeks (absent in records made before it was measured).
   */
  rewardBias: z.number().optional(),
});

/** One-step errors against the simulator. */
export type SimulatorError = z.infer<typeof simulatorErrorSchema>;

/** The quality of one set of transitions (one generation of a source, or held-out real data). */
export const qualityRecordSchema = z.object({
  /** Generation it measures; −1 for the held-out real reference. */
  generation: z.number().int(),
  /** Agent step at which the generation was made. */
  step: z.number().int().nonnegative(),
  /** Transitions the simulator errors, the action fit and the likelihoods measure. */
  sampleSize: z.number().int().nonnegative(),
  /** One-step error against the simulator; absent where the environment cannot be set to a state. */
  simulator: simulatorErrorSchema.extend({
    /** The same, over states that touch an obstacle (where the environment can tell). */
    contact: simulatorErrorSchema.optional(),
    /** The same, over states that touch none. */
    free: simulatorErrorSchema.optional(),
  }).optional(),
  /**
   * Transitions the fractions and the mean reward are counted over: the whole set up to
   * 65536 (absent in records made before, which counted `sampleSize`).
   */
  countSampleSize: z.number().int().nonnegative().optional(),
  /** Fraction of transitions with a non-finite value or a state the environment cannot be in. */
  invalidFraction: z.number(),
  /** Fraction of states touching an obstacle, where the environment can tell. */
  contactFraction: z.number().optional(),
  /** Energy distance of the states to real states (normalised by the real data's statistics). */
  stateDistance: z.number(),
  /** States the distance compares on each side (absent in records made before it was larger than `sampleSize`). */
  distanceSampleSize: z.number().int().nonnegative().optional(),
  /** Mean |a − mean action of the 16 nearest real states|, per action entry. */
  actionFit: z.number(),
  /** Mean reward. */
  meanReward: z.number(),
  /** Fraction of rewards above the middle of the real rewards' range (Maze2d: at the goal). */
  rewardedFraction: z.number(),
  /** Fraction of transitions marked terminal (`done`), which cut the TD target's bootstrap. */
  doneFraction: z.number().optional(),
  /** Mean log-likelihood of the actions under the policy that guided the generation. */
  guideLogLikelihood: z.number().optional(),
  /**
   * The held-out real transitions' mean log-likelihood under that same policy: how on-policy
   * the dataset itself is for it, the mark guidance should clear.
   */
  realGuideLogLikelihood: z.number().optional(),
  /** Mean log-likelihood of the actions under the agent's final policy. */
  finalLogLikelihood: z.number().optional(),
  /**
   * A few trajectories on the environment's plan view (first two observation
   * entries), where it has one: runs of consecutive transitions whose `s′` is
   * the next transition's `s`.
   */
  paths: z.array(z.array(z.tuple([z.number(), z.number()]))).optional(),
  /**
   * Mean |s_sim − s| after 1, 2, … steps of replaying runs of consecutive
   * transitions' actions in the simulator (the paper's Figure 6 measure).
   */
  replayError: z.array(z.number()).optional(),
});

/** The quality of one set of transitions. */
export type QualityRecord = z.infer<typeof qualityRecordSchema>;

/** What a cell records: the held-out real reference and one record per generation. */
export const cellQualitySchema = z.object({
  /** The environment's plan view, where it has one (trajectories are drawn on it). */
  planView: z.object({
    walls: z.array(z.tuple([z.number(), z.number(), z.number(), z.number()])),
    goal: z.tuple([z.number(), z.number()]),
  }).optional(),
  /** Held-out real transitions, measured the same way. */
  reference: qualityRecordSchema,
  /** One record per generation of the cell's source, in order. */
  generations: z.array(qualityRecordSchema),
});

/** What a cell records of its data's quality. */
export type CellQuality = z.infer<typeof cellQualitySchema>;

/** The simulator hooks the record uses; every one but `step` is optional. */
export type QualitySimulator = Pick<
  Environment,
  "spec" | "step" | "resetToObservation" | "touchesObstacle" | "isImpossible" | "planView"
>;

/** Trajectories drawn per record, and their longest length in steps. */
const pathCount = 6;
const pathSteps = 48;

/** A run of consecutive transitions: rows `start … start + length − 1`, each `s′` the next `s`. */
interface Run {
  start: number;
  length: number;
}

/** Up to `count` runs of at least `minLength` consecutive transitions, from random starts. */
function consecutiveRuns(
  transitions: Transitions,
  rng: Rng,
  count: number,
  maxLength: number,
  minLength: number,
): Run[] {
  const od = transitions.observationDim;
  const continues = (row: number) =>
    row + 1 < transitions.size &&
    transitions.observations.subarray((row + 1) * od, (row + 2) * od)
      .every((value, d) => value === transitions.nextObservations[row * od + d]);
  const runs: Run[] = [];
  for (let attempt = 0; attempt < 4 * count && runs.length < count; attempt++) {
    const start = rng.int(transitions.size);
    let length = 1;
    while (length < maxLength && continues(start + length - 1)) length += 1;
    if (length >= minLength) runs.push({ start, length });
  }
  return runs;
}

/**
 * Up to {@link pathCount} trajectories (runs of consecutive transitions) as
 * lists of the first two observation entries.
 */
function tracePaths(transitions: Transitions, rng: Rng): [number, number][][] {
  const od = transitions.observationDim;
  const paths: [number, number][][] = [];
  for (const { start, length } of consecutiveRuns(transitions, rng, pathCount, pathSteps, 2)) {
    const path: [number, number][] = [[
      transitions.observations[start * od],
      transitions.observations[start * od + 1],
    ]];
    for (let row = start; row < start + length; row++) {
      path.push([
        transitions.nextObservations[row * od],
        transitions.nextObservations[row * od + 1],
      ]);
    }
    if (path.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y))) {
      paths.push(path.map(([x, y]) => [round(x), round(y)]));
    }
  }
  return paths;
}

/** Runs replayed per record. */
const replayRuns = 32;
/** Steps of the replay-error curve (a window of 16 states holds 15 transitions). */
export const replaySteps = 15;

/**
 * The paper's Figure 6 measure on a set of transitions: the simulator is put
 * in the first state of a run of consecutive transitions and the run's
 * actions are replayed; entry `k` is the mean |s_sim − s| over the
 * observation after `k + 1` steps. Absent where the simulator cannot be set
 * to a state or the transitions hold no runs (one-step rollouts).
 */
function replayError(
  transitions: Transitions,
  simulator: QualitySimulator,
  rng: Rng,
): number[] | undefined {
  if (typeof simulator.resetToObservation !== "function") return undefined;
  const od = transitions.observationDim;
  const ad = transitions.actionDim;
  const sums = new Float64Array(replaySteps);
  const counts = new Float64Array(replaySteps);
  for (const { start, length } of consecutiveRuns(transitions, rng, replayRuns, replaySteps, 4)) {
    const first = transitions.observations.subarray(start * od, (start + 1) * od);
    if (!allFinite(first)) continue;
    simulator.resetToObservation(first);
    for (let k = 0; k < length; k++) {
      const row = start + k;
      const action = transitions.actions.subarray(row * ad, (row + 1) * ad);
      if (!allFinite(action)) break;
      const observation = simulator.step(action).observation;
      let error = 0;
      for (let d = 0; d < od; d++) {
        error += Math.abs(observation[d] - transitions.nextObservations[row * od + d]);
      }
      if (!Number.isFinite(error)) break;
      sums[k] += error / od;
      counts[k] += 1;
    }
  }
  const curve: number[] = [];
  for (let k = 0; k < replaySteps && counts[k] > 0; k++) curve.push(sums[k] / counts[k]);
  return curve.length ? curve : undefined;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Rows of a transition set, as an index list into it. */
interface Sample {
  from: Transitions;
  rows: Int32Array;
}

/** The rows the counts cover: all of them up to {@link countSampleSize}, evenly strided beyond. */
function countRows(transitions: Transitions): Sample {
  const count = Math.min(countSampleSize, transitions.size);
  const stride = transitions.size / Math.max(count, 1);
  const rows = Int32Array.from({ length: count }, (_, i) => Math.floor(i * stride));
  return { from: transitions, rows };
}

function drawRows(size: number, count: number, rng: Rng, exclude?: Set<number>): Int32Array {
  const order = Int32Array.from({ length: size }, (_, i) => i);
  for (let i = size - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const swap = order[i];
    order[i] = order[j];
    order[j] = swap;
  }
  const picked: number[] = [];
  for (let i = 0; i < size && picked.length < count; i++) {
    if (!exclude?.has(order[i])) picked.push(order[i]);
  }
  return Int32Array.from(picked);
}

/**
 * Measures transition sets against one dataset's real data and simulator.
 * Built once per cell; {@link measure} is called on every generation, and
 * {@link finish} adds the final policy's likelihoods to every record.
 */
export class QualityProbe {
  readonly #sampleSize: number;
  readonly #distanceSize: number;
  readonly #rewardMidpoint: number;
  readonly #simulator: QualitySimulator;
  readonly #rng: Rng;
  readonly #mean: Float64Array;
  readonly #scale: Float64Array;
  readonly #pool: Float32Array;
  readonly #poolActions: Float32Array;
  readonly #poolSize: number;
  readonly #distanceReference: Float32Array;
  readonly #heldOut: Sample;
  readonly #measured: { record: QualityRecord; sample: Sample }[] = [];
  /** The held-out real data's record, the reference every other record is read against. */
  readonly reference: QualityRecord;

  /**
   * Splits the real data into a held-out sample (measured as the reference),
   * a second sample for the state distance and a pool for the action fit.
   */
  constructor(real: Transitions, simulator: QualitySimulator, seed: number) {
    // Three disjoint real samples: held out, distance reference, action-fit pool.
    const sampleSize = Math.min(qualitySampleSize, Math.floor(real.size / 3));
    if (sampleSize < 1) {
      throw new Error(
        `data quality: the real data has ${real.size} transitions; at least 3 are needed`,
      );
    }
    this.#sampleSize = sampleSize;
    this.#distanceSize = Math.max(
      sampleSize,
      Math.min(distanceSampleSize, Math.floor(real.size / 3)),
    );
    // A generated reward is a continuous number even where real rewards are
    // 0 or 1, so "rewarded" means above the middle of the real rewards' range.
    let lowest = Infinity;
    let highest = -Infinity;
    for (const reward of real.rewards) {
      lowest = Math.min(lowest, reward);
      highest = Math.max(highest, reward);
    }
    this.#rewardMidpoint = (lowest + highest) / 2;
    this.#simulator = simulator;
    this.#rng = new Rng(seed);
    const od = real.observationDim;
    this.#mean = new Float64Array(od);
    this.#scale = new Float64Array(od);
    for (let row = 0; row < real.size; row++) {
      for (let d = 0; d < od; d++) this.#mean[d] += real.observations[row * od + d];
    }
    for (let d = 0; d < od; d++) this.#mean[d] /= real.size;
    for (let row = 0; row < real.size; row++) {
      for (let d = 0; d < od; d++) {
        const centred = real.observations[row * od + d] - this.#mean[d];
        this.#scale[d] += centred * centred;
      }
    }
    for (let d = 0; d < od; d++) {
      const std = Math.sqrt(this.#scale[d] / real.size);
      this.#scale[d] = std > 1e-6 ? 1 / std : 1;
    }
    // The held-out sample's first rows are the record's sample, all of them its distance sample.
    const heldOutDistanceRows = drawRows(real.size, this.#distanceSize, this.#rng);
    const heldOutRows = heldOutDistanceRows.subarray(0, sampleSize);
    const taken = new Set(heldOutDistanceRows);
    const distanceRows = drawRows(real.size, this.#distanceSize, this.#rng, taken);
    for (const row of distanceRows) taken.add(row);
    const poolRows = drawRows(real.size, referencePoolSize, this.#rng, taken);
    this.#distanceReference = this.#normalised({ from: real, rows: distanceRows });
    this.#pool = this.#normalised({ from: real, rows: poolRows });
    this.#poolSize = poolRows.length;
    const ad = real.actionDim;
    this.#poolActions = new Float32Array(poolRows.length * ad);
    poolRows.forEach((row, i) =>
      this.#poolActions.set(real.actions.subarray(row * ad, (row + 1) * ad), i * ad)
    );
    this.#heldOut = { from: real, rows: heldOutRows };
    this.reference = this.#record(this.#heldOut, -1, 0, {
      from: real,
      rows: heldOutDistanceRows,
    }, countRows(real));
    if (simulator.planView) this.reference.paths = tracePaths(real, this.#rng);
    const realReplay = replayError(real, simulator, this.#rng);
    if (realReplay) this.reference.replayError = realReplay;
    this.#measured.push({ record: this.reference, sample: this.#heldOut });
  }

  /** The record of one generation; `guide` is the policy handed to the source, if any. */
  measure(
    transitions: Transitions,
    generation: number,
    step: number,
    guide?: PolicyView,
  ): QualityRecord {
    const count = Math.min(this.#sampleSize, transitions.size);
    const distanceRows = drawRows(
      transitions.size,
      Math.min(this.#distanceSize, transitions.size),
      this.#rng,
    );
    const sample = { from: transitions, rows: distanceRows.subarray(0, count) };
    const record = this.#record(sample, generation, step, {
      from: transitions,
      rows: distanceRows,
    }, countRows(transitions));
    if (guide) {
      record.guideLogLikelihood = logLikelihood(guide, sample);
      record.realGuideLogLikelihood = logLikelihood(guide, this.#heldOut);
    }
    if (this.#simulator.planView) record.paths = tracePaths(transitions, this.#rng);
    const replay = replayError(transitions, this.#simulator, this.#rng);
    if (replay) record.replayError = replay;
    this.#measured.push({ record, sample });
    return record;
  }

  /** Adds the final policy's log-likelihood to every record made so far, the reference included. */
  finish(finalPolicy: PolicyView): void {
    for (const { record, sample } of this.#measured) {
      record.finalLogLikelihood = logLikelihood(finalPolicy, sample);
    }
  }

  /** Every record made so far, the reference first. */
  records(): QualityRecord[] {
    return this.#measured.map(({ record }) => record);
  }

  /** The cell's record: the reference and every generation's record. */
  cellQuality(): CellQuality {
    const planView = this.#simulator.planView?.();
    return {
      ...(planView ? { planView } : {}),
      reference: this.reference,
      generations: this.records().slice(1),
    };
  }

  /**
   * The record of `sample`, with the state distance of the larger
   * `distanceSample` and the fractions and mean reward of `counted`.
   */
  #record(
    sample: Sample,
    generation: number,
    step: number,
    distanceSample: Sample,
    counted: Sample,
  ): QualityRecord {
    const { from, rows } = counted;
    const od = from.observationDim;
    let invalid = 0;
    let contact = 0;
    let rewardSum = 0;
    let rewarded = 0;
    let done = 0;
    const canTellContact = typeof this.#simulator.touchesObstacle === "function";
    for (const row of rows) {
      const state = from.observations.subarray(row * od, (row + 1) * od);
      const next = from.nextObservations.subarray(row * od, (row + 1) * od);
      if (!allFinite(state) || !allFinite(next) || !Number.isFinite(from.rewards[row])) {
        invalid += 1;
      } else if (this.#simulator.isImpossible?.(state) || this.#simulator.isImpossible?.(next)) {
        invalid += 1;
      }
      if (canTellContact && allFinite(state) && this.#simulator.touchesObstacle!(state)) {
        contact += 1;
      }
      rewardSum += Number.isFinite(from.rewards[row]) ? from.rewards[row] : 0;
      if (from.rewards[row] > this.#rewardMidpoint) rewarded += 1;
      if (from.dones[row] !== 0) done += 1;
    }
    const normalised = this.#normalised(sample);
    const record: QualityRecord = {
      generation,
      step,
      sampleSize: sample.rows.length,
      countSampleSize: rows.length,
      invalidFraction: invalid / rows.length,
      stateDistance: energyDistance(
        this.#normalised(distanceSample),
        this.#distanceReference,
        od,
      ),
      distanceSampleSize: distanceSample.rows.length,
      actionFit: this.#actionFit(sample, normalised),
      meanReward: rewardSum / rows.length,
      rewardedFraction: rewarded / rows.length,
      doneFraction: done / rows.length,
    };
    if (canTellContact) record.contactFraction = contact / rows.length;
    const simulator = this.#simulatorError(sample);
    if (simulator) record.simulator = simulator;
    return record;
  }

  #normalised(sample: Sample): Float32Array {
    const od = sample.from.observationDim;
    const out = new Float32Array(sample.rows.length * od);
    sample.rows.forEach((row, i) => {
      for (let d = 0; d < od; d++) {
        const value = sample.from.observations[row * od + d];
        out[i * od + d] = Number.isFinite(value) ? (value - this.#mean[d]) * this.#scale[d] : 0;
      }
    });
    return out;
  }

  #actionFit(sample: Sample, normalised: Float32Array): number {
    const od = sample.from.observationDim;
    const ad = sample.from.actionDim;
    const distances = new Float64Array(this.#poolSize);
    const order = new Int32Array(this.#poolSize);
    let total = 0;
    sample.rows.forEach((row, i) => {
      for (let p = 0; p < this.#poolSize; p++) {
        let sum = 0;
        for (let d = 0; d < od; d++) {
          const diff = normalised[i * od + d] - this.#pool[p * od + d];
          sum += diff * diff;
        }
        distances[p] = sum;
        order[p] = p;
      }
      const nearest = smallest(order, distances, neighbours);
      let error = 0;
      for (let d = 0; d < ad; d++) {
        let mean = 0;
        for (const p of nearest) mean += this.#poolActions[p * ad + d];
        mean /= nearest.length;
        const action = sample.from.actions[row * ad + d];
        error += Number.isFinite(action) ? Math.abs(action - mean) : 2;
      }
      total += error / ad;
    });
    return total / sample.rows.length;
  }

  #simulatorError(sample: Sample): QualityRecord["simulator"] | undefined {
    const simulator = this.#simulator;
    if (typeof simulator.resetToObservation !== "function") return undefined;
    const { from, rows } = sample;
    const od = from.observationDim;
    const ad = from.actionDim;
    const positionDims = Math.min(od, simulator.spec.positionDims ?? 0);
    const all = new ErrorSum();
    const touching = new ErrorSum();
    const free = new ErrorSum();
    const canTellContact = typeof simulator.touchesObstacle === "function";
    for (const row of rows) {
      const state = from.observations.subarray(row * od, (row + 1) * od);
      const action = from.actions.subarray(row * ad, (row + 1) * ad);
      const next = from.nextObservations.subarray(row * od, (row + 1) * od);
      if (!allFinite(state) || !allFinite(action) || !allFinite(next)) continue;
      simulator.resetToObservation(state);
      const result = simulator.step(action);
      let position = 0;
      let velocity = 0;
      for (let d = 0; d < od; d++) {
        const error = Math.abs(result.observation[d] - next[d]);
        if (d < positionDims) position += error;
        else velocity += error;
      }
      const errors = [
        positionDims > 0 ? position / positionDims : 0,
        od > positionDims ? velocity / (od - positionDims) : 0,
        Math.abs(result.reward - from.rewards[row]),
        from.rewards[row] - result.reward,
      ] as const;
      all.add(errors);
      if (canTellContact) (simulator.touchesObstacle!(state) ? touching : free).add(errors);
    }
    if (all.count === 0) return undefined;
    const error: NonNullable<QualityRecord["simulator"]> = all.mean();
    if (canTellContact) {
      if (touching.count > 0) error.contact = touching.mean();
      if (free.count > 0) error.free = free.mean();
    }
    return error;
  }
}

/** Sums of one-step errors: position, velocity, |reward| and signed reward. */
class ErrorSum {
  count = 0;
  #sums = [0, 0, 0, 0];
  add(errors: readonly [number, number, number, number]): void {
    this.count += 1;
    for (let i = 0; i < this.#sums.length; i++) this.#sums[i] += errors[i];
  }
  mean(): SimulatorError {
    const [position, velocity, reward, rewardBias] = this.#sums.map((sum) => sum / this.count);
    return { count: this.count, position, velocity, reward, rewardBias };
  }
}

function allFinite(values: Float32Array): boolean {
  for (const value of values) if (!Number.isFinite(value)) return false;
  return true;
}

/** The `k` entries of `order` with the smallest `keys` (partial selection sort; k is small). */
function smallest(order: Int32Array, keys: Float64Array, k: number): Int32Array {
  const count = Math.min(k, order.length);
  for (let i = 0; i < count; i++) {
    let best = i;
    for (let j = i + 1; j < order.length; j++) {
      if (keys[order[j]] < keys[order[best]]) best = j;
    }
    const swap = order[i];
    order[i] = order[best];
    order[best] = swap;
  }
  return order.subarray(0, count);
}

/**
 * The energy distance `2E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖` between two sets of
 * `dim`-vectors: 0 for equal distributions, growing as they part. The
 * within-set terms leave out each point's distance to itself (the unbiased
 * estimate), so two draws of one distribution give about 0, either sign.
 */
export function energyDistance(x: Float32Array, y: Float32Array, dim: number): number {
  const meanDistance = (a: Float32Array, b: Float32Array, same: boolean) => {
    const n = a.length / dim;
    const m = b.length / dim;
    let total = 0;
    let pairs = 0;
    for (let i = 0; i < n; i++) {
      for (let j = same ? i + 1 : 0; j < m; j++) {
        let sum = 0;
        for (let d = 0; d < dim; d++) {
          const diff = a[i * dim + d] - b[j * dim + d];
          sum += diff * diff;
        }
        total += Math.sqrt(sum);
        pairs += 1;
      }
    }
    return pairs > 0 ? total / pairs : 0;
  };
  return 2 * meanDistance(x, y, false) - meanDistance(x, x, true) - meanDistance(y, y, true);
}

/** Mean over a sample of `Σ_d log N(a_d; μ_d(s), σ_d(s))` under a policy's Gaussian. */
function logLikelihood(policy: PolicyView, sample: Sample): number {
  const { from, rows } = sample;
  const od = from.observationDim;
  const ad = from.actionDim;
  const observations = new Float32Array(rows.length * od);
  rows.forEach((row, i) =>
    observations.set(from.observations.subarray(row * od, (row + 1) * od), i * od)
  );
  const { mean, std } = policy.actionDistribution(observations, rows.length);
  let total = 0;
  rows.forEach((row, i) => {
    for (let d = 0; d < ad; d++) {
      const sigma = Math.max(std[i * ad + d], 1e-6);
      const z = (from.actions[row * ad + d] - mean[i * ad + d]) / sigma;
      total += -0.5 * z * z - Math.log(sigma) - 0.5 * Math.log(2 * Math.PI);
    }
  });
  return total / rows.length;
}
