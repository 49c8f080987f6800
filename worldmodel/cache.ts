/**
 * Saving fitted ensembles under a content key: one binary file holding a JSON
 * header and every parameter (written with the core's atomic file writes, so
 * parallel workers never read half a file).
 *
 * @module
 */
import type { D4rlDataset } from "../core/types.ts";
import { stableStringify } from "../core/files.ts";
import { type EnsembleSnapshot, ProbabilisticEnsemble } from "./ensemble.ts";

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 (hex) of a dataset's arrays together with any JSON-safe settings. */
export async function contentKey(dataset: D4rlDataset, settings: unknown): Promise<string> {
  const arrays: ArrayBufferView[] = [
    dataset.observations,
    dataset.actions,
    dataset.rewards,
    dataset.terminals,
    dataset.timeouts,
  ];
  if (dataset.nextObservations) arrays.push(dataset.nextObservations);
  const parts: string[] = [];
  for (const array of arrays) {
    const view = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    parts.push(hex(await crypto.subtle.digest("SHA-256", view.slice())));
  }
  parts.push(stableStringify(settings));
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("|"))));
}

/**
 * Encodes named ensembles: `[u32 header bytes][header JSON][pad to 4][float32 parameters…]`.
 */
export function encodeEnsembles(models: Record<string, ProbabilisticEnsemble>): Uint8Array {
  const snapshots = Object.entries(models).map(([name, model]) => ({ name, ...model.snapshot() }));
  const headers = snapshots.map(({ name, header, parameters }) => ({
    name,
    header,
    length: parameters.length,
  }));
  const headerBytes = new TextEncoder().encode(JSON.stringify(headers));
  const start = 4 + Math.ceil(headerBytes.length / 4) * 4;
  const total = snapshots.reduce((sum, snapshot) => sum + snapshot.parameters.length, 0);
  const bytes = new Uint8Array(start + 4 * total);
  new DataView(bytes.buffer).setUint32(0, headerBytes.length, true);
  bytes.set(headerBytes, 4);
  const floats = new Float32Array(bytes.buffer, start, total);
  let offset = 0;
  for (const snapshot of snapshots) {
    floats.set(snapshot.parameters, offset);
    offset += snapshot.parameters.length;
  }
  return bytes;
}

/** Decodes {@link encodeEnsembles}'s bytes; `where` (a file) is named in errors. */
export function decodeEnsembles(
  bytes: Uint8Array,
  where: string,
): Record<string, ProbabilisticEnsemble> {
  try {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headerLength = view.getUint32(0, true);
    const headers = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as {
      name: string;
      header: EnsembleSnapshot["header"];
      length: number;
    }[];
    const start = 4 + Math.ceil(headerLength / 4) * 4;
    const floats = new Float32Array(bytes.slice(start).buffer);
    const out: Record<string, ProbabilisticEnsemble> = {};
    let offset = 0;
    for (const { name, header, length } of headers) {
      out[name] = ProbabilisticEnsemble.restore({
        header,
        parameters: floats.subarray(offset, offset + length),
      });
      offset += length;
    }
    return out;
  } catch (error) {
    throw new Error(`cannot read saved ensembles '${where}': ${(error as Error).message}`);
  }
}

/** Reads a file, or `undefined` when it does not exist. */
export async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}
