/**
 * What a result folder holds, cell by cell and shard by shard, read from its
 * files alone: a cell is finished when its result JSON is there, running or
 * failed while a marker file says so, and missing otherwise. Markers live
 * under `markers/` (mirroring `cells/`), are written atomically by the
 * process that runs the shard, and are removed when the cell finishes, so
 * several shards on a shared filesystem never touch each other's files.
 *
 * @module
 */
import { processAlive } from "./lock.ts";
import { type DatasetIdentity, identityKey } from "./datasets.ts";
import { z } from "zod";
import type { GridEvents } from "./scheduler.ts";
import type { ResultStore } from "./store.ts";
import {
  cellId,
  type CellKey,
  cellKeySchema,
  cellOfPath,
  cellPath,
  cellResultSchema,
} from "./results.ts";
import { gridConfigSchema } from "./config.ts";
import { cellConfigHash } from "./cell.ts";
import { listFilesRecursively, readJsonIfExists, writeJsonAtomic } from "./files.ts";
import { join, relative } from "./paths.ts";
import { shardOf } from "./shard.ts";
import { UserError } from "./errors.ts";

/** What a marker file says about a cell that has no result yet. */
export const cellMarkerSchema = z.object({
  /** `running` from start to finish; `failed` when the cell threw or its worker died. */
  state: z.enum(["running", "failed"]),
  cell: cellKeySchema,
  /** The shard that ran it, if the grid was sharded. */
  shard: z.object({ index: z.number().int(), count: z.number().int() }).optional(),
  /** Host and process id of the process that ran the shard. */
  host: z.string(),
  pid: z.number().int(),
  /** ISO 8601 time the marker was written. */
  at: z.string(),
  /** The failure's message (failed only). */
  message: z.string().optional(),
});

/** What a marker file says about a cell that has no result yet. */
export type CellMarker = z.infer<typeof cellMarkerSchema>;

/** The marker's path inside a result folder: `markers/<dataset>/<source>/<agent>/seed-<n>.json`. */
export function markerPath(cell: CellKey): string {
  return cellPath(cell).replace(/^cells\//, "markers/");
}

type ShardRef = { index: number; count: number } | undefined;

async function writeMarker(
  store: ResultStore,
  cell: CellKey,
  shard: ShardRef,
  state: CellMarker["state"],
  message?: string,
): Promise<void> {
  const marker: CellMarker = {
    state,
    cell,
    ...(shard ? { shard: { index: shard.index, count: shard.count } } : {}),
    host: Deno.hostname(),
    pid: Deno.pid,
    at: new Date().toISOString(),
    ...(message !== undefined ? { message } : {}),
  };
  await writeJsonAtomic(join(store.root, markerPath(cell)), marker);
}

/** Records that this process started `cell` (on `shard`, if sharded). */
export function markRunning(store: ResultStore, cell: CellKey, shard?: ShardRef): Promise<void> {
  return writeMarker(store, cell, shard, "running");
}

/** Records that `cell` failed with `message`. */
export function markFailed(
  store: ResultStore,
  cell: CellKey,
  shard: ShardRef,
  message: string,
): Promise<void> {
  return writeMarker(store, cell, shard, "failed", message);
}

/** Removes `cell`'s marker (it finished); no error when there is none. */
export async function clearMarker(store: ResultStore, cell: CellKey): Promise<void> {
  try {
    await Deno.remove(join(store.root, markerPath(cell)));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Grid events that also keep the cell markers, and a way to wait for their writes. */
export interface MarkedEvents {
  /** Pass these to `runGrid` in place of the wrapped events. */
  events: GridEvents;
  /** Resolves when every marker write has landed. */
  flush(): Promise<void>;
}

/**
 * Wraps a run's grid events so that each started cell gets a `running`
 * marker, each failed one a `failed` marker, and each finished one none.
 * Marker writes run one after another in event order; a write that fails is
 * logged and never stops the run.
 */
export function withCellMarkers(
  store: ResultStore,
  shard: ShardRef,
  inner: GridEvents,
): MarkedEvents {
  let chain = Promise.resolve();
  const enqueue = (work: () => Promise<void>) => {
    chain = chain.then(work).catch((error) =>
      inner.log(`cannot update a cell marker in ${store.root}: ${(error as Error).message}`)
    );
  };
  const events: GridEvents = {
    ...inner,
    started(cell, worker) {
      enqueue(() => markRunning(store, cell, shard));
      inner.started?.(cell, worker);
    },
    finished(cell, finalScore, seconds) {
      enqueue(() => clearMarker(store, cell));
      inner.finished?.(cell, finalScore, seconds);
    },
    failed(cell, message) {
      enqueue(() => markFailed(store, cell, shard, message));
      inner.failed?.(cell, message);
    },
  };
  return { events, flush: () => chain };
}

/**
 * A cell's state: `finished` (its result is there), `stale` (a result made
 * with another config; a rerun redoes it), `running`, `interrupted` (a
 * running marker whose process is gone on this host), `failed` or `missing`.
 */
export type CellState =
  | "finished"
  | "stale"
  | "running"
  | "interrupted"
  | "failed"
  | "unreadable"
  | "missing";

/** Every {@link CellState}, in display order. */
export const cellStates: readonly CellState[] = [
  "finished",
  "stale",
  "running",
  "interrupted",
  "failed",
  "unreadable",
  "missing",
];

/** One cell's state and what the files say about it. */
export interface CellStatus {
  /** The cell. */
  cell: CellKey;
  /** Its state. */
  state: CellState;
  /** Its shard, when the shard count is known. */
  shard?: number;
  /** The marker behind `running`, `interrupted` and `failed`. */
  marker?: CellMarker;
}

/** Counts per state for one shard (or for the whole grid). */
export interface ShardStatus {
  /** The shard index, or `undefined` for the whole, unsharded grid. */
  shard?: number;
  /** Cells per state. */
  counts: Record<CellState, number>;
  /** The shard's cells with their states. */
  cells: CellStatus[];
}

/** The state of a result folder. */
export interface RunStatus {
  /** The result folder(s), comma-separated. */
  root: string;
  /** Shards the grid was split into, when known. */
  shardCount?: number;
  /** Whether `run.json` was found (it lists the expected cells). */
  hasManifest: boolean;
  /** Every cell, expected or found. */
  cells: CellStatus[];
  /** One entry per shard (or one for the whole grid). */
  shards: ShardStatus[];
  /** Whole-grid counts. */
  totals: Record<CellState, number>;
}

/** What {@link readStatus} may be told. */
export interface StatusOptions {
  /** The shard count, when `run.json` and the markers do not say it. */
  shardCount?: number;
  /** Whether a process on this host is alive (default: `/proc/<pid>` exists, Linux only). */
  isAlive?: (pid: number) => boolean | undefined;
}

/** Every JSON file under a folder (none when it is missing), sorted. */
function listJson(folder: string): Promise<string[]> {
  return listFilesRecursively(folder, (path) => path.endsWith(".json"));
}

function emptyCounts(): Record<CellState, number> {
  return Object.fromEntries(cellStates.map((state) => [state, 0])) as Record<CellState, number>;
}

function shardCountOf(manifest: Record<string, unknown> | undefined): number | undefined {
  const shard = manifest?.shard as { count?: unknown } | undefined;
  if (typeof shard?.count === "number") return shard.count;
  const shards = manifest?.shards as { shard?: { count?: unknown } }[] | undefined;
  if (Array.isArray(shards)) {
    const counts = shards.map((entry) => entry?.shard?.count).filter((c) => typeof c === "number");
    if (counts.length) return counts[0] as number;
  }
  return undefined;
}

/**
 * Reads the state of every cell of a result folder from its files. Given
 * several folders (one per shard, say), a cell's result or marker in any of
 * them counts, and the grid is the union of their `run.json`s.
 */
export async function readStatus(
  roots: string | string[],
  options: StatusOptions = {},
): Promise<RunStatus> {
  const folders = typeof roots === "string" ? [roots] : roots;
  if (!folders.length) throw new UserError("status: no result folder given");
  const known = new Map<string, CellKey>();
  let manifest: Record<string, unknown> | undefined;
  let manifests = 0;
  const results = new Map<string, string>();
  const markers = new Map<string, CellMarker>();
  const unreadable = new Set<string>();
  for (const root of folders) {
    const runFile = join(root, "run.json");
    let own: Record<string, unknown> | undefined;
    try {
      own = (await readJsonIfExists(runFile)) as Record<string, unknown> | undefined;
    } catch (error) {
      throw new UserError((error as Error).message);
    }
    if (own) {
      const expected = z.array(cellKeySchema).safeParse(own.expectedCells);
      if (!expected.success) {
        throw new UserError(`'${runFile}': expectedCells is missing or not a list of cells`);
      }
      for (const cell of expected.data) known.set(cellId(cell), cell);
      manifest ??= own;
      manifests += 1;
    }
    for (const path of await listJson(join(root, "cells"))) {
      const parsed = cellResultSchema.safeParse(
        await readJsonIfExists(path).catch(() => undefined),
      );
      if (!parsed.success) {
        // A truncated or corrupt result: say so, under the cell its path names.
        const cell = cellOfPath(relative(root, path));
        if (cell) {
          known.set(cellId(cell), known.get(cellId(cell)) ?? cell);
          unreadable.add(cellId(cell));
        }
        continue;
      }
      const id = cellId(parsed.data.cell);
      known.set(id, known.get(id) ?? parsed.data.cell);
      results.set(id, parsed.data.configHash);
    }
    for (const path of await listJson(join(root, "markers"))) {
      const parsed = cellMarkerSchema.safeParse(
        await readJsonIfExists(path).catch(() => undefined),
      );
      if (!parsed.success) continue;
      const id = cellId(parsed.data.cell);
      known.set(id, known.get(id) ?? parsed.data.cell);
      const earlier = markers.get(id);
      if (!earlier || earlier.at < parsed.data.at) markers.set(id, parsed.data);
    }
  }
  const root = folders.join(", ");
  if (!manifests && known.size === 0) {
    throw new UserError(`no run in '${root}': expected a run.json, cells/ or markers/ there`);
  }

  // A config this version cannot read (another version wrote it) only turns off the stale check.
  const parsedConfig = manifest ? gridConfigSchema.safeParse(manifest.config) : undefined;
  const config = parsedConfig?.success ? parsedConfig.data : undefined;
  // Runs from before datasets were part of a cell's identity record none: no stale check then.
  const identities = manifest?.datasets as Record<string, DatasetIdentity> | undefined;
  const shardCount = options.shardCount ?? shardCountOf(manifest) ??
    [...markers.values()].find((marker) => marker.shard)?.shard?.count;
  const isAlive = options.isAlive ?? processAlive;
  const host = Deno.hostname();

  const cells: CellStatus[] = [];
  for (const [id, cell] of known) {
    const shard = shardCount ? shardOf(cell, shardCount) : undefined;
    const marker = markers.get(id);
    const hash = results.get(id);
    let state: CellState;
    if (hash !== undefined) {
      const identity = identities?.[cell.dataset];
      state = config && identity &&
          hash !== (await cellConfigHash(cell, config, identityKey(identity)))
        ? "stale"
        : "finished";
    } else if (unreadable.has(id)) state = "unreadable";
    else if (marker?.state === "failed") state = "failed";
    else if (marker?.state === "running") {
      state = marker.host === host && isAlive(marker.pid) === false ? "interrupted" : "running";
    } else state = "missing";
    cells.push({
      cell,
      state,
      ...(shard !== undefined ? { shard } : {}),
      ...(marker && hash === undefined ? { marker } : {}),
    });
  }

  const totals = emptyCounts();
  for (const status of cells) totals[status.state] += 1;
  const shards: ShardStatus[] = [];
  if (shardCount) {
    for (let index = 0; index < shardCount; index++) {
      const mine = cells.filter((status) => status.shard === index);
      const counts = emptyCounts();
      for (const status of mine) counts[status.state] += 1;
      shards.push({ shard: index, counts, cells: mine });
    }
  } else shards.push({ counts: totals, cells });
  return { root, shardCount, hasManifest: manifest !== undefined, cells, shards, totals };
}

/** A plain-text view of a status: a table of counts per shard, then the cells that need attention. */
export function renderStatus(status: RunStatus, listLimit = 20): string {
  const lines: string[] = [];
  lines.push(
    `${status.root}: ${status.cells.length} cells` +
      (status.shardCount ? ` in ${status.shardCount} shards` : " (not sharded)") +
      (status.hasManifest ? "" : " (no run.json: only cells with files are known)"),
  );
  const header = ["shard", ...cellStates];
  const rows = status.shards.map((shard) => [
    shard.shard === undefined ? "all" : `${shard.shard}/${status.shardCount}`,
    ...cellStates.map((state) => String(shard.counts[state])),
  ]);
  if (status.shardCount) rows.push(["total", ...cellStates.map((s) => String(status.totals[s]))]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column].length))
  );
  const format = (row: string[]) =>
    row.map((text, i) => text.padEnd(widths[i])).join("  ").trimEnd();
  lines.push(format(header), ...rows.map(format));
  for (
    const state of ["failed", "unreadable", "interrupted", "running", "stale", "missing"] as const
  ) {
    const matching = status.cells.filter((entry) => entry.state === state);
    if (!matching.length) continue;
    lines.push("", `${state}:`);
    for (const entry of matching.slice(0, listLimit)) {
      const where = entry.shard !== undefined ? ` [shard ${entry.shard}]` : "";
      const marker = entry.marker;
      const by = marker ? ` ${marker.host} pid ${marker.pid} since ${marker.at}` : "";
      const why = marker?.message ? `: ${marker.message.split("\n")[0]}` : "";
      lines.push(`  ${cellId(entry.cell)}${where}${by}${why}`);
    }
    if (matching.length > listLimit) lines.push(`  … and ${matching.length - listLimit} more`);
  }
  return lines.join("\n");
}
