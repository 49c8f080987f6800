/**
 * The generator's options as the settings of its parts: the trainer's
 * (Table 3), the EDM sampler's (Table 4) and policy guidance's (Section 4.2,
 * eq. 12–14). The paper's sampler and the reference training options are
 * these adapters applied to the schema's defaults, so no default is written
 * twice.
 *
 * @module
 */
import type { GuidanceOptions } from "./guidance.ts";
import { defaultDiffusionOptions, type DiffusionOptions } from "./options.ts";
import { diffusionPresets, type DiffusionSizes } from "./presets.ts";
import type { SamplerOptions } from "./sampler.ts";
import type { TrainOptions } from "./train.ts";

/**
 * Training settings of the options and sizes for `trainingSteps` steps. Adam's
 * β1, β2 and ε and the validation readings are fixed, not options.
 */
export function trainOptionsOf(
  options: DiffusionOptions,
  sizes: Pick<DiffusionSizes, "batchSize" | "emaEvery">,
  trainingSteps: number,
): TrainOptions {
  // The key order is part of the denoiser cache key's input; keep it.
  return {
    trainingSteps,
    batchSize: sizes.batchSize,
    learningRate: options.learningRate,
    learningRateSchedule: options.learningRateSchedule,
    warmupFraction: options.warmupFraction,
    warmupStartFactor: options.warmupStartFactor,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEpsilon: 1e-8,
    emaDecay: options.emaDecay,
    emaEvery: sizes.emaEvery,
    logSigmaMean: options.logSigmaMean,
    logSigmaStd: options.logSigmaStd,
    validationPoints: 10,
    validationWindows: 512,
  };
}

/** Sampler settings of the options and sizes (Table 4). */
export function samplerOptionsOf(
  options: DiffusionOptions,
  sizes: Pick<DiffusionSizes, "samplerSteps">,
): SamplerOptions {
  return {
    steps: sizes.samplerSteps,
    sigmaMax: options.sigmaMax,
    sigmaMin: options.sigmaMin,
    rho: options.rho,
    churn: options.churn,
    churnSigmaMin: options.churnSigmaMin,
    churnSigmaMax: options.churnSigmaMax,
    churnNoise: options.churnNoise,
    solver: options.solver,
  };
}

/** Sampler steps of Table 4, the reference for {@link DiffusionOptions.guidanceStepScaling}. */
export const table4SamplerSteps = diffusionPresets.paper.samplerSteps;

/**
 * Guidance settings of the options (Section 4.2, eq. 12–14) for a sampler of
 * `sizes.samplerSteps` steps; `strength` (default: the options' λ) is scaled
 * as `guidanceStepScaling` says.
 */
export function guidanceOptionsOf(
  options: DiffusionOptions,
  sizes: Pick<DiffusionSizes, "samplerSteps">,
  strength: number = options.guidanceStrength,
): GuidanceOptions {
  const scale = options.guidanceStepScaling === "table4"
    ? table4SamplerSteps / sizes.samplerSteps
    : 1;
  return {
    strength: strength * scale,
    schedule: options.guidanceSchedule,
    cosineWeight: options.cosineWeight,
    atDenoisedEstimate: options.guideDenoisedEstimate,
    normalize: options.normalizeGuidance,
  };
}

/** Table 4's sampler: the default options at the `paper` preset's 256 steps. */
export const table4Sampler: SamplerOptions = samplerOptionsOf(
  defaultDiffusionOptions,
  diffusionPresets.paper,
);

/**
 * Training options with the reference code's values (the defaults: Adam at
 * 2e-3, warm-up then cosine decay, EMA 0.995 every 10 steps as at the `paper`
 * preset, ln σ ~ N(−1.2, 1.2²)) for the given length and batch size;
 * `overrides` replace any of them.
 */
export function referenceTrainOptions(
  trainingSteps: number,
  batchSize: number,
  overrides: Partial<TrainOptions> = {},
): TrainOptions {
  return {
    ...trainOptionsOf(
      defaultDiffusionOptions,
      { batchSize, emaEvery: diffusionPresets.paper.emaEvery },
      trainingSteps,
    ),
    ...overrides,
  };
}
