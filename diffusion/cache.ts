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
import type { D4rlDataset } from "../core/types.ts";
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

/** SHA-256 of some bytes, as hex. */
async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** A content id of a dataset: SHA-256 over its sizes and every array a source reads. */
export async function datasetFingerprint(dataset: D4rlDataset): Promise<string> {
  const head = new TextEncoder().encode(
    JSON.stringify([dataset.size, dataset.observationDim, dataset.actionDim]),
  );
  const parts = [
    head,
    bytesOf(dataset.observations),
    bytesOf(dataset.actions),
    bytesOf(dataset.rewards),
    bytesOf(dataset.terminals),
    bytesOf(dataset.timeouts),
  ];
  const total = parts.reduce((sum, p) => sum + p.length, 0);
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return await sha256(joined);
}

/** A cache key: SHA-256 of a JSON value (keys sorted), shortened to 32 hex digits. */
export async function cacheKey(value: unknown): Promise<string> {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v as Record<string, unknown>).sort().map((
          k,
        ) => [k, sorted((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  const hex = await sha256(new TextEncoder().encode(JSON.stringify(sorted(value))));
  return hex.slice(0, 32);
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

/** Writes bytes atomically: a temporary file in the same folder, then a rename. */
export async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const folder = path.slice(0, Math.max(0, path.lastIndexOf("/")));
  if (folder) await Deno.mkdir(folder, { recursive: true });
  const temporary = `${path}.tmp-${Deno.pid}-${crypto.randomUUID()}`;
  try {
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/** Reads a stored denoiser, or `undefined` when the file does not exist. */
export async function loadDenoiser(path: string): Promise<StoredDenoiser | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  return decodeDenoiser(bytes, path);
}

/** Stores a denoiser atomically at `path`. */
export async function saveDenoiser(path: string, model: StoredDenoiser): Promise<void> {
  await writeAtomically(path, encodeDenoiser(model));
}

/** How {@link produceOnce} waits for another process. */
export interface LockOptions {
  /** A lock untouched for this long is taken to be left by a dead process. */
  staleMs: number;
  /** Wait between looks at the lock. */
  pollMs: number;
}

/**
 * Loads an artefact, or makes it while holding `${path}.lock` so concurrent
 * processes (the cells of a grid) make it once: the others wait and then
 * load it. `make` receives a heartbeat to call during long work, which keeps
 * the lock fresh; a lock left stale (its holder died) is taken over.
 */
export async function produceOnce<T>(
  path: string,
  load: () => Promise<T | undefined>,
  make: (heartbeat: () => void) => Promise<T>,
  options: LockOptions = { staleMs: 10 * 60_000, pollMs: 1000 },
): Promise<T> {
  const lockPath = `${path}.lock`;
  const folder = path.slice(0, Math.max(0, path.lastIndexOf("/")));
  if (folder) await Deno.mkdir(folder, { recursive: true });
  while (true) {
    const existing = await load();
    if (existing !== undefined) return existing;
    let lock: Deno.FsFile | undefined;
    try {
      lock = await Deno.open(lockPath, { createNew: true, write: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    if (lock) {
      lock.close();
      try {
        const madeMeanwhile = await load();
        if (madeMeanwhile !== undefined) return madeMeanwhile;
        let lastBeat = Date.now();
        return await make(() => {
          const now = Date.now();
          if (now - lastBeat < 5000) return;
          lastBeat = now;
          try {
            Deno.utimeSync(lockPath, new Date(now), new Date(now));
          } catch {
            // The lock was taken over as stale; the result is still written atomically.
          }
        });
      } finally {
        await Deno.remove(lockPath).catch(() => {});
      }
    }
    const info = await Deno.stat(lockPath).catch(() => undefined);
    if (info?.mtime && Date.now() - info.mtime.getTime() > options.staleMs) {
      await Deno.remove(lockPath).catch(() => {});
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
}
