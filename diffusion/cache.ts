/**
 * Trained denoisers on disk, keyed by content: a grid trains each
 * (dataset, options, preset, seed) once and every cell reuses it.
 *
 * File layout: a little-endian uint32 header length, a UTF-8 JSON header
 * (sizes, window statistics, parameter shapes, training history), zero
 * padding to a multiple of 4 bytes, then every parameter as float32 in the
 * header's order. Files are written to a temporary name and renamed, so a
 * concurrent reader never sees half a file.
 *
 * @module
 */
import { datasetFingerprint, valueKey } from "../core/fingerprint.ts";
import { readFileIfExists, writeFileAtomic } from "../core/files.ts";
import { type LockOptions, withLock } from "../core/lock.ts";
import type { ValidationPoint } from "./train.ts";
import type { UNetConfig } from "./unet1d.ts";
import type { RowStats } from "./windows.ts";

/** Everything needed to sample from a trained denoiser, as plain data. */
export interface StoredDenoiser {
  /** Network sizes. */
  config: UNetConfig;
  /** Window statistics (z-scores) of the training data. */
  stats: RowStats;
  /** Parameters by name (EMA weights). */
  params: Record<string, { shape: number[]; values: Float32Array }>;
  /** Validation-loss readings of training. */
  history: ValidationPoint[];
}

const formatVersion = 1;

/** A content id of a dataset (see the core's `datasetFingerprint`; re-exported for importers). */
export { datasetFingerprint };

/** A cache key: SHA-256 of a JSON value (keys sorted), shortened to 32 hex digits. */
export function cacheKey(value: unknown): Promise<string> {
  return valueKey(value, 32);
}

/** Serialises a denoiser to bytes. */
export function encodeDenoiser(model: StoredDenoiser): Uint8Array {
  const names = Object.keys(model.params);
  const header = {
    version: formatVersion,
    config: model.config,
    stats: { mean: Array.from(model.stats.mean), std: Array.from(model.stats.std) },
    history: model.history.map((p) => ({
      ...p,
      trainLoss: Number.isFinite(p.trainLoss) ? p.trainLoss : null,
    })),
    params: names.map((name) => ({ name, shape: model.params[name].shape })),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerEnd = 4 + json.length;
  const dataStart = Math.ceil(headerEnd / 4) * 4;
  const floats = names.reduce((sum, name) => sum + model.params[name].values.length, 0);
  const bytes = new Uint8Array(dataStart + floats * 4);
  new DataView(bytes.buffer).setUint32(0, json.length, true);
  bytes.set(json, 4);
  const data = new Float32Array(bytes.buffer, dataStart, floats);
  let offset = 0;
  for (const name of names) {
    data.set(model.params[name].values, offset);
    offset += model.params[name].values.length;
  }
  return bytes;
}

/** Parses bytes written by {@link encodeDenoiser}; `source` names the file in errors. */
export function decodeDenoiser(bytes: Uint8Array, source: string): StoredDenoiser {
  const fail = (why: string): never => {
    throw new Error(`diffusion cache: ${source}: ${why}`);
  };
  if (bytes.length < 4) fail("file too short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLength = view.getUint32(0, true);
  if (4 + jsonLength > bytes.length) fail("header length exceeds the file");
  // deno-lint-ignore no-explicit-any
  let header: any;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + jsonLength)));
  } catch (error) {
    fail(`header is not JSON (${(error as Error).message})`);
  }
  if (header.version !== formatVersion) {
    fail(`format version ${header.version}, expected ${formatVersion}`);
  }
  const dataStart = Math.ceil((4 + jsonLength) / 4) * 4;
  const floats = (bytes.length - dataStart) / 4;
  const aligned = new Float32Array(floats);
  new Uint8Array(aligned.buffer).set(bytes.subarray(dataStart));
  const params: StoredDenoiser["params"] = {};
  let offset = 0;
  for (const { name, shape } of header.params as { name: string; shape: number[] }[]) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (offset + size > floats) fail(`parameter '${name}' runs past the end of the file`);
    params[name] = { shape, values: aligned.slice(offset, offset + size) };
    offset += size;
  }
  if (offset !== floats) fail(`${floats - offset} float32 values left over after the parameters`);
  return {
    config: header.config,
    stats: { mean: Float32Array.from(header.stats.mean), std: Float32Array.from(header.stats.std) },
    history: (header.history as ValidationPoint[]).map((p) => ({
      ...p,
      trainLoss: p.trainLoss ?? NaN,
    })),
    params,
  };
}

/** Reads a stored denoiser, or `undefined` when the file does not exist. */
export async function loadDenoiser(path: string): Promise<StoredDenoiser | undefined> {
  const bytes = await readFileIfExists(path);
  return bytes === undefined ? undefined : decodeDenoiser(bytes, path);
}

/** Stores a denoiser atomically at `path`. */
export async function saveDenoiser(path: string, model: StoredDenoiser): Promise<void> {
  await writeFileAtomic(path, encodeDenoiser(model));
}

/** How {@link produceOnce} waits for another process (the core lock's options). */
export type { LockOptions };

/**
 * Loads an artefact, or makes it while holding `${path}.lock` (the core's
 * `withLock`) so concurrent processes (the cells of a grid) make it once:
 * the others wait and then load it. `make` receives a heartbeat to call
 * during long work, which keeps the lock fresh; a lock left stale (its
 * holder died) is taken over.
 */
export async function produceOnce<T>(
  path: string,
  load: () => Promise<T | undefined>,
  make: (heartbeat: () => void) => Promise<T>,
  options: Partial<LockOptions> = {},
): Promise<T> {
  const existing = await load();
  if (existing !== undefined) return existing;
  // Whoever held the lock before us has most likely made it meanwhile.
  return await withLock(
    path,
    async (heartbeat) => (await load()) ?? (await make(heartbeat)),
    { staleMs: 10 * 60_000, pollMs: 1000, ...options },
  );
}
