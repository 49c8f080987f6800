/**
 * Content keys: SHA-256 digests of stable JSON and of datasets. A key names
 * a cached artefact or a cell's identity on disk, so every function here must
 * keep giving the same string for the same input across releases.
 *
 * @module
 */
import type { D4rlDataset } from "./types.ts";

/** SHA-256 of bytes or of a string's UTF-8, as 64 lowercase hex digits. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

const fileHashes = new Map<string, string>();

/** SHA-256 of a file's bytes, computed once per file version (size and mtime) in a process. */
export async function fileSha256(path: string): Promise<string> {
  const info = await Deno.stat(path);
  const version = `${path}|${info.size}|${info.mtime?.getTime()}`;
  let hash = fileHashes.get(version);
  if (!hash) {
    hash = await sha256Hex(await Deno.readFile(path));
    fileHashes.set(version, hash);
  }
  return hash;
}

/** A short hex digest (the first `length` digits of SHA-256) of a string, for content keys. */
export async function digest(text: string, length = 16): Promise<string> {
  return (await sha256Hex(text)).slice(0, length);
}

/**
 * JSON with object keys sorted (by UTF-16 code units) and `undefined`
 * members left out, so equal values always give equal text (for hashing).
 */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The digest (`length` hex digits) of a JSON value's {@link stableStringify} text. */
export function valueKey(value: unknown, length = 16): Promise<string> {
  return digest(stableStringify(value), length);
}

/** The bytes of a typed array, without copying. */
export function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** The arrays a dataset fingerprint covers, in their fixed order. */
function datasetArrays(dataset: D4rlDataset): ArrayBufferView[] {
  return [
    dataset.observations,
    dataset.actions,
    dataset.rewards,
    dataset.terminals,
    dataset.timeouts,
  ];
}

/**
 * A content id of a dataset: SHA-256 (64 hex digits) over its sizes (as the
 * JSON `[size, observationDim, actionDim]`) followed by the bytes of
 * observations, actions, rewards, terminals and timeouts. Infos, metadata and
 * `next_observations` are not covered.
 */
export async function datasetFingerprint(dataset: D4rlDataset): Promise<string> {
  const head = new TextEncoder().encode(
    JSON.stringify([dataset.size, dataset.observationDim, dataset.actionDim]),
  );
  const parts = [head, ...datasetArrays(dataset).map(bytesOf)];
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return await sha256Hex(joined);
}

/**
 * A content key of a dataset together with JSON-safe settings: SHA-256 of
 * `digest(observations)|digest(actions)|…|stableStringify(settings)`, where
 * each array's own SHA-256 is taken and `next_observations` joins the arrays
 * when the dataset has them. (A second layout beside
 * {@link datasetFingerprint} because saved world models are keyed by it.)
 */
export async function datasetSettingsKey(dataset: D4rlDataset, settings: unknown): Promise<string> {
  const arrays = datasetArrays(dataset);
  if (dataset.nextObservations) arrays.push(dataset.nextObservations);
  const parts: string[] = [];
  for (const array of arrays) parts.push(await sha256Hex(bytesOf(array)));
  parts.push(stableStringify(settings));
  return await sha256Hex(parts.join("|"));
}
