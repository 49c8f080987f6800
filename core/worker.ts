/**
 * A worker process of the grid: it receives the config once, then groups of
 * cells, runs each cell, stores its result atomically and reports back. It
 * exits when the scheduler says so or its stdin closes (the scheduler died).
 *
 * @module
 */
import { identityKey } from "./datasets.ts";
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
import { describeHolder, withLock } from "./lock.ts";
import { join } from "./paths.ts";

const encoder = new TextEncoder();

function send(message: FromWorker): void {
  Deno.stdout.writeSync(encoder.encode(encodeMessage(message)));
}

/** Serves the scheduler on stdin/stdout until told to exit. */
export async function serveWorker(builtins: PluginSet): Promise<void> {
  let config: GridConfig | undefined;
  let registry: PluginRegistry | undefined;
  let datasets: Record<string, DatasetFile> = {};
  const lines = readLines(Deno.stdin.readable);
  const pending: ToWorker[] = [];
  let closed = false;
  // Reads stdin in the background so a closed pipe (the scheduler died) ends the worker at once.
  const reader = (async () => {
    for await (const line of lines) {
      const message = decodeMessage<ToWorker>(line);
      if (message) pending.push(message);
    }
    closed = true;
  })();
  const next = async (): Promise<ToWorker | undefined> => {
    while (!pending.length) {
      if (closed) return undefined;
      await new Promise((done) => setTimeout(done, 20));
    }
    return pending.shift();
  };
  const watchdog = setInterval(() => {
    if (closed) Deno.exit(3);
  }, 200);
  try {
    for (;;) {
      const message = await next();
      if (!message || message.type === "exit") break;
      if (message.type === "init") {
        config = message.config;
        datasets = message.datasets;
        try {
          const info = await initCompute(config.backend);
          registry = new PluginRegistry(builtins);
          for (const plugin of config.plugins) await registry.load(plugin);
          send({ type: "ready", computePath: info.path, hint: (info as { hint?: string }).hint });
        } catch (error) {
          send({ type: "fatal", message: (error as Error).message });
          break;
        }
        continue;
      }
      if (!config || !registry) throw new Error("worker: a group arrived before init");
      const store = new ResultStore(config.out);
      for (const cell of message.cells) {
        await runOne(cell, config, registry, store, datasets[cell.dataset]);
      }
      send({ type: "idle" });
    }
  } finally {
    clearInterval(watchdog);
    void reader;
  }
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
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    send({ type: "failed", cell, message: text });
  }
}
