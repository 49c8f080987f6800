/**
 * Messages between the grid scheduler and its worker processes: JSON lines
 * on stdin/stdout behind a marker, so stray library output cannot be taken
 * for a message.
 *
 * @module
 */
import type { DatasetIdentity, DatasetRecord } from "./datasets.ts";
import type { PresetName } from "./contracts/common.ts";
import type { PluginEntry } from "./registry.ts";
import type { GridConfig } from "./config.ts";
import type { CellKey } from "./results.ts";

/** The marker that starts every protocol line. */
export const messageMarker = "@@pgd-bench ";

/** A dataset as the workers get it: its HDF5 file and what its data are. */
export interface DatasetFile {
  /** The HDF5 file to read. */
  path: string;
  /** What the data are; part of each cell's identity. */
  identity: DatasetIdentity;
}

/** Where datasets are looked for and collected, as a worker needs it. */
export interface DatasetRequest {
  /** Folders searched for D4RL files. */
  dataDirs: string[];
  /** Cache folder of collected datasets. */
  cacheDir: string;
  /** Collection preset. */
  preset: PresetName;
  /** Collection seed. */
  seed?: number;
}

/** What a worker checks before the grid starts: the plugins load and every name and option is valid. */
export interface InspectRequest {
  /** Plugin modules to load (by path or URL). */
  plugins: string[];
  /** Source names, with their options. */
  sources?: string[];
  /** Options per source name. */
  sourceOptions?: Record<string, Record<string, unknown>>;
  /** Agent names. */
  agents?: string[];
  /** Options per agent name. */
  agentOptions?: Record<string, Record<string, unknown>>;
  /** Dataset ids. */
  datasets?: string[];
}

/**
 * Scheduler → worker. `init` and `group` run cells; `inspect`, `identify`
 * and `resolve` run plugin code the scheduler must not run itself (the
 * contract check, finding and collecting datasets); `alive` answers a
 * worker's question about a lock owner.
 */
export type ToWorker =
  | { type: "init"; config: GridConfig; datasets: Record<string, DatasetFile> }
  | { type: "group"; cells: CellKey[] }
  | { type: "inspect"; request: InspectRequest }
  | { type: "identify"; plugins: string[]; datasets: string[]; options: DatasetRequest }
  | { type: "resolve"; plugins: string[]; datasets: string[]; options: DatasetRequest }
  | { type: "alive"; id: number; alive: boolean | null }
  | { type: "exit" };

/** Worker → scheduler. */
export type FromWorker =
  | { type: "ready"; computePath: string; hint?: string }
  | { type: "started"; cell: CellKey }
  | { type: "progress"; cell: CellKey; phase: string; fraction: number }
  | { type: "log"; cell?: CellKey; message: string }
  | { type: "finished"; cell: CellKey; finalScore: number; seconds: number }
  | { type: "failed"; cell: CellKey; message: string }
  | { type: "idle" }
  | { type: "inspected"; entries: PluginEntry[] }
  | { type: "identified"; identities: Record<string, DatasetIdentity> }
  | { type: "resolved"; records: Record<string, DatasetRecord> }
  | { type: "collecting"; dataset: string; fraction: number }
  | { type: "liveness"; id: number; pid: number }
  | { type: "fatal"; message: string; user?: boolean };

/** One protocol line. */
export function encodeMessage(message: ToWorker | FromWorker): string {
  return messageMarker + JSON.stringify(message) + "\n";
}

/** The message on a line, or `undefined` for a line that is not one. */
export function decodeMessage<T>(line: string): T | undefined {
  if (!line.startsWith(messageMarker)) return undefined;
  return JSON.parse(line.slice(messageMarker.length)) as T;
}

/** Splits a byte stream into text lines. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered) yield buffered;
}
