/**
 * Saving fitted ensembles under a content key: one binary file holding a JSON
 * header and every parameter (written with the core's atomic file writes, so
 * parallel workers never read half a file).
 *
 * @module
 */
import type { D4rlDataset } from "../core/types.ts";
import { datasetSettingsKey } from "../core/fingerprint.ts";
import { type EnsembleSnapshot, ProbabilisticEnsemble } from "./ensemble.ts";

/** SHA-256 (hex) of a dataset's arrays together with any JSON-safe settings (the core's `datasetSettingsKey`). */
export function contentKey(dataset: D4rlDataset, settings: unknown): Promise<string> {
  return datasetSettingsKey(dataset, settings);
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
