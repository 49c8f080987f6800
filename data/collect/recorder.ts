/**
 * A growing table of environment steps in D4RL's layout (observations,
 * actions, rewards, terminals, timeouts, next observations, `infos/qpos`,
 * `infos/qvel`). It is the online agent's replay buffer as well as the
 * recording of a rollout, so medium-replay is the buffer itself.
 *
 * @module
 */
import type { D4rlDataset } from "../../core/types.ts";
import type { Rng } from "../../core/rng.ts";
import type { SacBatch } from "./sac.ts";

/** Widths of one recorded step. */
export interface StepWidths {
  /** Width of one observation. */
  observationDim: number;
  /** Width of one action. */
  actionDim: number;
  /** Number of MuJoCo position coordinates (`infos/qpos`). */
  nq: number;
  /** Number of MuJoCo velocity coordinates (`infos/qvel`). */
  nv: number;
}

/** Steps recorded into preallocated arrays, up to a fixed capacity. */
export class StepRecorder {
  /** Widths of one step. */
  readonly widths: StepWidths;
  /** Most steps this recorder holds. */
  readonly capacity: number;
  /** Steps recorded so far. */
  size = 0;
  /** `capacity × observationDim`. */
  readonly observations: Float32Array;
  /** `capacity × actionDim`. */
  readonly actions: Float32Array;
  /** `capacity`. */
  readonly rewards: Float32Array;
  /** `capacity`, 1 where the step reached a terminal state. */
  readonly terminals: Uint8Array;
  /** `capacity`, 1 where the step was the last before the time limit. */
  readonly timeouts: Uint8Array;
  /** `capacity × observationDim`. */
  readonly nextObservations: Float32Array;
  /** `capacity × nq`: the MuJoCo positions of the row's observation. */
  readonly qpos: Float64Array;
  /** `capacity × nv`: the MuJoCo velocities of the row's observation. */
  readonly qvel: Float64Array;

  /** Allocates room for `capacity` steps. */
  constructor(widths: StepWidths, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new Error(`StepRecorder: capacity must be a positive integer, got ${capacity}`);
    }
    this.widths = widths;
    this.capacity = capacity;
    this.observations = new Float32Array(capacity * widths.observationDim);
    this.actions = new Float32Array(capacity * widths.actionDim);
    this.rewards = new Float32Array(capacity);
    this.terminals = new Uint8Array(capacity);
    this.timeouts = new Uint8Array(capacity);
    this.nextObservations = new Float32Array(capacity * widths.observationDim);
    this.qpos = new Float64Array(capacity * widths.nq);
    this.qvel = new Float64Array(capacity * widths.nv);
  }

  /** Whether no more steps fit. */
  get full(): boolean {
    return this.size >= this.capacity;
  }

  /**
   * Appends one step: the state (`observation`, `qpos`, `qvel`) the action
   * was taken in, the action, its reward and outcome, and the next observation.
   */
  push(
    observation: Float32Array,
    qpos: Float64Array,
    qvel: Float64Array,
    action: Float32Array,
    reward: number,
    terminal: boolean,
    timeout: boolean,
    nextObservation: Float32Array,
  ): void {
    if (this.full) throw new Error(`StepRecorder: full at ${this.capacity} steps`);
    const { observationDim, actionDim, nq, nv } = this.widths;
    const row = this.size;
    this.observations.set(observation, row * observationDim);
    this.nextObservations.set(nextObservation, row * observationDim);
    this.actions.set(action, row * actionDim);
    this.qpos.set(qpos, row * nq);
    this.qvel.set(qvel, row * nv);
    this.rewards[row] = reward;
    this.terminals[row] = terminal ? 1 : 0;
    this.timeouts[row] = timeout ? 1 : 0;
    this.size++;
  }

  /** Fills `batch` with steps drawn uniformly (with replacement) from those recorded. */
  sample(rng: Rng, batch: SacBatch): void {
    const { observationDim, actionDim } = this.widths;
    const count = batch.rewards.length;
    for (let b = 0; b < count; b++) {
      const row = Math.floor(rng.uniform() * this.size);
      batch.observations.set(
        this.observations.subarray(row * observationDim, (row + 1) * observationDim),
        b * observationDim,
      );
      batch.nextObservations.set(
        this.nextObservations.subarray(row * observationDim, (row + 1) * observationDim),
        b * observationDim,
      );
      batch.actions.set(
        this.actions.subarray(row * actionDim, (row + 1) * actionDim),
        b * actionDim,
      );
      batch.rewards[b] = this.rewards[row];
      batch.dones[b] = this.terminals[row];
    }
  }

  /**
   * The first `count` steps (all by default) as a D4RL-layout dataset with
   * copied arrays. A last row that ends no episode is marked as a timeout, so
   * every episode in the dataset ends where a reader expects.
   */
  toDataset(metadata: Record<string, unknown>, count: number = this.size): D4rlDataset {
    if (!Number.isInteger(count) || count < 1 || count > this.size) {
      throw new Error(`StepRecorder: cannot export ${count} of ${this.size} recorded steps`);
    }
    const { observationDim, actionDim, nq, nv } = this.widths;
    const terminals = this.terminals.slice(0, count);
    const timeouts = this.timeouts.slice(0, count);
    if (terminals[count - 1] === 0) timeouts[count - 1] = 1;
    return {
      size: count,
      observationDim,
      actionDim,
      observations: this.observations.slice(0, count * observationDim),
      actions: this.actions.slice(0, count * actionDim),
      rewards: this.rewards.slice(0, count),
      terminals,
      timeouts,
      nextObservations: this.nextObservations.slice(0, count * observationDim),
      infos: {
        qpos: { data: this.qpos.slice(0, count * nq), width: nq },
        qvel: { data: this.qvel.slice(0, count * nv), width: nv },
      },
      metadata,
    };
  }
}
