/**
 * The trajectory-diffusion data source shared by `unguided` (λ = 0) and
 * `policy-guided` (λ = 1 by default): `prepare` trains the denoiser on the
 * real dataset's windows (or loads it from the cache), `generate` samples
 * windows with the EDM sampler and policy guidance and turns them into
 * transitions (pgd.md; paper Sections 3–4, Tables 2–4).
 *
 * @module
 */
import { z } from "zod";
import { tf } from "../../core/compute.ts";
import type { PresetName } from "../../core/contracts/common.ts";
import type { DataSource, GenerateRequest, SourceContext } from "../../core/contracts/source.ts";
import { deriveSeed, Rng } from "../../core/rng.ts";
import { concatTransitions } from "../../core/transitions.ts";
import type { PolicyView, Transitions } from "../../core/types.ts";
import { toTransitions } from "../../data/d4rl.ts";
import {
  cacheKey,
  datasetFingerprint,
  loadDenoiser,
  produceOnce,
  saveDenoiser,
  type StoredDenoiser,
} from "../../diffusion/cache.ts";
import { denoise } from "../../diffusion/edm.ts";
import { type GuidanceOptions, policyGuidance } from "../../diffusion/guidance.ts";
import { type DenoiserFn, sampleEdm, type SamplerOptions } from "../../diffusion/sampler.ts";
import { trainDenoiser, type TrainOptions } from "../../diffusion/train.ts";
import { type UNetConfig, validateUNetConfig } from "../../diffusion/unet1d.ts";
import {
  cutWindows,
  normalizeRows,
  type RowLayout,
  rowLayout,
  rowStats,
  splitByEpisode,
  unnormalizeRows,
  windowsToTransitions,
} from "../../diffusion/windows.ts";

/** Sizes a preset sets: model, training length, sampler steps and generated amounts. */
export interface DiffusionSizes {
  /** U-Net width of the first level (Table 3: 1024). */
  features: number;
  /** U-Net levels (Table 3: 3). */
  numBlocks: number;
  /** Steps per window (Table 3: 16). */
  trajectoryLength: number;
  /** Windows per gradient step (Table 3: 16). */
  batchSize: number;
  /** Passes over the training windows (Table 3: 250). */
  epochs: number;
  /** Gradient steps; when set, replaces `epochs` (small presets cap training time). */
  trainingSteps?: number;
  /**
   * Steps between EMA updates (reference code: 10). With decay 0.995 the EMA
   * spans about 200 updates, so short runs update it every step; otherwise
   * it would average over the whole run, early weights included.
   */
  emaEvery: number;
  /** Denoising steps (Table 4: 256). */
  samplerSteps: number;
  /** Windows sampled per periodic generation (Table 2: 2^14). */
  windowsPerGeneration: number;
  /** Generations in a run, periodic mode (Table 2: 4). */
  periodicGenerations: number;
  /** Generations in a run, continuous mode (Figure 4: 100). */
  continuousGenerations: number;
  /** Windows denoised together in one batch. */
  samplingBatchSize: number;
}

/**
 * Sizes per preset: `paper` is the paper's; `smoke` runs in seconds.
 *
 * `quick` fits the default grid (two denoisers, one per seed, beside twelve
 * agent runs in about ten minutes on 2 cores): a denoiser trains in about
 * two minutes (125 s in the grid). Synthetic maze2d-umaze transitions (1024
 * windows, 64 sampler steps) against the real ones:
 *
 * | denoiser (features/levels/batch/steps) | pos. error | vel. residual | rewarded | in walls |
 * | -------------------------------------- | ---------: | ------------: | -------: | -------: |
 * | real data                              |          0 |         0.010 |     5.9% |       0% |
 * | 32/3/128/3000                          |      0.021 |         0.129 |     5.1% |     1.8% |
 * | 32/3/128/5000                          |      0.014 |         0.104 |     3.1% |     1.3% |
 * | 64/3/64/3000                           |      0.016 |         0.088 |     2.5% |     2.8% |
 * | 32/2/128/5000                          |      0.014 |         0.112 |     3.8% |     3.3% |
 * | 64/2/64/4000 (this preset)             |      0.015 |         0.077 |     5.7% |     0.4% |
 *
 * (position error `|p' − p − 0.01·v'|` against a mean step of about 0.034;
 * velocity residual of `v' − (A·v + B·a + c)` fitted on real data, against a
 * mean velocity change of 0.23; states inside a wall.) The third level of the
 * paper's U-Net holds half of a small model's products at this window length,
 * so two wider levels trained longer do better in the same time: 34 ms a
 * step against 53 ms for 32/3/128. Fewer sampler steps cost consistency
 * (48 instead of 64: position error 0.022, walls 2.4%). The windows are still
 * not dynamics-consistent: the paper's model is about 1000× larger and trains
 * for hours on a GPU.
 */
export const diffusionPresets: Record<PresetName, DiffusionSizes> = {
  smoke: {
    features: 16,
    numBlocks: 2,
    trajectoryLength: 8,
    batchSize: 16,
    epochs: 1,
    trainingSteps: 60,
    emaEvery: 1,
    samplerSteps: 8,
    windowsPerGeneration: 32,
    periodicGenerations: 2,
    continuousGenerations: 4,
    samplingBatchSize: 256,
  },
  quick: {
    features: 64,
    numBlocks: 2,
    trajectoryLength: 16,
    batchSize: 64,
    epochs: 1,
    trainingSteps: 4000,
    emaEvery: 1,
    samplerSteps: 64,
    windowsPerGeneration: 1024,
    periodicGenerations: 2,
    continuousGenerations: 8,
    samplingBatchSize: 512,
  },
  paper: {
    features: 1024,
    numBlocks: 3,
    trajectoryLength: 16,
    batchSize: 16,
    epochs: 250,
    emaEvery: 10,
    samplerSteps: 256,
    windowsPerGeneration: 2 ** 14,
    periodicGenerations: 4,
    continuousGenerations: 100,
    samplingBatchSize: 1024,
  },
};

const positiveInt = z.number().int().positive();

/** Options of both diffusion sources. Defaults are the paper's (pgd.md says where the code's differ). */
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
  validationFraction: z.number().gt(0).lt(1).default(0.05),
  learningRate: z.number().positive().default(2e-3),
  learningRateSchedule: z.enum(["warmup-cosine", "cosine", "constant"]).default("warmup-cosine"),
  warmupFraction: z.number().min(0).lt(1).default(0.1),
  warmupStartFactor: z.number().min(0).max(1).default(0.1),
  emaDecay: z.number().min(0).lt(1).default(0.995),
  logSigmaMean: z.number().default(-1.2),
  logSigmaStd: z.number().positive().default(1.2),
  // Per-preset sizes, overridable one by one.
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

/** Parsed options of a diffusion source. */
export type DiffusionOptions = z.infer<typeof diffusionOptionsSchema>;

/** Parses options; errors name the source and the offending key. */
export function parseDiffusionOptions(sourceName: string, options: unknown): DiffusionOptions {
  const result = diffusionOptionsSchema.safeParse(options ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((issue) =>
      `${issue.path.join(".") || "(options)"}: ${issue.message}`
    );
    throw new Error(`data source '${sourceName}': invalid options: ${problems.join("; ")}`);
  }
  return result.data;
}

/** The preset's sizes with any per-key overrides of `options`. */
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

/** Generations in a run for a mode. */
function generationCount(options: DiffusionOptions, sizes: DiffusionSizes): number {
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

function trainOptionsOf(
  options: DiffusionOptions,
  sizes: DiffusionSizes,
  trainingSteps: number,
): TrainOptions {
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

/** Sampler settings of the options and sizes. */
export function samplerOptionsOf(options: DiffusionOptions, sizes: DiffusionSizes): SamplerOptions {
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

/** Guidance settings of the options. */
export function guidanceOptionsOf(options: DiffusionOptions): GuidanceOptions {
  return {
    strength: options.guidanceStrength,
    schedule: options.guidanceSchedule,
    cosineWeight: options.cosineWeight,
    atDenoisedEstimate: options.guideDenoisedEstimate,
    normalize: options.normalizeGuidance,
  };
}

/**
 * Denoisers trained or loaded in this process, by cache path, so cells in one
 * process share them; only the latest few are kept (a paper-size model is
 * about 0.7 GB).
 */
const trainedInProcess = new Map<string, StoredDenoiser>();
const keptInProcess = 2;

function remember(path: string, model: StoredDenoiser): void {
  trainedInProcess.delete(path);
  trainedInProcess.set(path, model);
  while (trainedInProcess.size > keptInProcess) {
    trainedInProcess.delete(trainedInProcess.keys().next().value!);
  }
}

/**
 * Trains a denoiser on a dataset's windows, or loads it from `context.cacheDir`
 * when one with the same (dataset content, model and training options, preset,
 * seed) exists. Guidance and sampler options are not part of the key, so
 * `unguided` and `policy-guided` share one model.
 */
export async function prepareDenoiser(
  context: SourceContext,
  options: DiffusionOptions,
  sizes: DiffusionSizes,
): Promise<StoredDenoiser> {
  const { dataset } = context;
  const layout = rowLayout(dataset.observationDim, dataset.actionDim);
  const config: UNetConfig = {
    rowWidth: layout.rowWidth,
    features: sizes.features,
    numBlocks: sizes.numBlocks,
    trajectoryLength: sizes.trajectoryLength,
  };
  validateUNetConfig(config);
  const key = await cacheKey({
    model: "pgd-trajectory-edm-unet1d",
    dataset: await datasetFingerprint(dataset),
    config,
    batchSize: sizes.batchSize,
    epochs: sizes.trainingSteps === undefined ? sizes.epochs : null,
    trainingSteps: sizes.trainingSteps ?? null,
    windowStride: options.windowStride,
    validationFraction: options.validationFraction,
    training: trainOptionsOf(options, sizes, 0),
    preset: context.preset,
    seed: context.seed,
  });
  const path = `${context.cacheDir}/diffusion-${key}.bin`;
  const remembered = trainedInProcess.get(path);
  if (remembered) return remembered;
  let trainedHere = false;
  const stored = await produceOnce(path, () => loadDenoiser(path), async (heartbeat) => {
    trainedHere = true;
    const made = trainOnDataset(context, options, sizes, config, heartbeat);
    await saveDenoiser(path, made);
    return made;
  });
  if (!trainedHere) context.reporter.log(`diffusion: loaded denoiser ${path}`);
  remember(path, stored);
  return stored;
}

/** Cuts, z-scores and splits a dataset's windows, then trains a denoiser on them. */
function trainOnDataset(
  context: SourceContext,
  options: DiffusionOptions,
  sizes: DiffusionSizes,
  config: UNetConfig,
  heartbeat: () => void,
): StoredDenoiser {
  const { dataset } = context;
  const layout = rowLayout(dataset.observationDim, dataset.actionDim);
  const windows = cutWindows(dataset, {
    trajectoryLength: sizes.trajectoryLength,
    stride: options.windowStride,
  });
  if (windows.count < 2) {
    throw new Error(
      `diffusion: dataset '${context.datasetId}' yields ${windows.count} windows of length ${sizes.trajectoryLength}; ` +
        "need at least 2 (episodes shorter than the window give none)",
    );
  }
  const stats = rowStats(windows.data, layout.rowWidth);
  const normalized = normalizeRows(windows.data, stats);
  const splitRng = new Rng(deriveSeed(context.seed, "diffusion-split"));
  const { train, validation } = splitByEpisode(
    windows,
    options.validationFraction,
    (e) => splitRng.shuffle(e),
  );
  const windowSize = sizes.trajectoryLength * layout.rowWidth;
  const pick = (indices: Int32Array) => {
    const out = new Float32Array(indices.length * windowSize);
    indices.forEach((w, i) =>
      out.set(normalized.subarray(w * windowSize, (w + 1) * windowSize), i * windowSize)
    );
    return out;
  };
  const trainingSteps = sizes.trainingSteps ??
    Math.max(1, Math.ceil((sizes.epochs * train.length) / sizes.batchSize));
  context.reporter.log(
    `diffusion: training a denoiser on ${train.length} windows (${validation.length} held out), ${trainingSteps} steps`,
  );
  let lastReport = -1;
  const trained = trainDenoiser(
    config,
    pick(train),
    pick(validation),
    trainOptionsOf(options, sizes, trainingSteps),
    deriveSeed(context.seed, "diffusion-train"),
    {
      onProgress(fraction) {
        const percent = Math.floor(fraction * 100);
        heartbeat();
        if (percent !== lastReport) {
          lastReport = percent;
          context.reporter.progress("diffusion-train", fraction);
        }
      },
    },
  );
  const stored: StoredDenoiser = {
    config,
    stats,
    history: trained.history,
    params: Object.fromEntries(
      Object.entries(trained.params).map((
        [name, t],
      ) => [name, { shape: t.shape, values: new Float32Array(t.dataSync()) }]),
    ),
  };
  tf.dispose(Object.values(trained.params));
  const first = trained.history[0].validationLoss;
  const last = trained.history[trained.history.length - 1].validationLoss;
  context.reporter.log(`diffusion: validation loss ${first.toFixed(4)} → ${last.toFixed(4)}`);
  return stored;
}

/** A denoiser's weights on the compute backend, ready to sample. */
export class LoadedDenoiser {
  /** Sizes. */
  readonly config: UNetConfig;
  /** Window statistics and weights as stored. */
  readonly stored: StoredDenoiser;
  /** Row layout of the windows. */
  readonly layout: RowLayout;
  #params: Record<string, tf.Tensor>;

  /** Uploads stored weights; `layout` must match the model's row width. */
  constructor(stored: StoredDenoiser, layout: RowLayout) {
    if (layout.rowWidth !== stored.config.rowWidth) {
      throw new Error(
        `diffusion: the denoiser's rows have ${stored.config.rowWidth} entries, the dataset's ${layout.rowWidth}`,
      );
    }
    this.stored = stored;
    this.layout = layout;
    this.config = stored.config;
    this.#params = Object.fromEntries(
      Object.entries(stored.params).map(([name, p]) => [name, tf.tensor(p.values, p.shape)]),
    );
  }

  /** `D(x; σ)` with one σ for the whole batch. */
  readonly denoiser: DenoiserFn = (noisy, sigma) =>
    denoise(this.config, this.#params, noisy, tf.fill([noisy.shape[0]], sigma) as tf.Tensor1D);

  /** Frees the weights. */
  dispose(): void {
    tf.dispose(Object.values(this.#params));
  }
}

/**
 * Samples `count` z-scored windows (in batches of `batchSize`) with guidance
 * from `policy` at strength `guidance.strength` (none when the policy is
 * absent or λ = 0), and returns them un-normalised.
 */
export function sampleWindows(
  model: LoadedDenoiser,
  count: number,
  sampler: SamplerOptions,
  guidance: GuidanceOptions,
  policy: PolicyView | undefined,
  seed: number,
  batchSize: number,
  onProgress?: (fraction: number) => void,
): Float32Array {
  const { config, stored } = model;
  const windowSize = config.trajectoryLength * config.rowWidth;
  const out = new Float32Array(count * windowSize);
  const rng = new Rng(seed);
  const guided = policy && guidance.strength > 0;
  for (let start = 0; start < count; start += batchSize) {
    const size = Math.min(batchSize, count - start);
    const guide = guided
      ? policyGuidance(
        policy,
        model.layout,
        stored.stats,
        model.denoiser,
        guidance,
        sampler.sigmaMax,
      )
      : undefined;
    const sample = sampleEdm(
      model.denoiser,
      [size, config.trajectoryLength, config.rowWidth],
      sampler,
      rng.seed(),
      guide,
      (step) => onProgress?.((start + (size * (step + 1)) / sampler.steps) / count),
    );
    out.set(unnormalizeRows(sample, stored.stats), start * windowSize);
  }
  return out;
}

/**
 * Unguided samples already drawn in this process, per model: the cells of a
 * group (one per agent) ask for the same unguided generations with the same
 * seeds, so each is sampled once. Only the latest few are kept per model.
 */
const unguidedSamples = new WeakMap<StoredDenoiser, Map<string, Float32Array>>();
const keptSamples = 4;

/**
 * {@link sampleWindows} without guidance, memoised per model, seed, count and
 * sampler settings (the result is a pure function of them).
 */
function sampleUnguidedOnce(
  model: LoadedDenoiser,
  count: number,
  sampler: SamplerOptions,
  seed: number,
  batchSize: number,
  onProgress?: (fraction: number) => void,
): Float32Array {
  let samples = unguidedSamples.get(model.stored);
  if (!samples) unguidedSamples.set(model.stored, samples = new Map());
  const key = JSON.stringify({ count, sampler, seed, batchSize });
  const known = samples.get(key);
  if (known) return known;
  const made = sampleWindows(
    model,
    count,
    sampler,
    {
      strength: 0,
      schedule: "constant",
      cosineWeight: 0,
      atDenoisedEstimate: false,
      normalize: false,
    },
    undefined,
    seed,
    batchSize,
    onProgress,
  );
  samples.set(key, made);
  while (samples.size > keptSamples) samples.delete(samples.keys().next().value!);
  return made;
}

/** `count` transitions drawn uniformly (with replacement) from a set. */
export function drawTransitions(from: Transitions, count: number, rng: Rng): Transitions {
  const { observationDim, actionDim } = from;
  const out: Transitions = {
    size: count,
    observationDim,
    actionDim,
    observations: new Float32Array(count * observationDim),
    actions: new Float32Array(count * actionDim),
    rewards: new Float32Array(count),
    nextObservations: new Float32Array(count * observationDim),
    dones: new Float32Array(count),
  };
  for (let i = 0; i < count; i++) {
    const j = rng.int(from.size);
    out.observations.set(
      from.observations.subarray(j * observationDim, (j + 1) * observationDim),
      i * observationDim,
    );
    out.nextObservations.set(
      from.nextObservations.subarray(j * observationDim, (j + 1) * observationDim),
      i * observationDim,
    );
    out.actions.set(from.actions.subarray(j * actionDim, (j + 1) * actionDim), i * actionDim);
    out.rewards[i] = from.rewards[j];
    out.dones[i] = from.dones[j];
  }
  return out;
}

/**
 * A diffusion data source named `name` with λ = `options.guidanceStrength`
 * (the `unguided` source passes 0).
 */
export function diffusionSource(name: string, options: DiffusionOptions): DataSource {
  let model: LoadedDenoiser | undefined;
  const replay: Transitions[] = [];

  const sizesOf = (context: SourceContext) => resolveSizes(options, context.preset);

  const ensureModel = async (context: SourceContext): Promise<LoadedDenoiser> => {
    if (!model) {
      const stored = await prepareDenoiser(context, options, sizesOf(context));
      model = new LoadedDenoiser(
        stored,
        rowLayout(context.dataset.observationDim, context.dataset.actionDim),
      );
    }
    return model;
  };

  return {
    name,
    options: { ...options },
    regenerateEvery(context) {
      const sizes = sizesOf(context);
      return Math.floor(context.agentSteps / generationCount(options, sizes));
    },
    async prepare(context) {
      await ensureModel(context);
    },
    async generate(context, request: GenerateRequest) {
      const loaded = await ensureModel(context);
      const sizes = sizesOf(context);
      const count = windowsPerGeneration(options, sizes);
      // The first generation has no policy yet: it is unguided (Table 2's protocol).
      const policy = request.generation === 0 ? undefined : request.policy;
      const guided = policy !== undefined && options.guidanceStrength > 0;
      let lastPercent = -1;
      const onProgress = (fraction: number) => {
        const percent = Math.floor(fraction * 100);
        if (percent !== lastPercent) {
          lastPercent = percent;
          context.reporter.progress("diffusion-sample", fraction);
        }
      };
      const sampler = samplerOptionsOf(options, sizes);
      // Unguided generations share their seed across both diffusion sources, so
      // `policy-guided` and `unguided` start from the same first generation.
      const windows = guided
        ? sampleWindows(
          loaded,
          count,
          sampler,
          guidanceOptionsOf(options),
          policy,
          deriveSeed(context.seed, `${name}-generation-${request.generation}`),
          sizes.samplingBatchSize,
          onProgress,
        )
        : sampleUnguidedOnce(
          loaded,
          count,
          sampler,
          deriveSeed(context.seed, `diffusion-unguided-generation-${request.generation}`),
          sizes.samplingBatchSize,
          onProgress,
        );
      const synthetic = windowsToTransitions(windows, count, sizes.trajectoryLength, loaded.layout);
      let data = synthetic;
      if (options.generationMode === "continuous") {
        replay.push(synthetic);
        while (replay.length > options.replayGenerations) replay.shift();
        data = replay.length === 1 ? synthetic : concatTransitions(replay);
      }
      if (options.realFraction > 0) {
        const realCount = Math.round(
          (data.size * options.realFraction) / (1 - options.realFraction),
        );
        const rng = new Rng(deriveSeed(context.seed, `${name}-real-mix-${request.generation}`));
        data = concatTransitions([
          data,
          drawTransitions(toTransitions(context.dataset), realCount, rng),
        ]);
      }
      return data;
    },
    dispose() {
      model?.dispose();
      model = undefined;
      replay.length = 0;
    },
  };
}
