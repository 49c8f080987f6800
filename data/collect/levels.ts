/**
 * D4RL's dataset levels, recorded as D4RL defined them (Fu et al. 2020, §5):
 *
 * - `random`: rollouts of a randomly initialised policy;
 * - `medium`: an online SAC agent is trained until its evaluation return
 *   reaches about one third of the expert reference, then rolled out;
 * - `medium-replay`: everything in that agent's replay buffer up to then;
 * - `expert`: the agent trained on to its full budget, then rolled out.
 *
 * Sizes and training budgets come from a preset (`paper`: D4RL's sizes). The
 * behaviour agent is trained once per (environment, preset, seed) in a
 * process and shared by the levels that need it.
 *
 * @module
 */
import { z } from "zod";
import { ensureCompute } from "../../core/compute.ts";
import type { PresetName } from "../../core/contracts/common.ts";
import type { EnvironmentSpec } from "../../core/contracts/environment.ts";
import { normalizedScore } from "../../core/contracts/environment.ts";
import type { D4rlDataset } from "../../core/types.ts";
import { deriveSeed, Rng } from "../../core/rng.ts";
import { type PolicySnapshot, Sac, type SacBatch, sacConfigSchema } from "./sac.ts";
import { StepRecorder } from "./recorder.ts";

/** D4RL's levels. */
export const d4rlLevels = ["random", "medium", "medium-replay", "expert"] as const;

/** One of {@link d4rlLevels}. */
export type D4rlLevel = (typeof d4rlLevels)[number];

/**
 * What the collector needs of a simulator: stepping into caller-owned arrays
 * and the full MuJoCo state for `infos/qpos` and `infos/qvel`.
 */
export interface RecordingEnvironment {
  /** Sizes, episode length and score references. */
  readonly spec: EnvironmentSpec;
  /** Number of position coordinates. */
  readonly nq: number;
  /** Number of velocity coordinates. */
  readonly nv: number;
  /** Whether the state after the latest step or reset is terminal. */
  readonly terminated: boolean;
  /** Starts an episode with noise from `rng`, writing the observation into `observation`. */
  resetInto(rng: Rng, observation: Float32Array): void;
  /** Applies an action, writes the next observation into `observation`, returns the reward. */
  stepInto(action: Float32Array, observation: Float32Array): number;
  /** Copies the full state into `qpos` and `qvel`. */
  readState(qpos: Float64Array, qvel: Float64Array): void;
  /** Frees the simulator. */
  close(): void;
}

/** Sizes and training budget of the collection, per preset. */
export const collectionSizesSchema = z.object({
  /** Steps recorded for random, medium and expert. */
  datasetSize: z.number().int().positive(),
  /** Uniform-random steps that fill the replay buffer before training starts. */
  startSteps: z.number().int().nonnegative(),
  /** Most environment steps spent reaching the medium return; training stops there if not reached. */
  mediumMaxSteps: z.number().int().positive(),
  /** Environment steps of the expert's training in all. */
  expertSteps: z.number().int().positive(),
  /** Environment steps between evaluations of the agent. */
  evaluateEvery: z.number().int().positive(),
  /** Deterministic episodes per evaluation. */
  evaluationEpisodes: z.number().int().positive(),
  /** Medium is reached at this fraction of the way from the random to the expert reference return. */
  mediumFraction: z.number().gt(0).lt(1),
  /** SAC's hyperparameters (sizes only differ between presets). */
  sac: sacConfigSchema.partial(),
});

/** Validated {@link collectionSizesSchema}. */
export type CollectionSizes = z.infer<typeof collectionSizesSchema>;

/**
 * Per-preset sizes. `paper` follows D4RL: 1M steps per dataset, SAC with 256-256
 * networks trained up to 1M steps for the expert. `quick` trains a smaller SAC
 * for a few minutes on two cores; `smoke` only checks the plumbing.
 */
export const collectionPresets: Readonly<Record<PresetName, CollectionSizes>> = {
  smoke: {
    datasetSize: 2_000,
    startSteps: 300,
    mediumMaxSteps: 800,
    expertSteps: 1_000,
    evaluateEvery: 400,
    evaluationEpisodes: 1,
    mediumFraction: 1 / 3,
    sac: { hiddenDims: [32, 32], batchSize: 64 },
  },
  quick: {
    datasetSize: 100_000,
    startSteps: 2_000,
    mediumMaxSteps: 25_000,
    expertSteps: 50_000,
    evaluateEvery: 2_500,
    evaluationEpisodes: 2,
    mediumFraction: 1 / 3,
    sac: { hiddenDims: [64, 64], batchSize: 128, learningRate: 1e-3 },
  },
  paper: {
    datasetSize: 1_000_000,
    startSteps: 10_000,
    mediumMaxSteps: 1_000_000,
    expertSteps: 1_000_000,
    evaluateEvery: 10_000,
    evaluationEpisodes: 5,
    mediumFraction: 1 / 3,
    sac: {},
  },
};

/** What {@link collectLevel} is asked for. */
export interface LevelRequest {
  /** Dataset id, e.g. `halfcheetah-medium` (labels errors and metadata). */
  dataset: string;
  /** The level to record. */
  level: D4rlLevel;
  /** Starts a fresh simulator of the dataset's environment. */
  makeEnvironment: () => Promise<RecordingEnvironment>;
  /** Seed of every random choice. */
  seed: number;
  /** Size preset. */
  preset: PresetName;
  /** Steps to record; absent: the preset's size (medium-replay: the whole buffer). */
  size?: number;
  /** Overrides of the preset's sizes (tests). */
  sizes?: Partial<CollectionSizes>;
  /** Called with a fraction in [0, 1] as work proceeds. */
  onProgress?: (fraction: number) => void;
  /** Name of the behaviour agent's environment, for the metadata (e.g. `HalfCheetah-v3`). */
  environmentName?: string;
}

/** Resolves the preset's sizes with overrides, or throws naming the field. */
export function resolveSizes(
  preset: PresetName,
  overrides: Partial<CollectionSizes> = {},
): CollectionSizes {
  const base = collectionPresets[preset];
  if (!base) {
    throw new Error(
      `collect: unknown preset '${preset}'; expected one of ${Object.keys(collectionPresets)}`,
    );
  }
  const parsed = collectionSizesSchema.safeParse({
    ...base,
    ...overrides,
    sac: { ...base.sac, ...overrides.sac },
  });
  if (!parsed.success) throw new Error(`collect sizes: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** An agent's policy as the collector calls it. */
type Policy = (observation: Float32Array, rng: Rng, out: Float32Array) => void;

/** Deterministic evaluation: mean undiscounted return of `episodes` episodes. */
export function evaluatePolicy(
  environment: RecordingEnvironment,
  policy: PolicySnapshot,
  episodes: number,
  rng: Rng,
): number {
  const observation = new Float32Array(environment.spec.observationDim);
  const action = new Float32Array(environment.spec.actionDim);
  let total = 0;
  for (let episode = 0; episode < episodes; episode++) {
    environment.resetInto(rng, observation);
    for (let t = 0; t < environment.spec.maxEpisodeSteps; t++) {
      policy.act(observation, rng, true, action);
      total += environment.stepInto(action, observation);
      if (environment.terminated) break;
    }
  }
  return total / episodes;
}

/** Runs `policy` for `size` steps in episodes of at most `maxEpisodeSteps`, recording each step. */
export function recordRollouts(
  environment: RecordingEnvironment,
  policy: Policy,
  size: number,
  rng: Rng,
  onProgress?: (fraction: number) => void,
): { recorder: StepRecorder; returns: number[] } {
  const { observationDim, actionDim, maxEpisodeSteps } = environment.spec;
  const recorder = new StepRecorder(
    { observationDim, actionDim, nq: environment.nq, nv: environment.nv },
    size,
  );
  const observation = new Float32Array(observationDim);
  const nextObservation = new Float32Array(observationDim);
  const action = new Float32Array(actionDim);
  const qpos = new Float64Array(environment.nq);
  const qvel = new Float64Array(environment.nv);
  const returns: number[] = [];
  let episodeReturn = 0;
  let episodeStep = 0;
  environment.resetInto(rng, observation);
  while (!recorder.full) {
    environment.readState(qpos, qvel);
    policy(observation, rng, action);
    const reward = environment.stepInto(action, nextObservation);
    episodeReturn += reward;
    episodeStep++;
    const terminal = environment.terminated;
    const timeout = !terminal && episodeStep >= maxEpisodeSteps;
    recorder.push(observation, qpos, qvel, action, reward, terminal, timeout, nextObservation);
    if (terminal || timeout) {
      returns.push(episodeReturn);
      episodeReturn = 0;
      episodeStep = 0;
      environment.resetInto(rng, observation);
    } else {
      observation.set(nextObservation);
    }
    if (onProgress && recorder.size % 10_000 === 0) onProgress(recorder.size / size);
  }
  return { recorder, returns };
}

/** A point the behaviour agent's training passed: its policy and the buffer's size then. */
export interface TrainingCheckpoint {
  /** The policy at that point. */
  policy: PolicySnapshot;
  /** Environment steps taken until then (also the replay buffer's size). */
  steps: number;
  /** Mean deterministic evaluation return then. */
  evaluationReturn: number;
}

/** One online SAC run that stops at medium and can go on to expert. */
export class BehaviourTraining {
  /** Sizes and budget. */
  readonly sizes: CollectionSizes;
  /** The replay buffer, in D4RL's layout; its first `medium.steps` rows make medium-replay. */
  readonly buffer: StepRecorder;
  /** Evaluation returns seen, as `[steps, return]` pairs. */
  readonly curve: [number, number][] = [];
  /** Where medium was reached (or the medium budget ran out). */
  medium?: TrainingCheckpoint;
  /** The fully trained policy. */
  expert?: TrainingCheckpoint;
  readonly #environment: RecordingEnvironment;
  readonly #evaluationEnvironment: RecordingEnvironment;
  readonly #agent: Sac;
  readonly #rng: Rng;
  readonly #evaluationRng: Rng;
  readonly #batch: SacBatch;
  readonly #mediumReturn: number;
  #observation: Float32Array;
  #episodeStep = 0;

  /** Sets up the agent and buffer; {@link advanceTo} trains. */
  constructor(
    environment: RecordingEnvironment,
    evaluationEnvironment: RecordingEnvironment,
    sizes: CollectionSizes,
    seed: number,
  ) {
    this.sizes = sizes;
    this.#environment = environment;
    this.#evaluationEnvironment = evaluationEnvironment;
    const { observationDim, actionDim, scoreReference } = environment.spec;
    this.#agent = new Sac(observationDim, actionDim, deriveSeed(seed, "sac"), sizes.sac);
    this.#rng = new Rng(deriveSeed(seed, "behaviour-training"));
    this.#evaluationRng = new Rng(deriveSeed(seed, "behaviour-evaluation"));
    this.buffer = new StepRecorder(
      { observationDim, actionDim, nq: environment.nq, nv: environment.nv },
      Math.max(sizes.expertSteps, sizes.mediumMaxSteps),
    );
    const batchSize = this.#agent.config.batchSize;
    this.#batch = {
      observations: new Float32Array(batchSize * observationDim),
      actions: new Float32Array(batchSize * actionDim),
      rewards: new Float32Array(batchSize),
      nextObservations: new Float32Array(batchSize * observationDim),
      dones: new Float32Array(batchSize),
    };
    this.#mediumReturn = scoreReference.min +
      sizes.mediumFraction * (scoreReference.max - scoreReference.min);
    this.#observation = new Float32Array(observationDim);
    environment.resetInto(this.#rng, this.#observation);
  }

  /** The return at which the agent counts as medium. */
  get mediumReturn(): number {
    return this.#mediumReturn;
  }

  /**
   * Trains until `goal` is reached: medium (the medium return, or the medium
   * budget spent) or expert (the expert budget spent).
   */
  advanceTo(
    goal: "medium" | "expert",
    onProgress?: (fraction: number) => void,
  ): TrainingCheckpoint {
    const began = performance.now();
    try {
      return this.#advance(goal, onProgress);
    } finally {
      this.trainingSeconds += (performance.now() - began) / 1000;
    }
  }

  /** Wall-clock seconds spent training so far. */
  trainingSeconds = 0;

  #advance(goal: "medium" | "expert", onProgress?: (fraction: number) => void): TrainingCheckpoint {
    const existing = goal === "medium" ? this.medium : this.expert;
    if (existing) return existing;
    const sizes = this.sizes;
    const budget = goal === "medium" ? sizes.mediumMaxSteps : sizes.expertSteps;
    const start = this.buffer.size;
    const { observationDim, actionDim, maxEpisodeSteps } = this.#environment.spec;
    const environment = this.#environment;
    const action = new Float32Array(actionDim);
    const nextObservation = new Float32Array(observationDim);
    const qpos = new Float64Array(environment.nq);
    const qvel = new Float64Array(environment.nv);
    let policy = this.#agent.snapshot();
    while (this.buffer.size < budget) {
      const step = this.buffer.size;
      if (step < sizes.startSteps) {
        for (let i = 0; i < actionDim; i++) action[i] = this.#rng.range(-1, 1);
      } else {
        policy.act(this.#observation, this.#rng, false, action);
      }
      environment.readState(qpos, qvel);
      const reward = environment.stepInto(action, nextObservation);
      this.#episodeStep++;
      const terminal = environment.terminated;
      const timeout = !terminal && this.#episodeStep >= maxEpisodeSteps;
      this.buffer.push(
        this.#observation,
        qpos,
        qvel,
        action,
        reward,
        terminal,
        timeout,
        nextObservation,
      );
      if (terminal || timeout) {
        this.#episodeStep = 0;
        environment.resetInto(this.#rng, this.#observation);
      } else {
        this.#observation.set(nextObservation);
      }
      if (this.buffer.size > sizes.startSteps) {
        this.buffer.sample(this.#rng, this.#batch);
        this.#agent.update(this.#batch);
        policy = this.#agent.snapshot();
      }
      const steps = this.buffer.size;
      if (steps % sizes.evaluateEvery === 0 || steps === budget) {
        const evaluationReturn = evaluatePolicy(
          this.#evaluationEnvironment,
          policy,
          sizes.evaluationEpisodes,
          this.#evaluationRng,
        );
        this.curve.push([steps, evaluationReturn]);
        onProgress?.((steps - start) / (budget - start));
        if (
          !this.medium && (evaluationReturn >= this.#mediumReturn || steps >= sizes.mediumMaxSteps)
        ) {
          this.medium = { policy, steps, evaluationReturn };
          if (goal === "medium") return this.medium;
        }
      }
    }
    const last = this.curve.at(-1)!;
    const checkpoint = { policy, steps: this.buffer.size, evaluationReturn: last[1] };
    if (goal === "expert") this.expert = checkpoint;
    return checkpoint;
  }

  /** Frees the agent and both simulators. */
  dispose(): void {
    this.#agent.dispose();
    this.#environment.close();
    this.#evaluationEnvironment.close();
  }
}

/** Training runs shared by the levels of one (dataset family, preset, seed, sizes) in this process. */
const trainings = new Map<string, Promise<BehaviourTraining>>();

async function behaviourTraining(
  request: LevelRequest,
  sizes: CollectionSizes,
): Promise<BehaviourTraining> {
  const family = request.dataset.slice(0, request.dataset.length - request.level.length);
  const key = JSON.stringify([family, request.preset, request.seed, sizes]);
  let training = trainings.get(key);
  if (!training) {
    training = (async () =>
      new BehaviourTraining(
        await request.makeEnvironment(),
        await request.makeEnvironment(),
        sizes,
        request.seed,
      ))();
    trainings.set(key, training);
  }
  return await training;
}

/**
 * The randomly initialised policy: the behaviour agent's actor before any
 * training (the same seed as {@link BehaviourTraining} uses), made without
 * allocating the agent's replay buffer.
 */
async function initialPolicy(
  request: LevelRequest,
  sizes: CollectionSizes,
): Promise<PolicySnapshot> {
  const environment = await request.makeEnvironment();
  const { observationDim, actionDim } = environment.spec;
  environment.close();
  const agent = new Sac(observationDim, actionDim, deriveSeed(request.seed, "sac"), sizes.sac);
  const policy = agent.snapshot();
  agent.dispose();
  return policy;
}

/** Frees every behaviour agent kept for later levels in this process. */
export async function releaseBehaviourTrainings(): Promise<void> {
  const pending = [...trainings.values()];
  trainings.clear();
  for (const training of pending) (await training).dispose();
}

/** Records one level of a dataset family as a D4RL-layout dataset. */
export async function collectLevel(request: LevelRequest): Promise<D4rlDataset> {
  // Collection trains SAC, so it needs a compute backend even when called
  // from a process (the CLI's `collect`, the grid's main process) that has
  // not set one up.
  await ensureCompute();
  const sizes = resolveSizes(request.preset, request.sizes);
  const size = request.size ?? sizes.datasetSize;
  if (!Number.isInteger(size) || size < 1) {
    throw new Error(`collect '${request.dataset}': size must be a positive integer, got ${size}`);
  }
  const progress = request.onProgress ?? (() => {});
  const rolloutRng = new Rng(deriveSeed(request.seed, `rollout-${request.level}`));
  let training: BehaviourTraining | undefined;
  let checkpoint: TrainingCheckpoint | undefined;
  let policy: PolicySnapshot;
  if (request.level === "random") {
    policy = await initialPolicy(request, sizes);
  } else {
    training = await behaviourTraining(request, sizes);
    const goal = request.level === "expert" ? "expert" : "medium";
    checkpoint = training.advanceTo(goal, (fraction) => progress(0.8 * fraction));
    policy = checkpoint.policy;
  }
  const curve = training?.curve.filter(([steps]) => steps <= checkpoint!.steps) ?? [];
  const started = performance.now();
  const environment = await request.makeEnvironment();
  let dataset: D4rlDataset;
  let returns: number[];
  try {
    const { scoreReference } = environment.spec;
    const metadataBase = {
      algorithm: "SAC",
      level: request.level,
      dataset: request.dataset,
      environment: request.environmentName ?? environment.spec.id,
      preset: request.preset,
      seed: request.seed,
      policy_training_steps: checkpoint?.steps ?? 0,
      policy_evaluation_return: checkpoint?.evaluationReturn ?? null,
      medium_target_return: scoreReference.min +
        sizes.mediumFraction * (scoreReference.max - scoreReference.min),
      training_seconds: training?.trainingSeconds ?? 0,
      evaluation_steps: curve.map(([steps]) => steps),
      evaluation_returns: curve.map(([, value]) => value),
    };
    if (request.level === "medium-replay") {
      const rows = Math.min(request.size ?? Infinity, checkpoint!.steps);
      returns = episodeReturns(training!.buffer, rows);
      dataset = training!.buffer.toDataset({
        ...metadataBase,
        ...returnSummary(returns, environment.spec),
      }, rows);
    } else {
      const recorded = recordRollouts(
        environment,
        (observation, rng, out) => policy.act(observation, rng, false, out),
        size,
        rolloutRng,
        (fraction) => progress(request.level === "random" ? fraction : 0.8 + 0.2 * fraction),
      );
      returns = recorded.returns;
      dataset = recorded.recorder.toDataset({
        ...metadataBase,
        ...returnSummary(returns, environment.spec),
      });
    }
  } finally {
    environment.close();
  }
  dataset.metadata.recording_seconds = (performance.now() - started) / 1000;
  progress(1);
  return dataset;
}

/** Returns of the episodes that end within the first `rows` rows. */
function episodeReturns(recorder: StepRecorder, rows: number): number[] {
  const returns: number[] = [];
  let total = 0;
  for (let row = 0; row < rows; row++) {
    total += recorder.rewards[row];
    if (recorder.terminals[row] || recorder.timeouts[row]) {
      returns.push(total);
      total = 0;
    }
  }
  return returns;
}

function returnSummary(returns: number[], spec: EnvironmentSpec): Record<string, number | null> {
  if (returns.length === 0) {
    return { episodes: 0, return_mean: null, normalized_score_mean: null };
  }
  const mean = returns.reduce((sum, value) => sum + value, 0) / returns.length;
  return {
    episodes: returns.length,
    return_mean: mean,
    return_min: Math.min(...returns),
    return_max: Math.max(...returns),
    normalized_score_mean: normalizedScore(mean, spec.scoreReference),
  };
}
