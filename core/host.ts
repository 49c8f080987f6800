/**
 * Worker processes as the scheduler sees them: started with the least
 * permissions the harness needs (see permissions.ts), spoken to in protocol
 * lines. Every piece of plugin code runs in one of them: the cells, the
 * contract check of a user's plugin and the finding and collecting of
 * datasets. The main process only plans, schedules and reports.
 *
 * @module
 */
import type { GridConfig } from "./config.ts";
import { locateBlas } from "./compute.ts";
import type { DatasetIdentity, DatasetRecord } from "./datasets.ts";
import { UserError } from "./errors.ts";
import { processAlive } from "./lock.ts";
import { resolve } from "./paths.ts";
import {
  packageFolders,
  permissionFlags,
  pluginFolders,
  projectRoot,
  type WorkerAccess,
  workerEnvironment,
} from "./permissions.ts";
import {
  type DatasetRequest,
  decodeMessage,
  encodeMessage,
  type FromWorker,
  type InspectRequest,
  readLines,
  type ToWorker,
} from "./protocol.ts";
import type { PluginEntry } from "./registry.ts";

/** The folders and grants a worker of this grid gets. */
export function workerAccess(
  config:
    & Pick<GridConfig, "out" | "cacheDir" | "dataDirs" | "plugins" | "pluginAllow">
    & Partial<Pick<GridConfig, "backend">>,
): WorkerAccess {
  const root = projectRoot();
  const out = resolve(config.out);
  const cache = resolve(config.cacheDir);
  return {
    read: [
      ...(root ? [root] : []),
      ...packageFolders(root),
      ...pluginFolders(config.plugins),
      ...config.dataDirs.map((folder) => resolve(folder)),
      out,
      cache,
    ],
    write: [out, cache],
    ffi: locateBlas(),
    // The tensorflow backend is a native Node-API addon: FFI in whole, as the user chose it.
    grants: config.backend === "tensorflow" ? [...config.pluginAllow, "ffi"] : config.pluginAllow,
  };
}

/** A started worker process and its protocol lines. */
export class WorkerProcess {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #encoder = new TextEncoder();
  // One reader for the life of the process: a consumer that stops reading
  // (a request answered) must not cancel the stream under the next one.
  #lines: AsyncGenerator<string>;

  /**
   * Starts `module` (which calls `serveWorker`) with `access`. The BLAS
   * library found is named to it in `PGD_BLAS_LIB`, the one file its FFI
   * may open.
   */
  constructor(module: string | URL, access: WorkerAccess) {
    const env = workerEnvironment(access.grants);
    const blas: Record<string, string> = access.ffi ? { PGD_BLAS_LIB: access.ffi } : {};
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissionFlags(access), "--quiet", String(module)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      clearEnv: env !== undefined,
      env: { ...env, ...blas },
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = readLines(this.#child.stdout);
  }

  /** The worker's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Sends a message; a worker that has exited is ignored (its end is read from `messages`). */
  async post(message: ToWorker): Promise<void> {
    await this.#writer.write(this.#encoder.encode(encodeMessage(message))).catch(() => {});
  }

  /**
   * The worker's messages until its stdout ends. Questions about lock owners
   * are answered here (the worker cannot read `/proc`); other lines go to
   * `onLine`.
   */
  async *messages(onLine: (line: string) => void): AsyncGenerator<FromWorker> {
    for (;;) {
      const next = await this.#lines.next();
      if (next.done) return;
      const line = next.value;
      const message = decodeMessage<FromWorker>(line);
      if (!message) {
        if (line.trim()) onLine(line);
      } else if (message.type === "liveness") {
        await this.post({
          type: "alive",
          id: message.id,
          alive: processAlive(message.pid) ?? null,
        });
      } else yield message;
    }
  }

  /** Closes the worker's stdin (it exits) and waits for it. */
  async close(): Promise<Deno.CommandStatus> {
    await this.#writer.close().catch(() => {});
    return await this.#child.status;
  }
}

/** What a plugin host reports while it works. */
export interface HostEvents {
  /** A line of information. */
  log(message: string): void;
  /** Progress of collecting a dataset. */
  collecting?(dataset: string, fraction: number): void;
}

/**
 * A worker process that runs plugin code on the scheduler's behalf: checks
 * plugins against their contracts, identifies and collects datasets. Errors
 * it reports come back as they were thrown there (a user's error as a
 * {@link UserError}).
 */
export class PluginHost {
  #process: WorkerProcess;
  #plugins: string[];
  #events: HostEvents;

  /** Starts a host for a grid's (or a command's) plugins. */
  constructor(
    module: string | URL,
    config: Pick<GridConfig, "out" | "cacheDir" | "dataDirs" | "plugins" | "pluginAllow">,
    events: HostEvents,
  ) {
    this.#process = new WorkerProcess(module, workerAccess(config));
    this.#plugins = config.plugins;
    this.#events = events;
  }

  async #ask<T extends FromWorker["type"]>(
    message: ToWorker,
    reply: T,
  ): Promise<Extract<FromWorker, { type: T }>> {
    await this.#process.post(message);
    for await (const answer of this.#process.messages((line) => this.#events.log(line))) {
      if (answer.type === reply) return answer as Extract<FromWorker, { type: T }>;
      if (answer.type === "log") this.#events.log(answer.message);
      else if (answer.type === "collecting") {
        this.#events.collecting?.(answer.dataset, answer.fraction);
      } else if (answer.type === "fatal") {
        throw answer.user ? new UserError(answer.message) : new Error(answer.message);
      }
    }
    const status = await this.#process.close();
    throw new Error(
      `plugin host exited with code ${status.code} before answering '${message.type}'`,
    );
  }

  /** Loads the plugins and checks every name and option of `request`; returns every plugin. */
  async inspect(request: Omit<InspectRequest, "plugins"> = {}): Promise<PluginEntry[]> {
    const answer = await this.#ask(
      { type: "inspect", request: { ...request, plugins: this.#plugins } },
      "inspected",
    );
    return answer.entries;
  }

  /** What each dataset's data are (a D4RL file's hash, or the collected dataset's key). */
  async identify(
    datasets: string[],
    options: DatasetRequest,
  ): Promise<Record<string, DatasetIdentity>> {
    const message = { type: "identify", plugins: this.#plugins, datasets, options } as const;
    return (await this.#ask(message, "identified")).identities;
  }

  /** Each dataset's file: found, or collected now. */
  async resolve(
    datasets: string[],
    options: DatasetRequest,
  ): Promise<Record<string, DatasetRecord>> {
    const message = { type: "resolve", plugins: this.#plugins, datasets, options } as const;
    return (await this.#ask(message, "resolved")).records;
  }

  /** Ends the host process. */
  async close(): Promise<void> {
    await this.#process.post({ type: "exit" });
    await this.#process.close();
  }
}
