/**
 * The `pets` data source: a MOPO-style probabilistic ensemble world model
 * (PETS, Chua et al. 2018; OfflineRL-Kit's defaults) fitted on the offline
 * dataset, and truncated rollouts of the target policy from dataset states.
 *
 * - `prepare` fits the dynamics ensemble `(s, a) ↦ (Δs, r)` and a
 *   behaviour-cloned Gaussian policy, or loads both from the cache (keyed by
 *   a hash of the dataset, the options, the preset and the seed).
 * - `generate` samples `rolloutBatchSize` start states from the dataset and
 *   rolls a policy out for `rolloutLength` steps, each step from a random
 *   elite. Generation 0 has no target policy yet and rolls out the
 *   behaviour-cloned policy (the dataset's own behaviour); later generations
 *   roll out the agent's target policy, sampling `a ~ N(μ(s), σ(s))` clipped
 *   to [−1, 1]. The reward is the model's, minus MOPO's penalty
 *   `λ·max_k ‖σ_k(s, a)‖` when `penaltyCoefficient` > 0. `done` follows the
 *   environment's termination rule (Hopper, Walker2d); HalfCheetah and Maze2d
 *   never terminate.
 * - Rollouts are kept in a first-in-first-out buffer of `retainedTransitions`,
 *   and each generation's training set is that buffer plus real transitions
 *   making up `realFraction` of it (MOPO's real ratio 0.05).
 *
 * @module
 */
import { z } from "zod";
import type { DataSource, SourceContext } from "../../core/contracts/source.ts";
import type { PresetName } from "../../core/contracts/common.ts";
import { formatZodIssues, UserError } from "../../core/errors.ts";
import { writeFileAtomic } from "../../core/files.ts";
import { deriveSeed, Rng } from "../../core/rng.ts";
import { concatTransitions } from "../../core/transitions.ts";
import type { Transitions } from "../../core/types.ts";
import { toTransitions } from "../../data/d4rl.ts";
import { BehaviorPolicy } from "../../worldmodel/behavior.ts";
import {
  contentKey,
  decodeEnsembles,
  encodeEnsembles,
  readIfExists,
} from "../../worldmodel/cache.ts";
import { DynamicsModel, terminationRule } from "../../worldmodel/dynamics.ts";
import { type EnsembleOptions, parseEnsembleOptions } from "../../worldmodel/ensemble.ts";
import { policySampler, rollout, rolloutTransitions } from "../../worldmodel/rollout.ts";

/** Sizes that a preset sets and a user may override. */
export const petsSizesSchema = z.strictObject({
  /** Hidden widths of each ensemble member. */
  hiddenSizes: z.array(z.number().int().positive()).min(1),
  /** Upper limit on ensemble training epochs (null: until early stopping). */
  maxEpochs: z.number().int().positive().nullable(),
  /** Transitions the models are fitted on, drawn at random (null: all). */
  maxTrainingTransitions: z.number().int().positive().nullable(),
  /** Hidden widths of the behaviour-cloned policy. */
  behaviorHiddenSizes: z.array(z.number().int().positive()).min(1),
  /** Start states per generation (MOPO's rollout batch). */
  rolloutBatchSize: z.number().int().positive(),
  /** Synthetic transitions kept across generations, oldest dropped first. */
  retainedTransitions: z.number().int().positive(),
  /** Agent steps between generations (MOPO's rollout frequency); 0: one generation. */
  regenerateEvery: z.number().int().nonnegative(),
});

/** Sizes that a preset sets. */
export type PetsSizes = z.infer<typeof petsSizesSchema>;

/** Per-preset sizes; `paper` is OfflineRL-Kit's MOPO setting. */
export const petsPresets: Record<PresetName, PetsSizes> = {
  smoke: {
    hiddenSizes: [32, 32, 32, 32],
    maxEpochs: 20,
    maxTrainingTransitions: 2000,
    behaviorHiddenSizes: [32, 32],
    rolloutBatchSize: 256,
    retainedTransitions: 256 * 5 * 2,
    regenerateEvery: 0,
  },
  quick: {
    hiddenSizes: [200, 200, 200, 200],
    maxEpochs: 8,
    maxTrainingTransitions: 20_000,
    behaviorHiddenSizes: [200, 200],
    rolloutBatchSize: 2_500,
    retainedTransitions: 2_500 * 5 * 5,
    regenerateEvery: 2_500,
  },
  paper: {
    hiddenSizes: [200, 200, 200, 200],
    maxEpochs: null,
    maxTrainingTransitions: null,
    behaviorHiddenSizes: [200, 200],
    rolloutBatchSize: 50_000,
    retainedTransitions: 50_000 * 5 * 5,
    regenerateEvery: 1_000,
  },
};

/** Options of the `pets` source; defaults are MOPO's / OfflineRL-Kit's values. */
export const petsOptionsSchema = z
  .strictObject({
    /** Ensemble members. */
    ensembleSize: z.number().int().positive().default(7),
    /** Elites used in rollouts. */
    eliteCount: z.number().int().positive().default(5),
    /** L2 coefficients per layer (hidden layers, then output), growing with depth. */
    weightDecays: z.array(z.number().nonnegative()).default([2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4]),
    /** Adam learning rate of the ensemble and the behaviour policy. */
    learningRate: z.number().positive().default(1e-3),
    /** Rows per member per gradient step. */
    batchSize: z.number().int().positive().default(256),
    /** Held-out fraction for early stopping and elite selection. */
    holdoutFraction: z.number().gt(0).lt(1).default(0.2),
    /** Upper limit on held-out rows. */
    maxHoldout: z.number().int().positive().default(1000),
    /** Penalty coefficient on the learned log-variance bounds. */
    logVarianceBoundPenalty: z.number().nonnegative().default(0.01),
    /** Epochs without held-out progress before stopping. */
    patience: z.number().int().positive().default(5),
    /** Model steps per rollout (MOPO's k; 5 for HalfCheetah). */
    rolloutLength: z.number().int().positive().default(5),
    /** MOPO's uncertainty penalty λ; 0 (off) by default. */
    penaltyCoefficient: z.number().nonnegative().default(0),
    /** Fraction of each training set that is real data (MOPO's real ratio). */
    realFraction: z.number().min(0).lt(1).default(0.05),
    /** Use each elite's mean instead of sampling its Gaussian. */
    deterministic: z.boolean().default(false),
    /** Preset sizes to override, e.g. `{ "rolloutBatchSize": 1000 }`. */
    sizes: petsSizesSchema.partial().default({}),
  })
  .refine((o) => o.eliteCount <= o.ensembleSize, {
    message: "eliteCount must not exceed ensembleSize",
    path: ["eliteCount"],
  });

/** Options of the `pets` source, validated. */
export type PetsOptions = z.infer<typeof petsOptionsSchema>;

/** Options with the preset's sizes filled in. */
export interface ResolvedPetsOptions extends Omit<PetsOptions, "sizes"> {
  /** Sizes in effect. */
  sizes: PetsSizes;
}

/** Fills in a preset's sizes, then checks that the layer settings agree. */
export function resolvePetsOptions(options: PetsOptions, preset: PresetName): ResolvedPetsOptions {
  const sizes = { ...petsPresets[preset], ...options.sizes };
  if (options.weightDecays.length !== sizes.hiddenSizes.length + 1) {
    throw new UserError(
      `pets.weightDecays: ${options.weightDecays.length} entries, expected one per layer ` +
        `(${sizes.hiddenSizes.length + 1} for hiddenSizes ${JSON.stringify(sizes.hiddenSizes)})`,
    );
  }
  return { ...options, sizes };
}

/** The ensemble options of the dynamics model (and, with its own widths, the behaviour policy). */
export function ensembleOptionsOf(
  options: ResolvedPetsOptions,
  hiddenSizes: number[],
  weightDecays: number[],
): EnsembleOptions {
  return parseEnsembleOptions(
    {
      ensembleSize: options.ensembleSize,
      eliteCount: options.eliteCount,
      hiddenSizes,
      weightDecays,
      learningRate: options.learningRate,
      batchSize: options.batchSize,
      holdoutFraction: options.holdoutFraction,
      maxHoldout: options.maxHoldout,
      logVarianceBoundPenalty: options.logVarianceBoundPenalty,
      patience: options.patience,
      maxEpochs: options.sizes.maxEpochs,
    },
    "pets",
  );
}

/** Weight decays for a behaviour network of a given depth: the first and last of the dynamics'. */
function behaviorDecays(options: ResolvedPetsOptions): number[] {
  const depth = options.sizes.behaviorHiddenSizes.length;
  const first = options.weightDecays[0];
  const last = options.weightDecays[options.weightDecays.length - 1];
  return Array.from({ length: depth + 1 }, (_, layer) => first + ((last - first) * layer) / depth);
}

/** A random subset of transitions (all of them when `limit` is null or not smaller). */
function subsetTransitions(transitions: Transitions, limit: number | null, rng: Rng): Transitions {
  if (limit === null || limit >= transitions.size) return transitions;
  const rows = rng.shuffle(Array.from({ length: transitions.size }, (_, i) => i)).slice(0, limit);
  return takeRows(transitions, rows);
}

function takeRows(transitions: Transitions, rows: ArrayLike<number>): Transitions {
  const { observationDim: od, actionDim: ad } = transitions;
  const size = rows.length;
  const out: Transitions = {
    size,
    observationDim: od,
    actionDim: ad,
    observations: new Float32Array(size * od),
    actions: new Float32Array(size * ad),
    rewards: new Float32Array(size),
    nextObservations: new Float32Array(size * od),
    dones: new Float32Array(size),
  };
  for (let i = 0; i < size; i++) {
    const row = rows[i];
    out.observations.set(transitions.observations.subarray(row * od, (row + 1) * od), i * od);
    out.nextObservations.set(
      transitions.nextObservations.subarray(row * od, (row + 1) * od),
      i * od,
    );
    out.actions.set(transitions.actions.subarray(row * ad, (row + 1) * ad), i * ad);
    out.rewards[i] = transitions.rewards[row];
    out.dones[i] = transitions.dones[row];
  }
  return out;
}

/** The fitted models of one (dataset, options, preset, seed). */
export interface PetsModels {
  /** The dynamics ensemble. */
  dynamics: DynamicsModel;
  /** The behaviour-cloned policy of generation 0. */
  behavior: BehaviorPolicy;
}

/**
 * Fits (or loads from `context.cacheDir`) the dynamics ensemble and the
 * behaviour policy for a source context. The analysis calls this directly.
 */
export async function preparePetsModels(
  context: SourceContext,
  options: ResolvedPetsOptions,
): Promise<PetsModels> {
  const { dataset, reporter } = context;
  const dynamicsOptions = ensembleOptionsOf(
    options,
    options.sizes.hiddenSizes,
    options.weightDecays,
  );
  const behaviorOptions = ensembleOptionsOf(
    options,
    options.sizes.behaviorHiddenSizes,
    behaviorDecays(options),
  );
  // Only what changes the fitted models enters the key, so rollout settings share one fit.
  const key = await contentKey(dataset, {
    model: "pets",
    datasetId: context.datasetId,
    dynamicsOptions,
    behaviorOptions,
    maxTrainingTransitions: options.sizes.maxTrainingTransitions,
    preset: context.preset,
    seed: context.seed,
  });
  const path = `${context.cacheDir}/pets/${key}.bin`;
  const saved = await readIfExists(path);
  if (saved) {
    const models = decodeEnsembles(saved, path);
    if (!models.dynamics || !models.behavior) {
      throw new Error(`cannot read saved ensembles '${path}': missing 'dynamics' or 'behavior'`);
    }
    reporter.log(`pets: loaded the ensemble from ${path}`);
    return {
      dynamics: new DynamicsModel(models.dynamics, dataset.observationDim, dataset.actionDim),
      behavior: new BehaviorPolicy(models.behavior),
    };
  }
  const rng = new Rng(deriveSeed(context.seed, "pets-fit"));
  const transitions = subsetTransitions(
    toTransitions(dataset),
    options.sizes.maxTrainingTransitions,
    rng,
  );
  const epochCap = options.sizes.maxEpochs;
  const { model: dynamics, report } = DynamicsModel.fit(
    transitions,
    dynamicsOptions,
    deriveSeed(context.seed, "pets-dynamics"),
    (epoch) => {
      if (epochCap !== null) reporter.progress("pets: fit ensemble", epoch / epochCap);
    },
  );
  reporter.log(
    `pets: ensemble fitted in ${report.epochs} epochs on ${transitions.size} transitions; ` +
      `held-out MSE of elites ${
        report.elites.map((k) => report.holdoutMse[k].toFixed(4)).join(", ")
      }`,
  );
  const { policy: behavior } = BehaviorPolicy.fit(
    transitions,
    behaviorOptions,
    deriveSeed(context.seed, "pets-behavior"),
  );
  await writeFileAtomic(
    path,
    encodeEnsembles({ dynamics: dynamics.ensemble, behavior: behavior.network }),
  );
  return { dynamics, behavior };
}

/** The `pets` data source: model rollouts of the target policy in a learned ensemble. */
export function pets(options: unknown = {}): DataSource {
  const parsed = petsOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    throw new UserError(`invalid options:\n${formatZodIssues("pets", parsed.error)}`);
  }
  const petsOptions = parsed.data;
  let models: PetsModels | undefined;
  let realTransitions: Transitions | undefined;
  let buffer: Transitions[] = [];

  const resolved = (context: SourceContext) => resolvePetsOptions(petsOptions, context.preset);

  return {
    name: "pets",
    options: petsOptions as unknown as Record<string, unknown>,
    regenerateEvery(context) {
      return resolved(context).sizes.regenerateEvery;
    },
    async prepare(context) {
      models ??= await preparePetsModels(context, resolved(context));
    },
    async generate(context, request) {
      const settings = resolved(context);
      models ??= await preparePetsModels(context, settings);
      realTransitions ??= toTransitions(context.dataset);
      const rng = new Rng(deriveSeed(context.seed, `pets-generate-${request.generation}`));
      const count = settings.sizes.rolloutBatchSize;
      const starts = new Float32Array(count * realTransitions.observationDim);
      const od = realTransitions.observationDim;
      for (let i = 0; i < count; i++) {
        const row = rng.int(realTransitions.size);
        starts.set(realTransitions.observations.subarray(row * od, (row + 1) * od), i * od);
      }
      const policy = request.policy ?? models.behavior;
      const trajectories = rollout(models.dynamics, policySampler(policy), starts, count, {
        length: settings.rolloutLength,
        penaltyCoefficient: settings.penaltyCoefficient,
        isTerminal: terminationRule(context.datasetId),
        rng,
        deterministic: settings.deterministic,
      });
      buffer.push(rolloutTransitions(trajectories));
      // First in, first out: drop whole old generations, then trim the oldest kept one.
      let kept = buffer.reduce((sum, part) => sum + part.size, 0);
      while (kept > settings.sizes.retainedTransitions && buffer.length > 1) {
        kept -= buffer[0].size;
        buffer = buffer.slice(1);
      }
      if (kept > settings.sizes.retainedTransitions) {
        const excess = kept - settings.sizes.retainedTransitions;
        const rows = Array.from({ length: buffer[0].size - excess }, (_, i) => i + excess);
        buffer[0] = takeRows(buffer[0], rows);
      }
      const synthetic = concatTransitions(buffer);
      const realCount = Math.round(
        (synthetic.size * settings.realFraction) / (1 - settings.realFraction),
      );
      if (realCount === 0) return synthetic;
      const realRows = new Int32Array(realCount);
      rng.indices(realTransitions.size, realRows);
      return concatTransitions([synthetic, takeRows(realTransitions, realRows)]);
    },
    dispose() {
      models?.dynamics.dispose();
      models?.behavior.dispose();
      models = undefined;
      buffer = [];
    },
  };
}
