/**
 * Unguided generations on disk. An unguided generation is a pure function of
 * the denoiser, the sampler's settings, the window count, the seed and the
 * compute path, and a grid asks for the same one several times: both agents
 * of the `unguided` source, and generation 0 of `policy-guided`, which is
 * unguided and seeded alike so that the two sources start from the same
 * data. Kept beside the denoiser in the cache folder, each is sampled once
 * whichever worker asks first (the others wait on its lock, then read it),
 * and again never: a rerun that changes only the agents reuses it.
 *
 * File layout: the windows' float32 values, little-endian, un-normalised, as
 * `sampleWindows` returns them; the length is checked on reading.
 *
 * @module
 */
import { computeKey, unetKernelsVersion } from "../core/compute.ts";
import { bytesOf, fileSha256 } from "../core/fingerprint.ts";
import { readFileIfExists, writeFileAtomic } from "../core/files.ts";
import { describeHolder } from "../core/lock.ts";
import { cacheKey, produceOnce } from "./cache.ts";
import type { LoadedDenoiser } from "./loaded_denoiser.ts";
import type { SamplerOptions } from "./sampler.ts";
import { sampleWindows } from "./sampling.ts";
import type { DenoiserContext } from "./train_or_load.ts";
import { fusedUNetActive } from "./unet1d.ts";

/** The file an unguided generation is kept in. */
export async function unguidedWindowsPath(
  model: LoadedDenoiser,
  count: number,
  sampler: SamplerOptions,
  seed: number,
  batchSize: number,
  cacheDir: string,
): Promise<string> {
  if (!model.origin) {
    throw new Error("diffusion: an unguided generation is stored by its denoiser's file");
  }
  const key = await cacheKey({
    kind: "pgd-unguided-windows",
    denoiser: model.origin.sha256,
    count,
    sampler,
    seed,
    // Batches draw their noise in turn from one generator, so the split is part of the sample.
    batchSize,
    compute: computeKey(),
    unetKernels: fusedUNetActive() ? unetKernelsVersion : null,
  });
  return `${cacheDir}/unguided-${key}.f32`;
}

/**
 * `count` unguided windows from `model` with `seed`: read from the
 * context's cache folder when it holds them, otherwise sampled (in batches
 * of `batchSize`) and stored there. Either way the file is recorded as the
 * cell's artefact, as the denoiser is.
 */
export async function unguidedWindows(
  model: LoadedDenoiser,
  count: number,
  sampler: SamplerOptions,
  seed: number,
  batchSize: number,
  context: Pick<DenoiserContext, "cacheDir" | "reporter" | "recordArtefact">,
  onProgress?: (fraction: number) => void,
): Promise<Float32Array> {
  const path = await unguidedWindowsPath(model, count, sampler, seed, batchSize, context.cacheDir);
  const length = count * model.config.trajectoryLength * model.config.rowWidth;
  const windows = await produceOnce(
    path,
    () => readWindows(path, length),
    async (heartbeat) => {
      const made = sampleWindows(model, count, sampler, undefined, seed, batchSize, (fraction) => {
        heartbeat();
        onProgress?.(fraction);
      });
      await writeFileAtomic(path, bytesOf(made));
      return made;
    },
    { onWait: (holder) => context.reporter.log(describeHolder(`${path}.lock`, holder)) },
  );
  context.recordArtefact?.({ kind: "unguided-windows", path, sha256: await fileSha256(path) });
  return windows;
}

/** The windows in `path`, or `undefined` when there is no such file. */
async function readWindows(path: string, length: number): Promise<Float32Array | undefined> {
  const bytes = await readFileIfExists(path);
  if (bytes === undefined) return undefined;
  if (bytes.length !== length * 4) {
    throw new Error(
      `diffusion cache: ${path}: ${bytes.length} bytes, expected ${length * 4} ` +
        `(${length} float32 values); delete the file to sample it again`,
    );
  }
  const windows = new Float32Array(length);
  new Uint8Array(windows.buffer).set(bytes);
  return windows;
}
