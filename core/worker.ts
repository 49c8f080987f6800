/**
 * A worker process of the grid: it receives the config once, then groups of
 * cells, runs each cell (or each group as one stack of seeds), stores each
 * result atomically and reports back. It
 * exits when the scheduler says so or its stdin closes (the scheduler died).
 *
 * @module
 */
import {
  type DatasetIdentity,
  type DatasetRecord,
  identifyDataset,
  identityKey,
  resolveDataset,
} from "./datasets.ts";
import { makeSource } from "./controls.ts";
import { UserError } from "./errors.ts";
import { describeRefusal } from "./permissions.ts";
import { initCompute } from "./compute.ts";
import { cellConfigHash, runCells } from "./cell.ts";
import { isStackRefusal } from "./contracts/agent.ts";
import {
  type DatasetFile,
  decodeMessage,
  encodeMessage,
  type FromWorker,
  readLines,
  type ToWorker,
} from "./protocol.ts";
import { PluginRegistry, type PluginSet } from "./registry.ts";
import { ResultStore } from "./store.ts";
import type { GridConfig } from "./config.ts";
import { type CellKey, cellPath } from "./results.ts";
import { describeHolder, lockPathOf, processAlive, setLivenessProbe, withLocks } from "./lock.ts";
import { join } from "./paths.ts";

const encoder = new TextEncoder();

function send(message: FromWorker): void {
  Deno.stdout.writeSync(encoder.encode(encodeMessage(message)));
}

/** The scheduler's messages, read in the background, and the worker's questions to it. */
interface Channel {
  /** The next message; `undefined` once stdin closed. */
  next(): Promise<ToWorker | undefined>;
  /** Asks the scheduler whether a process of this host lives. */
  alive(pid: number): Promise<boolean | undefined>;
  /** Whether stdin has closed (the scheduler died or is done). */
  closed(): boolean;
}

function openChannel(): Channel {
  const pending: ToWorker[] = [];
  const answers = new Map<number, (alive: boolean | undefined) => void>();
  let closed = false;
  let asked = 0;
  // Reads stdin in the background so a closed pipe (the scheduler died) ends the worker at once.
  void (async () => {
    for await (const line of readLines(Deno.stdin.readable)) {
      const message = decodeMessage<ToWorker>(line);
      if (message?.type === "alive") {
        answers.get(message.id)?.(message.alive ?? undefined);
        answers.delete(message.id);
      } else if (message) pending.push(message);
    }
    closed = true;
    for (const answer of answers.values()) answer(undefined);
  })();
  return {
    async next() {
      while (!pending.length) {
        if (closed) return undefined;
        await new Promise((done) => setTimeout(done, 20));
      }
      return pending.shift();
    },
    alive(pid) {
      if (closed) return Promise.resolve(undefined);
      const id = ++asked;
      return new Promise((answer) => {
        answers.set(id, answer);
        send({ type: "liveness", id, pid });
      });
    },
    closed: () => closed,
  };
}

/** Serves the scheduler on stdin/stdout until told to exit. */
export async function serveWorker(builtins: PluginSet): Promise<void> {
  let config: GridConfig | undefined;
  let registry: PluginRegistry | undefined;
  let datasets: Record<string, DatasetFile> = {};
  const channel = openChannel();
  // This process may not read /proc; the scheduler tells whether a lock's owner lives.
  setLivenessProbe((pid) => processAlive(pid) ?? channel.alive(pid));
  const watchdog = setInterval(() => {
    if (channel.closed()) Deno.exit(3);
  }, 200);
  const load = async (plugins: string[]): Promise<PluginRegistry> => {
    if (registry) return registry;
    const loaded = new PluginRegistry(builtins);
    for (const plugin of plugins) await loaded.load(plugin);
    return registry = loaded;
  };
  try {
    for (;;) {
      const message = await channel.next();
      if (!message || message.type === "exit") break;
      if (message.type === "init") {
        config = message.config;
        datasets = message.datasets;
        try {
          const info = await initCompute(config.backend);
          await load(config.plugins);
          send({ type: "ready", computePath: info.path, hint: (info as { hint?: string }).hint });
        } catch (error) {
          send(fatal(error, config.plugins));
          break;
        }
        continue;
      }
      if (message.type === "inspect" || message.type === "identify" || message.type === "resolve") {
        try {
          send(await answer(message, load));
        } catch (error) {
          send(
            fatal(error, message.type === "inspect" ? message.request.plugins : message.plugins),
          );
        }
        continue;
      }
      if (message.type !== "group") continue;
      if (!config || !registry) throw new Error("worker: a group arrived before init");
      const setting: RunSetting = {
        config,
        registry,
        store: new ResultStore(config.out),
        data: datasets[message.cells[0].dataset],
      };
      // With seeds stacked a group is the seeds of one (dataset, source, agent):
      // one stack. Otherwise its cells share a trained model and run in turn.
      if (config.stackSeeds === "on") await runLocked(message.cells, setting);
      else for (const cell of message.cells) await runLocked([cell], setting);
      send({ type: "idle" });
    }
  } finally {
    clearInterval(watchdog);
  }
}

/** A message that ends the worker's service: a user's error is marked so the CLI exits 2. */
function fatal(error: unknown, plugins: readonly string[]): FromWorker {
  const refusal = permissionRefusal(error);
  if (refusal) return { type: "fatal", message: describeRefusal(refusal, plugins), user: true };
  return {
    type: "fatal",
    message: error instanceof Error ? error.message : String(error),
    user: error instanceof UserError,
  };
}

/** The permission refusal behind an error (itself or a cause), if any. */
function permissionRefusal(error: unknown): Error | undefined {
  for (let at = error, depth = 0; at instanceof Error && depth < 8; depth++) {
    if (at instanceof Deno.errors.NotCapable || /^Requires \w+ access to /.test(at.message)) {
      return at;
    }
    at = (at as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Runs the plugin code of a scheduler's request: the contract check, or the datasets. */
async function answer(
  message: Extract<ToWorker, { type: "inspect" | "identify" | "resolve" }>,
  load: (plugins: string[]) => Promise<PluginRegistry>,
): Promise<FromWorker> {
  if (message.type === "inspect") {
    const request = message.request;
    const registry = await load(request.plugins);
    // Unknown names and bad options fail here, before any work starts.
    for (const source of request.sources ?? []) {
      makeSource(registry, source, request.sourceOptions?.[source]);
    }
    for (const agent of request.agents ?? []) registry.agent(agent, request.agentOptions?.[agent]);
    for (const dataset of request.datasets ?? []) registry.environmentFor(dataset);
    return { type: "inspected", entries: registry.list() };
  }
  const registry = await load(message.plugins);
  if (message.type === "identify") {
    const identities: Record<string, DatasetIdentity> = {};
    for (const dataset of message.datasets) {
      identities[dataset] = await identifyDataset(
        registry.environmentFor(dataset),
        dataset,
        message.options,
      );
    }
    return { type: "identified", identities };
  }
  const records: Record<string, DatasetRecord> = {};
  for (const dataset of message.datasets) {
    records[dataset] = await resolveDataset(registry.environmentFor(dataset), dataset, {
      ...message.options,
      onProgress: (fraction) => send({ type: "collecting", dataset, fraction }),
      log: (text) => send({ type: "log", message: text }),
    });
  }
  return { type: "resolved", records };
}

/** What a worker runs cells with. */
interface RunSetting {
  config: GridConfig;
  registry: PluginRegistry;
  store: ResultStore;
  /** The cells' dataset (one for all the cells of a group). */
  data: DatasetFile;
}

/**
 * Runs a cell, or the seeds of one stack, under their locks
 * (`<cell>.json.lock` in the result folder), so two runs into one folder
 * compute each cell once: a cell another live process holds is waited for
 * (and then found finished), a cell whose holder died is taken over. A
 * stack holds every one of its cells' locks (see `withLocks`).
 */
async function runLocked(cells: CellKey[], setting: RunSetting): Promise<void> {
  const cellAt = new Map(cells.map((cell) => [join(setting.config.out, cellPath(cell)), cell]));
  await withLocks([...cellAt.keys()], () => runUnfinished(cells, setting), (path) => ({
    onWait: (holder) =>
      send({
        type: "log",
        cell: cellAt.get(path),
        message: describeHolder(lockPathOf(path), holder),
      }),
  }));
}

/** Reports the cells finished meanwhile (by another process) and runs the others. */
async function runUnfinished(cells: CellKey[], setting: RunSetting): Promise<void> {
  const { config, store, data } = setting;
  const pending: CellKey[] = [];
  for (const cell of cells) {
    if (
      await store.isFinished(cell, await cellConfigHash(cell, config, identityKey(data.identity)))
    ) {
      const result = await store.read(cell);
      send({ type: "finished", cell, finalScore: result!.finalScore, seconds: 0 });
    } else pending.push(cell);
  }
  if (pending.length) await runAndStore(pending, setting);
}

/**
 * Runs a cell, or the seeds of one stack, stores each result and reports
 * each cell. A stack's failure fails each of its cells with its message; a
 * stack the agent plugin refuses (see `StackRefusedError`) runs its seeds
 * one at a time instead.
 */
async function runAndStore(cells: CellKey[], setting: RunSetting): Promise<void> {
  const { config, registry, store, data } = setting;
  let started = false;
  const announce = () => {
    started = true;
    for (const cell of cells) send({ type: "started", cell });
  };
  // A lone cell has started when it runs; a stack once the plugin has made it (it may refuse).
  const stacked = cells.length > 1;
  if (!stacked) announce();
  try {
    const results = await runCells(cells, {
      config,
      registry,
      datasetPath: data.path,
      datasetIdentity: data.identity,
      reporterOf: (cell) => {
        let lastProgress = 0;
        return {
          progress(phase, fraction) {
            const now = performance.now();
            if (fraction < 1 && now - lastProgress < 250) return;
            lastProgress = now;
            send({ type: "progress", cell, phase, fraction });
          },
          log(message) {
            send({ type: "log", cell, message });
          },
        };
      },
      ...(stacked ? { onStarted: announce } : {}),
    });
    for (const result of results) {
      await store.write(result);
      send({
        type: "finished",
        cell: result.cell,
        finalScore: result.finalScore,
        seconds: result.timings.totalSeconds,
      });
    }
  } catch (error) {
    if (!started && isStackRefusal(error)) {
      const [{ dataset, source, agent }] = cells;
      send({
        type: "log",
        message: `${dataset}/${source}/${agent}: seeds ${
          cells.map((cell) => cell.seed).join(", ")
        } run one at a time, not stacked: ${error.message}`,
      });
      for (const cell of cells) await runAndStore([cell], setting);
      return;
    }
    const refusal = permissionRefusal(error);
    const text = refusal
      ? describeRefusal(refusal, config.plugins)
      : error instanceof Error
      ? (error.stack ?? error.message)
      : String(error);
    for (const cell of cells) send({ type: "failed", cell, message: text });
  }
}
