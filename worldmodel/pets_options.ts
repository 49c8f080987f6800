/**
 * PETS's settings in one place: the options schema (whose defaults are the
 * MOPO / OfflineRL-Kit values and nowhere else), the per-preset sizes, and the
 * ensemble options both fitted networks are built from.
 *
 * @module
 */
import { z } from "zod";
import type { PresetName } from "../core/contracts/common.ts";
import { formatOptionErrors, UserError } from "../core/errors.ts";
import { type EnsembleOptions, ensembleOptionsSchema, parseEnsembleOptions } from "./ensemble.ts";

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

const ensemble = ensembleOptionsSchema.shape;

/**
 * PETS's options; defaults are MOPO's / OfflineRL-Kit's values. The network
 * settings are the ensemble's own fields (their defaults stated once, in
 * `ensemble.ts`); the rollout settings are PETS's.
 */
export const petsOptionsSchema = z
  .strictObject({
    /** Ensemble members (PETS §4.1: a bootstrap ensemble of probabilistic networks; MOPO uses 7). */
    ensembleSize: ensemble.ensembleSize,
    /** Elites used in rollouts: the members with the lowest held-out error (MOPO keeps 5). */
    eliteCount: ensemble.eliteCount,
    /** L2 coefficients per layer (hidden layers, then output), growing with depth. */
    weightDecays: ensemble.weightDecays,
    /** Adam learning rate of the ensemble and the behaviour policy. */
    learningRate: ensemble.learningRate,
    /** Rows per member per gradient step. */
    batchSize: ensemble.batchSize,
    /** Held-out fraction for early stopping and elite selection. */
    holdoutFraction: ensemble.holdoutFraction,
    /** Upper limit on held-out rows. */
    maxHoldout: ensemble.maxHoldout,
    /** Penalty coefficient on the learned log-variance bounds (PETS's bounded variance). */
    logVarianceBoundPenalty: ensemble.logVarianceBoundPenalty,
    /** Epochs without held-out progress before stopping. */
    patience: ensemble.patience,
    /** Model steps per rollout (MOPO's h; 5 for HalfCheetah). */
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

/** PETS's options, validated. */
export type PetsOptions = z.infer<typeof petsOptionsSchema>;

/** Options with the preset's sizes filled in. */
export interface ResolvedPetsOptions extends Omit<PetsOptions, "sizes"> {
  /** Sizes in effect. */
  sizes: PetsSizes;
}

/** Validates a user's options (absent: all defaults); errors name each bad key as `pets.<key>`. */
export function parsePetsOptions(options: unknown): PetsOptions {
  const parsed = petsOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    throw new UserError(formatOptionErrors("pets", parsed.error));
  }
  return parsed.data;
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

/** The ensemble options of the dynamics model `(s, a) ↦ (Δs, r)`. */
export function dynamicsEnsembleOptions(options: ResolvedPetsOptions): EnsembleOptions {
  return ensembleOptionsOf(options, options.sizes.hiddenSizes, options.weightDecays);
}

/**
 * The ensemble options of the behaviour-cloned policy: its own widths, and
 * weight decays running linearly from the dynamics' first to their last, one
 * per layer of its (usually shallower) network.
 */
export function behaviorEnsembleOptions(options: ResolvedPetsOptions): EnsembleOptions {
  const depth = options.sizes.behaviorHiddenSizes.length;
  const first = options.weightDecays[0];
  const last = options.weightDecays[options.weightDecays.length - 1];
  const decays = Array.from(
    { length: depth + 1 },
    (_, layer) => first + ((last - first) * layer) / depth,
  );
  return ensembleOptionsOf(options, options.sizes.behaviorHiddenSizes, decays);
}

function ensembleOptionsOf(
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
