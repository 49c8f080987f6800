/**
 * Messages between the grid scheduler and its worker processes: JSON lines
 * on stdin/stdout behind a marker, so stray library output cannot be taken
 * for a message.
 *
 * @module
 */
import type { DatasetIdentity } from "./datasets.ts";
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

/** Scheduler → worker. */
export type ToWorker =
  | { type: "init"; config: GridConfig; datasets: Record<string, DatasetFile> }
  | { type: "group"; cells: CellKey[] }
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
  | { type: "fatal"; message: string };

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
