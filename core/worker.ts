/**
 * A worker process of the grid: it receives the config once, then groups of
 * cells, runs each cell, stores its result atomically and reports back. It
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
import { runCell } from "./cell.ts";
import { cellConfigHash } from "./cell.ts";
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
import { describeHolder, processAlive, setLivenessProbe, withLock } from "./lock.ts";
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
      const store = new ResultStore(config.out);
      for (const cell of message.cells) {
        await runOne(cell, config, registry, store, datasets[cell.dataset]);
      }
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

/**
 * Runs a cell under its lock (`<cell>.json.lock` in the result folder), so
 * two runs into one folder compute each cell once: a cell another live
 * process holds is waited for (and then found finished), a cell whose holder
 * died is taken over.
 */
async function runOne(
  cell: CellKey,
  config: GridConfig,
  registry: PluginRegistry,
  store: ResultStore,
  data: DatasetFile,
): Promise<void> {
  const path = join(config.out, cellPath(cell));
  await withLock(path, () => runUnlocked(cell, config, registry, store, data), {
    onWait: (holder) =>
      send({ type: "log", cell, message: describeHolder(`${path}.lock`, holder) }),
  });
}

async function runUnlocked(
  cell: CellKey,
  config: GridConfig,
  registry: PluginRegistry,
  store: ResultStore,
  data: DatasetFile,
): Promise<void> {
  if (
    await store.isFinished(cell, await cellConfigHash(cell, config, identityKey(data.identity)))
  ) {
    const result = await store.read(cell);
    send({ type: "finished", cell, finalScore: result!.finalScore, seconds: 0 });
    return;
  }
  send({ type: "started", cell });
  let lastProgress = 0;
  try {
    const result = await runCell(cell, {
      config,
      registry,
      datasetPath: data.path,
      datasetIdentity: data.identity,
      reporter: {
        progress(phase, fraction) {
          const now = performance.now();
          if (fraction < 1 && now - lastProgress < 250) return;
          lastProgress = now;
          send({ type: "progress", cell, phase, fraction });
        },
        log(message) {
          send({ type: "log", cell, message });
        },
      },
    });
    await store.write(result);
    send({
      type: "finished",
      cell,
      finalScore: result.finalScore,
      seconds: result.timings.totalSeconds,
    });
  } catch (error) {
    const refusal = permissionRefusal(error);
    const text = refusal
      ? describeRefusal(refusal, config.plugins)
      : error instanceof Error
      ? (error.stack ?? error.message)
      : String(error);
    send({ type: "failed", cell, message: text });
  }
}
