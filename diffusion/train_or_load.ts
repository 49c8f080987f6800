/**
 * Train-or-load of the denoiser: cut the real dataset into windows, z-score
 * them, hold out episodes and train the EDM denoiser on the rest (paper
 * Section 3, Table 3), or load the same model from the cache. A model is a
 * pure function of (dataset content, model and training options, preset,
 * seed), which is its cache key; guidance and sampler options are not part of
 * it, so unguided and policy-guided generation share one model.
 *
 * @module
 */
import { computeKey, unetKernelsVersion } from "../core/compute.ts";
import { fileSha256 } from "../core/fingerprint.ts";
import { describeHolder } from "../core/lock.ts";
import { tf } from "../core/compute.ts";
import type { SourceContext } from "../core/contracts/source.ts";
import { deriveSeed, Rng } from "../core/rng.ts";
import type { D4rlDataset } from "../core/types.ts";
import {
  cacheKey,
  datasetFingerprint,
  loadDenoiser,
  produceOnce,
  saveDenoiser,
  type StoredDenoiser,
} from "./cache.ts";
import { type DenoiserOrigin, LoadedDenoiser } from "./loaded_denoiser.ts";
import type { DiffusionOptions } from "./options.ts";
import type { DiffusionSizes } from "./presets.ts";
import { byWholePercent } from "./progress.ts";
import { trainOptionsOf } from "./settings.ts";
import { trainDenoiser } from "./train.ts";
import { fusedUNetActive, type UNetConfig, validateUNetConfig } from "./unet1d.ts";
import {
  cutWindows,
  normalizeRows,
  type RowEncoding,
  type RowLayout,
  rowLayout,
  rowStats,
  splitByEpisode,
} from "./windows.ts";
import {
  type ActionTransform,
  actionTransform,
  defaultActionTransform,
} from "./action_transform.ts";

/** What train-or-load reads of a source's context. */
export type DenoiserContext = Pick<
  SourceContext,
  "datasetId" | "dataset" | "seed" | "preset" | "cacheDir" | "reporter" | "recordArtefact"
>;

/**
 * Denoisers trained or loaded in this process, by cache path, so cells in one
 * process share them; only the latest few are kept (a paper-size model is
 * about 0.7 GB).
 */
const trainedInProcess = new Map<string, { model: StoredDenoiser; sha256: string }>();
const keptInProcess = 2;

function remember(path: string, model: { model: StoredDenoiser; sha256: string }): void {
  trainedInProcess.delete(path);
  trainedInProcess.set(path, model);
  while (trainedInProcess.size > keptInProcess) {
    trainedInProcess.delete(trainedInProcess.keys().next().value!);
  }
}

/**
 * Trains a denoiser on a dataset's windows, or loads it from this process or
 * from `context.cacheDir` when one with the same (dataset content, model and
 * training options, preset, seed) exists. Concurrent processes train it once.
 */
export async function prepareDenoiser(
  context: DenoiserContext,
  options: DiffusionOptions,
  sizes: DiffusionSizes,
): Promise<StoredDenoiser> {
  return (await prepareStoredDenoiser(context, options, sizes)).model;
}

/** {@link prepareDenoiser}, with the file the model lies in. */
async function prepareStoredDenoiser(
  context: DenoiserContext,
  options: DiffusionOptions,
  sizes: DiffusionSizes,
): Promise<{ model: StoredDenoiser } & DenoiserOrigin> {
  const { dataset } = context;
  const layout = layoutOf(dataset, options);
  const config: UNetConfig = {
    rowWidth: layout.rowWidth,
    features: sizes.features,
    numBlocks: sizes.numBlocks,
    trajectoryLength: sizes.trajectoryLength,
    // Absent unless set, so models cached before the option existed keep their keys.
    ...(options.groupNormPerStep ? { normPerStep: true } : {}),
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
    // Absent for the reference's windows, so models cached before the option stay valid.
    ...(options.windowEpisodeTails ? { windowEpisodeTails: true } : {}),
    validationFraction: options.validationFraction,
    training: trainOptionsOf(options, sizes, 0),
    // Absent for the authors' rows, so models cached before these options existed stay valid.
    ...(isDefaultTransform(layout.actionTransform)
      ? {}
      : { actionTransform: [layout.actionTransform.name, layout.actionTransform.clip] }),
    ...(layout.deltaOffset === null ? {} : { stateDifferences: true }),
    preset: context.preset,
    seed: context.seed,
    compute: computeKey(),
    // The whole-network U-Net kernels agree with the op-by-op path, which trained the models
    // cached before them, to float32 rounding only: their models are keyed apart (absent on the
    // op path, so its models keep their keys), and apart again whenever their arithmetic moves.
    ...(fusedUNetActive() ? { unetKernels: unetKernelsVersion } : {}),
  });
  const path = `${context.cacheDir}/diffusion-${key}.bin`;
  // Every cell records the denoiser it used, however it got it (trained, loaded, or kept in
  // this process), so that a cell's result does not depend on which cells shared a process.
  const remembered = trainedInProcess.get(path);
  if (remembered) {
    context.recordArtefact?.({ kind: "denoiser", path, sha256: remembered.sha256 });
    return { model: remembered.model, path, sha256: remembered.sha256 };
  }
  let trainedHere = false;
  const stored = await produceOnce(path, () => loadDenoiser(path), async (heartbeat) => {
    trainedHere = true;
    const made = trainOnDataset(context, options, sizes, config, heartbeat);
    await saveDenoiser(path, made);
    return made;
  }, { onWait: (holder) => context.reporter.log(describeHolder(`${path}.lock`, holder)) });
  if (!trainedHere) context.reporter.log(`diffusion: loaded denoiser ${path}`);
  const sha256 = await fileSha256(path);
  remember(path, { model: stored, sha256 });
  context.recordArtefact?.({ kind: "denoiser", path, sha256 });
  return { model: stored, path, sha256 };
}

/**
 * {@link prepareDenoiser}, then the model's weights uploaded for sampling
 * (owned by the caller: dispose when done).
 */
export async function trainOrLoadDenoiser(
  context: DenoiserContext,
  options: DiffusionOptions,
  sizes: DiffusionSizes,
): Promise<LoadedDenoiser> {
  const { model, path, sha256 } = await prepareStoredDenoiser(context, options, sizes);
  return new LoadedDenoiser(model, layoutOf(context.dataset, options), { path, sha256 });
}

/** How the options have window rows encode a step. */
function encodingOf(
  options: Pick<DiffusionOptions, "actionTransform" | "actionClip" | "stateDifferences">,
): RowEncoding {
  return {
    actionTransform: actionTransform(options.actionTransform, options.actionClip),
    stateDifferences: options.stateDifferences,
  };
}

/** The row layout of a dataset's windows under the options' row encoding. */
function layoutOf(
  dataset: Pick<D4rlDataset, "observationDim" | "actionDim">,
  options: Pick<DiffusionOptions, "actionTransform" | "actionClip" | "stateDifferences">,
): RowLayout {
  return rowLayout(dataset.observationDim, dataset.actionDim, encodingOf(options));
}

function isDefaultTransform(transform: ActionTransform): boolean {
  return transform.name === defaultActionTransform.name &&
    transform.clip === defaultActionTransform.clip;
}

/** Cuts, z-scores and splits a dataset's windows, then trains a denoiser on them. */
function trainOnDataset(
  context: DenoiserContext,
  options: DiffusionOptions,
  sizes: DiffusionSizes,
  config: UNetConfig,
  heartbeat: () => void,
): StoredDenoiser {
  const { dataset } = context;
  const windows = cutWindows(dataset, {
    trajectoryLength: sizes.trajectoryLength,
    stride: options.windowStride,
    episodeTails: options.windowEpisodeTails,
    encoding: encodingOf(options),
  });
  const { layout } = windows;
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
  const reportProgress = byWholePercent((fraction) =>
    context.reporter.progress("diffusion-train", fraction)
  );
  const trained = trainDenoiser(
    config,
    pick(train),
    pick(validation),
    trainOptionsOf(options, sizes, trainingSteps),
    deriveSeed(context.seed, "diffusion-train"),
    {
      onProgress(fraction) {
        heartbeat();
        reportProgress(fraction);
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
