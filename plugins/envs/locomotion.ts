/**
 * MuJoCo locomotion: HalfCheetah, Hopper and Walker2d with the semantics under
 * which D4RL's v2 datasets were recorded (gym's v3 environments): observation,
 * action range, reward terms, healthy ranges, frame skip, reset noise and
 * 1000-step episodes. `collect` records the D4RL levels (random, medium,
 * medium-replay, expert) with an online SAC agent (`data/collect/`).
 *
 * @module
 */
import type {
  CollectRequest,
  Environment,
  EnvironmentPlugin,
  EnvironmentSpec,
  ScoreReference,
  StepResult,
} from "../../core/contracts/environment.ts";
import { neverTerminal } from "../../core/contracts/environment.ts";
import type { D4rlDataset } from "../../core/types.ts";
import { Rng } from "../../core/rng.ts";
import { loadModel, type MujocoSimulation } from "./mujoco.ts";
import { halfCheetahXml } from "./assets/half_cheetah.ts";
import { hopperXml } from "./assets/hopper.ts";
import { walker2dXml } from "./assets/walker2d.ts";

/** The locomotion tasks. */
export const locomotionTasks = ["halfcheetah", "hopper", "walker2d"] as const;

/** One of {@link locomotionTasks}. */
export type LocomotionTask = (typeof locomotionTasks)[number];

/** D4RL's dataset levels of each task. */
export const locomotionLevels = ["random", "medium", "medium-replay", "expert"] as const;

/** One of {@link locomotionLevels}. */
export type LocomotionLevel = (typeof locomotionLevels)[number];

/** Steps of one episode before the time limit, as in gym's v3 registrations. */
export const episodeSteps = 1000;

/** How a task behaves: its model, its observation and reward terms, its termination. */
export interface LocomotionTaskSpec {
  /** Task name. */
  task: LocomotionTask;
  /** The MJCF model. */
  xml: string;
  /** Simulator steps per environment step. */
  frameSkip: number;
  /** Width of one observation: `qpos[1:]` then `qvel`. */
  observationDim: number;
  /** Number of actuators; every action dimension lies in [−1, 1]. */
  actionDim: number;
  /** Velocities in the observation are clipped to ±this (Infinity: not clipped). */
  velocityClip: number;
  /** Reward per step while healthy (Hopper, Walker2d), 0 for HalfCheetah. */
  healthyReward: number;
  /** Weight of the control cost Σa². */
  controlCostWeight: number;
  /** Half-width of the uniform noise on the initial positions. */
  resetPositionNoise: number;
  /** Scale of the noise on the initial velocities. */
  resetVelocityNoise: number;
  /** Initial velocity noise is `scale·N(0, 1)` (HalfCheetah) rather than `U(±scale)`. */
  resetVelocityNormal: boolean;
  /** Whether a state is healthy; an unhealthy state ends the episode. Absent: never ends. */
  isHealthy?: (qpos: Float64Array, qvel: Float64Array) => boolean;
  /**
   * The same health check on an observation (x unknown, Hopper's and
   * Walker2d's velocities clipped to ±10), as model-based offline RL states
   * it for predicted states. Absent: never ends.
   */
  isHealthyObservation?: (observation: Float32Array) => boolean;
  /** D4RL's normalised-score references of the v2 datasets. */
  scoreReference: ScoreReference;
}

/** Hopper: every entry of `qpos[2:]` and `qvel` within ±100, height above 0.7, |angle| below 0.2. */
function hopperHealthy(qpos: Float64Array, qvel: Float64Array): boolean {
  for (let i = 2; i < qpos.length; i++) if (!(Math.abs(qpos[i]) < 100)) return false;
  for (let i = 0; i < qvel.length; i++) if (!(Math.abs(qvel[i]) < 100)) return false;
  const height = qpos[1];
  const angle = qpos[2];
  return height > 0.7 && angle > -0.2 && angle < 0.2;
}

/** Walker2d: height in (0.8, 2.0) and angle in (−1, 1). */
function walkerHealthy(qpos: Float64Array): boolean {
  const height = qpos[1];
  const angle = qpos[2];
  return height > 0.8 && height < 2.0 && angle > -1 && angle < 1;
}

/**
 * Hopper on an observation `qpos[1:] ‖ qvel`, as MOPO's static termination
 * function states it (Yu et al. 2020; its public code): height `obs[0]` above
 * 0.7, |angle `obs[1]`| below 0.2, and every later entry finite and within ±100.
 */
function hopperObservationHealthy(observation: Float32Array): boolean {
  const height = observation[0];
  const angle = observation[1];
  for (let i = 1; i < observation.length; i++) {
    if (!Number.isFinite(observation[i]) || Math.abs(observation[i]) >= 100) return false;
  }
  return height > 0.7 && Math.abs(angle) < 0.2;
}

/** Walker2d on an observation: height `obs[0]` in (0.8, 2.0) and angle `obs[1]` in (−1, 1). */
function walkerObservationHealthy(observation: Float32Array): boolean {
  const height = observation[0];
  const angle = observation[1];
  return height > 0.8 && height < 2.0 && angle > -1.0 && angle < 1.0;
}

/** The three tasks, as gym v3 defines them (see d4rl-and-baselines.md). */
export const taskSpecs: Readonly<Record<LocomotionTask, LocomotionTaskSpec>> = {
  halfcheetah: {
    task: "halfcheetah",
    xml: halfCheetahXml,
    frameSkip: 5,
    observationDim: 17,
    actionDim: 6,
    velocityClip: Infinity,
    healthyReward: 0,
    controlCostWeight: 0.1,
    resetPositionNoise: 0.1,
    resetVelocityNoise: 0.1,
    resetVelocityNormal: true,
    scoreReference: { min: -280.178953, max: 12135.0 },
  },
  hopper: {
    task: "hopper",
    xml: hopperXml,
    frameSkip: 4,
    observationDim: 11,
    actionDim: 3,
    velocityClip: 10,
    healthyReward: 1,
    controlCostWeight: 1e-3,
    resetPositionNoise: 5e-3,
    resetVelocityNoise: 5e-3,
    resetVelocityNormal: false,
    isHealthy: hopperHealthy,
    isHealthyObservation: hopperObservationHealthy,
    scoreReference: { min: -20.272305, max: 3234.3 },
  },
  walker2d: {
    task: "walker2d",
    xml: walker2dXml,
    frameSkip: 4,
    observationDim: 17,
    actionDim: 6,
    velocityClip: 10,
    healthyReward: 1,
    controlCostWeight: 1e-3,
    resetPositionNoise: 5e-3,
    resetVelocityNoise: 5e-3,
    resetVelocityNormal: false,
    isHealthy: walkerHealthy,
    isHealthyObservation: walkerObservationHealthy,
    scoreReference: { min: 1.629008, max: 4592.3 },
  },
};

/** The gym environment each task reproduces (D4RL's v2 datasets were recorded with these). */
export const gymNames: Readonly<Record<LocomotionTask, string>> = {
  halfcheetah: "HalfCheetah-v3",
  hopper: "Hopper-v3",
  walker2d: "Walker2d-v3",
};

/** A dataset id split into its task and level. */
export interface LocomotionDatasetId {
  /** The task. */
  task: LocomotionTask;
  /** The level. */
  level: LocomotionLevel;
}

/** All dataset ids, e.g. `halfcheetah-medium-replay`. */
export const locomotionDatasets: readonly string[] = locomotionTasks.flatMap((task) =>
  locomotionLevels.map((level) => `${task}-${level}`)
);

/** Splits a dataset id (`halfcheetah-medium-replay`) into task and level, or throws naming the id. */
export function parseDatasetId(dataset: string): LocomotionDatasetId {
  for (const task of locomotionTasks) {
    for (const level of locomotionLevels) {
      if (dataset === `${task}-${level}`) return { task, level };
    }
  }
  throw new Error(
    `locomotion: unknown dataset '${dataset}'; expected one of ${locomotionDatasets.join(", ")}`,
  );
}

/** The environment spec of a task. */
export function taskEnvironmentSpec(task: LocomotionTask, id: string = task): EnvironmentSpec {
  const spec = taskSpecs[task];
  return {
    id,
    observationDim: spec.observationDim,
    actionDim: spec.actionDim,
    maxEpisodeSteps: episodeSteps,
    scoreReference: { ...spec.scoreReference },
    // The observation is qpos[1:] then qvel, and nq = nv in all three models.
    positionDims: (spec.observationDim - 1) / 2,
    isTerminal: terminalCheck(spec),
  };
}

/** A task's {@link EnvironmentSpec.isTerminal}: unhealthy observations are terminal. */
function terminalCheck(
  spec: LocomotionTaskSpec,
): (observations: Float32Array, count: number) => Uint8Array {
  const healthy = spec.isHealthyObservation;
  if (!healthy) return neverTerminal;
  const width = spec.observationDim;
  return (observations, count) => {
    if (observations.length !== count * width) {
      throw new Error(
        `locomotion '${spec.task}': isTerminal got ${observations.length} values, expected ${count} × ${width}`,
      );
    }
    const terminals = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      terminals[i] = healthy(observations.subarray(i * width, (i + 1) * width)) ? 0 : 1;
    }
    return terminals;
  };
}

/**
 * A running locomotion simulator. Besides the {@link Environment} hooks it
 * steps into caller-owned arrays (no allocation per step) and exposes the
 * full MuJoCo state for recording `infos/qpos` and `infos/qvel`.
 */
export class LocomotionEnvironment implements Environment {
  /** Sizes and references. */
  readonly spec: EnvironmentSpec;
  /** The task's definition. */
  readonly task: LocomotionTaskSpec;
  /** Number of position coordinates (x included). */
  readonly nq: number;
  /** Number of velocity coordinates. */
  readonly nv: number;
  /** Duration of one environment step in seconds (timestep × frame skip). */
  readonly dt: number;
  readonly #simulation: MujocoSimulation;
  readonly #qpos: Float64Array;
  readonly #qvel: Float64Array;
  readonly #initialQpos: Float64Array;

  /** Wraps a loaded simulation; use {@link makeLocomotionEnvironment}. */
  constructor(task: LocomotionTaskSpec, simulation: MujocoSimulation, id: string) {
    if (
      simulation.nu !== task.actionDim || simulation.nq + simulation.nv - 1 !== task.observationDim
    ) {
      throw new Error(
        `locomotion: model of '${task.task}' has nq=${simulation.nq}, nv=${simulation.nv}, nu=${simulation.nu}, which does not match observation ${task.observationDim} and action ${task.actionDim}`,
      );
    }
    this.task = task;
    this.spec = taskEnvironmentSpec(task.task, id);
    this.#simulation = simulation;
    this.nq = simulation.nq;
    this.nv = simulation.nv;
    this.dt = simulation.timestep * task.frameSkip;
    this.#qpos = new Float64Array(this.nq);
    this.#qvel = new Float64Array(this.nv);
    simulation.reset();
    this.#initialQpos = simulation.readQpos();
  }

  /** Starts an episode from the model's initial pose plus the task's reset noise drawn from `seed`. */
  reset(seed: number): Float32Array {
    const observation = new Float32Array(this.task.observationDim);
    this.resetInto(new Rng(seed), observation);
    return observation;
  }

  /** Starts an episode with noise drawn from `rng`, writing the observation into `observation`. */
  resetInto(rng: Rng, observation: Float32Array): void {
    const { resetPositionNoise, resetVelocityNoise, resetVelocityNormal } = this.task;
    const qpos = this.#qpos;
    const qvel = this.#qvel;
    for (let i = 0; i < this.nq; i++) {
      qpos[i] = this.#initialQpos[i] + rng.range(-resetPositionNoise, resetPositionNoise);
    }
    for (let i = 0; i < this.nv; i++) {
      qvel[i] = resetVelocityNormal
        ? resetVelocityNoise * rng.normal()
        : rng.range(-resetVelocityNoise, resetVelocityNoise);
    }
    this.#setState(qpos, qvel);
    this.#observe(observation);
  }

  /** Applies one action (clipped to [−1, 1]) and returns a fresh observation. */
  step(action: Float32Array): StepResult {
    const observation = new Float32Array(this.task.observationDim);
    const reward = this.stepInto(action, observation);
    return { observation, reward, terminated: this.terminated };
  }

  /** Whether the state after the latest step or reset is terminal (unhealthy). */
  terminated = false;

  /**
   * Applies one action (clipped to [−1, 1]) for `frameSkip` simulator steps,
   * writes the next observation into `observation` and returns the reward;
   * {@link terminated} then tells whether the episode ended.
   */
  stepInto(action: ArrayLike<number>, observation: Float32Array): number {
    const simulation = this.#simulation;
    const { mujoco, model, data } = simulation;
    const actionDim = this.task.actionDim;
    if (action.length !== actionDim) {
      throw new Error(
        `locomotion '${this.spec.id}': action has ${action.length} values, expected ${actionDim}`,
      );
    }
    // Fresh views each step: wasm memory may have grown since the last call.
    const ctrl = data.ctrl as Float64Array;
    let squaredAction = 0;
    for (let i = 0; i < actionDim; i++) {
      const clipped = Math.min(1, Math.max(-1, action[i]));
      ctrl[i] = clipped;
      squaredAction += clipped * clipped;
    }
    const xBefore = (data.qpos as Float64Array)[0];
    for (let i = 0; i < this.task.frameSkip; i++) mujoco.mj_step(model, data);
    const qpos = data.qpos as Float64Array;
    const qvel = data.qvel as Float64Array;
    const forwardVelocity = (qpos[0] - xBefore) / this.dt;
    const healthy = this.task.isHealthy ? this.task.isHealthy(qpos, qvel) : true;
    this.terminated = !healthy;
    this.#observeFrom(qpos, qvel, observation);
    return forwardVelocity + this.task.healthyReward - this.task.controlCostWeight * squaredAction;
  }

  /**
   * Puts the simulator in the state an observation describes: x is set to 0
   * (it does not change the dynamics). Velocities beyond Hopper's and
   * Walker2d's observation clip (±10) come back clipped.
   */
  resetToObservation(observation: Float32Array): void {
    if (observation.length !== this.task.observationDim) {
      throw new Error(
        `locomotion '${this.spec.id}': observation has ${observation.length} values, expected ${this.task.observationDim}`,
      );
    }
    const qpos = this.#qpos;
    const qvel = this.#qvel;
    qpos[0] = 0;
    for (let i = 1; i < this.nq; i++) qpos[i] = observation[i - 1];
    for (let i = 0; i < this.nv; i++) qvel[i] = observation[this.nq - 1 + i];
    this.#setState(qpos, qvel);
  }

  /** Copies the full MuJoCo state (x included) into `qpos` (nq) and `qvel` (nv). */
  readState(qpos: Float64Array, qvel: Float64Array): void {
    this.#simulation.readQpos(qpos);
    this.#simulation.readQvel(qvel);
  }

  /** Sets the full MuJoCo state (x included), as gym's `set_state` does. */
  setState(qpos: ArrayLike<number>, qvel: ArrayLike<number>): void {
    this.#setState(qpos, qvel);
  }

  /** Frees simulator memory. */
  close(): void {
    this.#simulation.free();
  }

  #setState(qpos: ArrayLike<number>, qvel: ArrayLike<number>): void {
    const simulation = this.#simulation;
    // A clean reset first so time, controls and solver warm-start do not carry over.
    simulation.reset();
    simulation.writeQpos(qpos);
    simulation.writeQvel(qvel);
    simulation.forward();
    this.terminated = this.task.isHealthy
      ? !this.task.isHealthy(simulation.readQpos(this.#qpos), simulation.readQvel(this.#qvel))
      : false;
  }

  #observe(observation: Float32Array): void {
    const { data } = this.#simulation;
    this.#observeFrom(data.qpos as Float64Array, data.qvel as Float64Array, observation);
  }

  #observeFrom(qpos: Float64Array, qvel: Float64Array, observation: Float32Array): void {
    const clip = this.task.velocityClip;
    const offset = this.nq - 1;
    for (let i = 1; i < this.nq; i++) observation[i - 1] = qpos[i];
    for (let i = 0; i < this.nv; i++) {
      observation[offset + i] = Math.min(clip, Math.max(-clip, qvel[i]));
    }
  }
}

/** Starts a simulator of a task (`id` names it in errors and in its spec). */
export async function makeLocomotionEnvironment(
  task: LocomotionTask,
  id: string = task,
): Promise<LocomotionEnvironment> {
  const spec = taskSpecs[task];
  const simulation = await loadModel(task, spec.xml);
  return new LocomotionEnvironment(spec, simulation, id);
}

/** What {@link replayActions} reached. */
export interface Replay {
  /** Steps actually taken (fewer than asked when a terminal state came first). */
  steps: number;
  /** `steps × observationDim`: the observation after each action. */
  observations: Float32Array;
  /** `steps`: the reward of each action. */
  rewards: Float32Array;
  /** `steps`, 1 where the state reached is terminal. */
  terminals: Uint8Array;
}

/**
 * Puts the simulator in the state `observation` describes and replays
 * `actions` (`count × actionDim`) from there, returning the states it reaches;
 * stops early at a terminal state.
 */
export function replayActions(
  environment: LocomotionEnvironment,
  observation: Float32Array,
  actions: Float32Array,
): Replay {
  const { observationDim, actionDim } = environment.task;
  if (actions.length % actionDim !== 0) {
    throw new Error(
      `locomotion '${environment.spec.id}': actions have ${actions.length} values, not a multiple of the action width ${actionDim}`,
    );
  }
  const count = actions.length / actionDim;
  const observations = new Float32Array(count * observationDim);
  const rewards = new Float32Array(count);
  const terminals = new Uint8Array(count);
  environment.resetToObservation(observation);
  let steps = 0;
  while (steps < count) {
    rewards[steps] = environment.stepInto(
      actions.subarray(steps * actionDim, (steps + 1) * actionDim),
      observations.subarray(steps * observationDim, (steps + 1) * observationDim),
    );
    terminals[steps] = environment.terminated ? 1 : 0;
    steps++;
    if (environment.terminated) break;
  }
  return {
    steps,
    observations: observations.slice(0, steps * observationDim),
    rewards: rewards.slice(0, steps),
    terminals: terminals.slice(0, steps),
  };
}

/** The locomotion environment plugin: HalfCheetah, Hopper and Walker2d at D4RL's four levels. */
export function locomotion(): EnvironmentPlugin {
  return {
    name: "locomotion",
    datasets: locomotionDatasets,
    spec(dataset: string): EnvironmentSpec {
      return taskEnvironmentSpec(parseDatasetId(dataset).task, dataset);
    },
    make(dataset: string): Promise<Environment> {
      return makeLocomotionEnvironment(parseDatasetId(dataset).task, dataset);
    },
    async collect(request: CollectRequest): Promise<D4rlDataset> {
      const { task, level } = parseDatasetId(request.dataset);
      // Loaded on demand: collecting needs TF.js, simulating does not.
      const { collectLevel } = await import("../../data/collect/levels.ts");
      return await collectLevel({
        dataset: request.dataset,
        level,
        makeEnvironment: () => makeLocomotionEnvironment(task, request.dataset),
        seed: request.seed,
        preset: request.preset,
        size: request.size,
        onProgress: request.onProgress,
        environmentName: gymNames[task],
      });
    },
    d4rlFileName(dataset: string): string {
      parseDatasetId(dataset);
      return `${dataset}-v2.hdf5`;
    },
  };
}
