/**
 * The options of the PGD generator and their defaults: this schema is the one
 * place a default is written. The sampler's and the trainer's settings
 * (`diffusion/settings.ts`), the paper's Table 4 sampler and the reference
 * training options all derive from it. Defaults are the paper's; where the
 * authors' reference code differs, the key's comment says which one is used.
 *
 * @module
 */
import { formatOptionErrors, UserError } from "../core/errors.ts";
import { z } from "zod";
import type { PresetName } from "../core/contracts/common.ts";
import { diffusionPresets, type DiffusionSizes } from "./presets.ts";

const positiveInt = z.number().int().positive();

/** Options of the generator (and of both diffusion sources), with their defaults. */
export const diffusionOptionsSchema = z.strictObject({
  // Policy guidance (Section 4.2, eq. 12–14).
  /** λ: 0 is unguided diffusion; the paper's results use 1. */
  guidanceStrength: z.number().min(0).default(1),
  /** `cosine` (reference code, default), `eq14` (paper's equation) or `constant`. */
  guidanceSchedule: z.enum(["cosine", "eq14", "constant"]).default("cosine"),
  /** β of the cosine schedule. */
  cosineWeight: z.number().min(0).default(0.3),
  /** Gradient at the denoiser's clean estimate (paper) rather than at the noisy sample (code's default). */
  guideDenoisedEstimate: z.boolean().default(true),
  /** Unit-normalise each window's guidance gradient (paper). */
  normalizeGuidance: z.boolean().default(true),
  /**
   * Guidance is added once per sampler step, so a sampler shorter than
   * Table 4's 256 steps pushes less in total. `table4` scales λ by
   * 256 / steps so the total push matches the paper's sampler; `none` keeps
   * λ as given (the reference code's behaviour at any step count).
   */
  guidanceStepScaling: z.enum(["none", "table4"]).default("none"),
  /**
   * Beyond the paper (its suggested future work): λ of guidance toward a
   * behaviour-cloned policy of the dataset in generation 0, which has no
   * agent policy yet; 0 leaves generation 0 unguided (the paper).
   */
  behaviorGuidance: z.number().min(0).default(0),
  // Sampler (Table 4).
  solver: z.enum(["heun", "euler"]).default("heun"),
  sigmaMax: z.number().positive().default(80),
  sigmaMin: z.number().positive().default(0.002),
  rho: z.number().positive().default(7),
  churn: z.number().min(0).default(80),
  churnSigmaMin: z.number().min(0).default(0.05),
  churnSigmaMax: z.number().min(0).default(50),
  churnNoise: z.number().positive().default(1.003),
  // Generation schedule (Table 2, Figure 4).
  /** `periodic` (Table 2) or `continuous` (Figure 4). */
  generationMode: z.enum(["periodic", "continuous"]).default("periodic"),
  /** Continuous mode: generations kept in the replay buffer. */
  replayGenerations: positiveInt.default(10),
  /** Fraction of real transitions mixed into the data (the code: 16 of 256; paper: none). */
  realFraction: z.number().min(0).max(0.99).default(0),
  // Windows and training (Table 3 and the reference code).
  windowStride: positiveInt.default(8),
  /**
   * Beyond the reference code: also keep each episode's last valid window. With stride 8 the
   * reference's windows never hold an episode's last rows, where Maze2d's goal states lie.
   */
  windowEpisodeTails: z.boolean().default(false),
  /**
   * How a window row stores actions: `atanh` (the authors' code: `atanh(clip(a, ±actionClip))`,
   * samples squashed back by `tanh`) or `none` (`a` itself, samples clipped to [−1, 1]).
   */
  actionTransform: z.enum(["atanh", "none"]).default("atanh"),
  /** `atanh` only: the clip before `atanh` (authors: 0.999, ±3.8 after it; 0.99 gives ±2.6). */
  actionClip: z.number().gt(0).lt(1).default(0.999),
  /**
   * Beyond the paper: rows also hold `Δ = s_{t+1} − s_t`, and a transition's `s′` is `s + Δ`
   * rather than the next row's state, so one-step dynamics are modelled directly.
   */
  stateDifferences: z.boolean().default(false),
  /**
   * Beyond the paper: where a transition's `s′` comes from. `denoiser`: the window's next row
   * (the paper). `dynamics-ensemble`: the expected next state of PETS's probabilistic ensemble,
   * fitted on the dataset as the `pets` source fits it (MOPO's defaults, the same cache), from
   * the sampled `(s, a)`; the terminal flag from the environment's rule, the reward the denoiser's.
   */
  nextStates: z.enum(["denoiser", "dynamics-ensemble"]).default("denoiser"),
  /**
   * With `nextStates: "dynamics-ensemble"` only: MOPO's uncertainty penalty λ, each reward
   * lowered by `λ·max_k ‖σ_k(s, a)‖` of the ensemble (0: rewards are the denoiser's).
   */
  nextStatePenalty: z.number().min(0).default(0),
  /**
   * GroupNorm statistics per time step, as the authors' U-Net computes them (under `vmap`);
   * false: per window, over all its time steps (the usual U-Net, and the default here).
   */
  groupNormPerStep: z.boolean().default(false),
  validationFraction: z.number().gt(0).lt(1).default(0.05),
  learningRate: z.number().positive().default(2e-3),
  learningRateSchedule: z.enum(["warmup-cosine", "cosine", "constant"]).default("warmup-cosine"),
  warmupFraction: z.number().min(0).lt(1).default(0.1),
  warmupStartFactor: z.number().min(0).max(1).default(0.1),
  emaDecay: z.number().min(0).lt(1).default(0.995),
  logSigmaMean: z.number().default(-1.2),
  logSigmaStd: z.number().positive().default(1.2),
  // Per-preset sizes (`diffusion/presets.ts`), overridable one by one.
  features: positiveInt.optional(),
  numBlocks: positiveInt.optional(),
  trajectoryLength: positiveInt.optional(),
  batchSize: positiveInt.optional(),
  epochs: z.number().positive().optional(),
  trainingSteps: positiveInt.optional(),
  emaEvery: positiveInt.optional(),
  samplerSteps: positiveInt.optional(),
  windowsPerGeneration: positiveInt.optional(),
  periodicGenerations: positiveInt.optional(),
  continuousGenerations: positiveInt.optional(),
  samplingBatchSize: positiveInt.optional(),
});

/** Parsed options of the generator. */
export type DiffusionOptions = z.infer<typeof diffusionOptionsSchema>;

/** Every option at its default: what a source made with no options runs with. */
export const defaultDiffusionOptions: DiffusionOptions = diffusionOptionsSchema.parse({});

/** Parses options; errors name the source and the offending key. */
export function parseDiffusionOptions(sourceName: string, options: unknown): DiffusionOptions {
  const result = diffusionOptionsSchema.safeParse(options ?? {});
  if (!result.success) {
    throw new UserError(formatOptionErrors(sourceName, result.error));
  }
  if (result.data.nextStatePenalty > 0 && result.data.nextStates !== "dynamics-ensemble") {
    const issue = {
      code: "custom" as const,
      path: ["nextStatePenalty"],
      message: `applies only with nextStates "dynamics-ensemble"`,
    };
    throw new UserError(formatOptionErrors(sourceName, new z.ZodError([issue])));
  }
  return result.data;
}

/**
 * The preset's sizes with any per-key overrides of `options`. Setting
 * `epochs` without `trainingSteps` trains for epochs, even where the preset
 * caps the steps.
 */
export function resolveSizes(options: DiffusionOptions, preset: PresetName): DiffusionSizes {
  const base = diffusionPresets[preset];
  const sizes = { ...base };
  for (const key of Object.keys(base) as (keyof DiffusionSizes)[]) {
    const value = options[key];
    if (value !== undefined) sizes[key] = value;
  }
  if (options.trainingSteps === undefined && options.epochs !== undefined) {
    delete sizes.trainingSteps;
  }
  return sizes;
}

/** Generations in a run: Table 2's periodic schedule or Figure 4's continuous one. */
export function generationCount(options: DiffusionOptions, sizes: DiffusionSizes): number {
  return options.generationMode === "periodic"
    ? sizes.periodicGenerations
    : sizes.continuousGenerations;
}

/** Windows per generation: continuous mode cuts the sample size so the total matches periodic mode's. */
export function windowsPerGeneration(options: DiffusionOptions, sizes: DiffusionSizes): number {
  if (options.generationMode === "periodic") return sizes.windowsPerGeneration;
  const total = sizes.windowsPerGeneration * sizes.periodicGenerations;
  return Math.max(1, Math.round(total / sizes.continuousGenerations));
}
