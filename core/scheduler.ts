/**
 * Runs a grid: plans the cells, skips finished ones, resolves datasets once,
 * and hands groups of cells to worker processes (one per core by default).
 *
 * @module
 */
import type { GridConfig } from "./config.ts";
import { workerCount } from "./config.ts";
import { cellIdentity, configurationChanges, identityHash } from "./cell.ts";
import { UserError } from "./errors.ts";
import { groupCells, groupSeedStacks, planCells } from "./plan.ts";
import type { DatasetFile, ToWorker } from "./protocol.ts";
import { PluginHost, workerAccess, WorkerProcess } from "./host.ts";
import { cellId, type CellKey, cellPath } from "./results.ts";
import { ResultStore } from "./store.ts";
import { describeIdentity, identityKey } from "./datasets.ts";
import { readJsonIfExists, writeJsonAtomic } from "./files.ts";
import { join } from "./paths.ts";
import { runtimeVersions } from "./version.ts";

/** What the scheduler tells its caller as the grid runs. */
export interface GridEvents {
  /** A line of information. */
  log(message: string): void;
  /** The compute path the workers are on, once. */
  compute?(path: string, hint?: string): void;
  /** Cells planned: `total` in all, `finished` already done. */
  planned?(total: number, finished: number): void;
  /** Progress of collecting a dataset. */
  collecting?(dataset: string, fraction: number): void;
  /** A cell started on a worker. */
  started?(cell: CellKey, worker: number): void;
  /** Progress within a running cell. */
  progress?(cell: CellKey, phase: string, fraction: number): void;
  /** A cell finished. */
  finished?(cell: CellKey, finalScore: number, seconds: number): void;
  /** A cell failed. */
  failed?(cell: CellKey, message: string): void;
  /** A log line from inside a cell. */
  cellLog?(cell: CellKey, message: string): void;
}

/** Where workers come from and which cells to run. */
export interface GridOptions {
  /** The module a worker process runs (it calls `serveWorker`). */
  workerModule: string | URL;
  /** Run only these cells (a shard); default: every cell of the grid. */
  cells?: CellKey[];
  /** Extra fields recorded in `run.json` (e.g. the shard). */
  manifest?: Record<string, unknown>;
  /** A plugin host already started for this grid (the CLI's, which checked the plugins). */
  host?: PluginHost;
}

/** What a grid run ended with. */
export interface GridOutcome {
  /** Cells planned. */
  total: number;
  /** Cells already finished before this run. */
  skipped: number;
  /** Cells finished by this run. */
  finished: number;
  /** Cells that failed, with their messages. */
  failed: { cell: CellKey; message: string }[];
  /** The compute path the workers reported. */
  computePath?: string;
}

/**
 * Runs every unfinished cell of the grid and returns how it went. No plugin
 * code runs in this process: datasets are found and collected by a plugin
 * host (`options.host`, or one started here) and cells by worker processes,
 * all with the permissions of {@link workerAccess}.
 */
export async function runGrid(
  config: GridConfig,
  events: GridEvents,
  options: GridOptions,
): Promise<GridOutcome> {
  const host = options.host ?? new PluginHost(options.workerModule, config, events);
  try {
    return await runWithHost(config, host, events, options);
  } finally {
    if (!options.host) await host.close();
  }
}

async function runWithHost(
  config: GridConfig,
  host: PluginHost,
  events: GridEvents,
  options: GridOptions,
): Promise<GridOutcome> {
  const store = new ResultStore(config.out);
  const cells = options.cells ?? planCells(config);
  // What each dataset's data are, before anything is collected: a changed
  // file or collection setting makes its cells unfinished.
  const datasetOptions = {
    dataDirs: config.dataDirs,
    cacheDir: config.cacheDir,
    preset: config.preset,
  };
  const identities = await host.identify(
    [...new Set(cells.map((cell) => cell.dataset))],
    datasetOptions,
  );
  for (const [dataset, identity] of Object.entries(identities)) {
    events.log(describeIdentity(dataset, identity));
  }
  const pending: CellKey[] = [];
  const conflicts: string[] = [];
  for (const cell of cells) {
    const identity = cellIdentity(cell, config, identityKey(identities[cell.dataset]));
    const stored = await store.read(cell);
    if (stored?.configHash === await identityHash(identity)) continue;
    // A finished cell of another configuration is never overwritten.
    const changes = stored ? configurationChanges(stored, identity) : [];
    if (changes.length) conflicts.push(`${cellPath(cell)}: ${changes.join(", ")}`);
    else pending.push(cell);
  }
  if (conflicts.length) {
    throw new UserError(
      `${config.out}: ${conflicts.length} finished cell(s) were made by another configuration ` +
        `and would be overwritten; use another --out (or remove them). ${
          conflicts.slice(0, 3).join("; ")
        }` +
        (conflicts.length > 3 ? `; … ${conflicts.length - 3} more` : ""),
    );
  }
  const outcome: GridOutcome = {
    total: cells.length,
    skipped: cells.length - pending.length,
    finished: 0,
    failed: [],
  };
  events.planned?.(cells.length, outcome.skipped);
  const manifestPath = join(config.out, "run.json");
  const previous = (await readJsonIfExists(manifestPath)) as Record<string, unknown> | undefined;
  const manifest: Record<string, unknown> = {
    config,
    expectedCells: planCells(config),
    datasets: identities,
    backend: config.backend,
    versions: runtimeVersions(),
    startedAt: (previous?.startedAt as string | undefined) ?? new Date().toISOString(),
    ...options.manifest,
  };
  await writeJsonAtomic(manifestPath, manifest);
  if (!pending.length) {
    events.log(`all ${cells.length} cells already finished in ${config.out}`);
    return outcome;
  }

  const datasets: Record<string, DatasetFile> = {};
  const records = await host.resolve(
    [...new Set(pending.map((cell) => cell.dataset))],
    datasetOptions,
  );
  for (const [dataset, record] of Object.entries(records)) {
    datasets[dataset] = { path: record.path, identity: identities[dataset] };
  }

  const stacked = config.stackSeeds === "on";
  const groups = stacked ? groupSeedStacks(pending, workerCount(config)) : groupCells(pending);
  const workers = Math.min(workerCount(config), groups.length);
  events.log(
    `${pending.length} of ${cells.length} cells to run in ${groups.length} ${
      stacked ? "seed stacks" : "groups"
    } on ${workers} worker${workers > 1 ? "s" : ""}`,
  );
  const access = workerAccess(config);
  let computeReported = false;
  /**
   * Runs one worker process until the queue is empty. Returns `true` when it
   * died in the middle of a cell (its cells are failed) while groups are
   * still queued, so that a new worker should take them.
   */
  const runWorker = async (index: number): Promise<boolean> => {
    const child = new WorkerProcess(options.workerModule, access);
    const post = (message: ToWorker) => child.post(message);
    const inFlightCells = new Map<string, CellKey>();
    let fatal: string | undefined;
    const handOut = async (): Promise<boolean> => {
      const group = groups.shift();
      if (!group) {
        await post({ type: "exit" });
        return false;
      }
      for (const cell of group) inFlightCells.set(cellId(cell), cell);
      await post({ type: "group", cells: group });
      return true;
    };
    await post({ type: "init", config, datasets });
    for await (
      const message of child.messages((line) => events.log(`[worker ${index}] ${line}`))
    ) {
      if (message.type === "ready") {
        if (!computeReported) {
          computeReported = true;
          outcome.computePath = message.computePath;
          events.compute?.(message.computePath, message.hint);
        }
        if (!(await handOut())) break;
      } else if (message.type === "idle") {
        if (!(await handOut())) break;
      } else if (message.type === "started") {
        events.started?.(message.cell, index);
      } else if (message.type === "progress") {
        events.progress?.(message.cell, message.phase, message.fraction);
      } else if (message.type === "log") {
        if (message.cell) events.cellLog?.(message.cell, message.message);
        else events.log(message.message);
      } else if (message.type === "finished") {
        inFlightCells.delete(cellId(message.cell));
        if (message.seconds > 0) outcome.finished += 1;
        else outcome.skipped += 1;
        events.finished?.(message.cell, message.finalScore, message.seconds);
      } else if (message.type === "failed") {
        inFlightCells.delete(cellId(message.cell));
        outcome.failed.push({ cell: message.cell, message: message.message });
        events.failed?.(message.cell, message.message);
      } else if (message.type === "fatal") {
        fatal = message.message;
        break;
      }
    }
    const status = await child.close();
    const lost = [...inFlightCells.values()];
    if (fatal || lost.length) {
      const reason = fatal ?? `worker ${index} exited with code ${status.code}`;
      for (const cell of lost) {
        outcome.failed.push({ cell, message: reason });
        events.failed?.(cell, reason);
      }
      if (fatal) {
        // The remaining groups cannot run on a worker that cannot start.
        for (const group of groups.splice(0)) {
          for (const cell of group) {
            outcome.failed.push({ cell, message: reason });
            events.failed?.(cell, reason);
          }
        }
      }
    }
    return !fatal && lost.length > 0 && groups.length > 0;
  };
  // A worker that dies mid-cell is replaced, so the groups queued behind it
  // still run; every death fails at least one cell, so this ends.
  let nextIndex = workers;
  const runSlot = async (first: number): Promise<void> => {
    let index = first;
    while (await runWorker(index)) {
      const replacement = nextIndex++;
      events.log(
        `worker ${index} died; worker ${replacement} takes the ${groups.length} queued group(s)`,
      );
      index = replacement;
    }
  };
  await Promise.all([...Array(workers).keys()].map(runSlot));
  // Anything still queued had no worker left to run it: say so, cell by cell.
  for (const group of groups.splice(0)) {
    for (const cell of group) {
      const reason = "not run: every worker exited before reaching it";
      outcome.failed.push({ cell, message: reason });
      events.failed?.(cell, reason);
    }
  }
  manifest.finishedAt = new Date().toISOString();
  manifest.computePath = outcome.computePath;
  await writeJsonAtomic(manifestPath, manifest);
  return outcome;
}
