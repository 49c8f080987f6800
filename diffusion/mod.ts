/**
 * The PGD generator as a library (paper Sections 3–4, Tables 2–4): presets,
 * options and their defaults, train-or-load of the denoiser, sampling with
 * or without policy guidance, and the generator that turns windows into an
 * agent's training data. The `unguided` and `policy-guided` data sources are
 * thin adapters over {@link DiffusionGenerator}.
 *
 * @module
 */
export { diffusionPresets, type DiffusionSizes } from "./presets.ts";
export {
  defaultDiffusionOptions,
  type DiffusionOptions,
  diffusionOptionsSchema,
  generationCount,
  parseDiffusionOptions,
  resolveSizes,
  windowsPerGeneration,
} from "./options.ts";
export {
  guidanceOptionsOf,
  referenceTrainOptions,
  samplerOptionsOf,
  table4Sampler,
  trainOptionsOf,
} from "./settings.ts";
export { type DenoiserContext, prepareDenoiser, trainOrLoadDenoiser } from "./train_or_load.ts";
export { type DenoiserOrigin, LoadedDenoiser } from "./loaded_denoiser.ts";
export { type Guidance, guidanceFor, sampleWindows } from "./sampling.ts";
export { unguidedWindows, unguidedWindowsPath } from "./unguided_store.ts";
export { GenerationReplay } from "./training_data.ts";
export { DiffusionGenerator } from "./generator.ts";
