/**
 * The pgd-bench command line: `bench`, `run`, `collect`, `datasets`,
 * `report` and `plugins`. The only module that parses flags or prints.
 *
 * @module
 */
import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import pc from "picocolors";
import {
  type GridConfig,
  loadGridConfig,
  parseGridConfig,
  stackSeedModes,
} from "../core/config.ts";
import { PluginHost } from "../core/host.ts";
import { UserError } from "../core/errors.ts";
import { PluginRegistry } from "../core/registry.ts";
import { runGrid } from "../core/scheduler.ts";
import { listCachedDatasets } from "../core/datasets.ts";
import { presetNames } from "../core/contracts/common.ts";
import { backendNames, initCompute } from "../core/compute.ts";
import { analyze } from "../analysis/analyze.ts";
import { harnessProviders } from "../analysis/providers.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import { writeReports } from "../reports/mod.ts";
import {
  defaultNoiseScales,
  measuredError,
  noiseGrid,
  type OneStepError,
  subjectGrid,
} from "./controls.ts";
import { gridProgress } from "./progress.ts";
import { tableColumns } from "./terminal.ts";
import { integerFlag, list, numberListFlag, positiveNumberFlag, seedsFlag } from "./flags.ts";
import {
  assertSameShard,
  markedEvents,
  planShard,
  scaleOutCommands,
  shardCountOption,
  shardOption,
} from "./scale_out.ts";

const workerModule = new URL("./worker.ts", import.meta.url).href;

function json(flag: string) {
  return (value: string): Record<string, Record<string, unknown>> => {
    try {
      return JSON.parse(value);
    } catch (error) {
      throw new UserError(`${flag}: not valid JSON (${(error as Error).message})`);
    }
  };
}

function collectPlugins(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Grid flags shared by `bench` and `run`. */
function gridCommand(name: string, description: string) {
  return new Command(name)
    .description(description)
    .option("-c, --config <file>", "grid config JSON file (flags override it)")
    .option("--datasets <ids>", "comma-separated dataset ids, e.g. maze2d-umaze", list)
    .option("--sources <names>", "comma-separated data sources, e.g. real,unguided", list)
    .option("--agents <names>", "comma-separated agents, e.g. td3bc,iql", list)
    .option(
      "--seeds <n|list>",
      "a count N (seeds 0…N−1), or a comma-separated list of seeds and ranges (0,3,7 or 4-7)",
      seedsFlag,
    )
    .addOption(new Option("--preset <name>", "size preset").choices(presetNames))
    .addOption(new Option("--backend <name>", "compute backend").choices(backendNames))
    .option("-o, --out <dir>", "result folder of the run")
    .option(
      "-w, --workers <n>",
      "worker processes (default, or 0: one per core)",
      integerFlag("--workers", 0),
    )
    .addOption(
      new Option(
        "--stack-seeds <mode>",
        "on: train an agent's seeds as one stack per worker (same numbers); default off",
      ).choices(stackSeedModes),
    )
    .option("--plugin <path>", "load a plugin module by path (repeatable)", collectPlugins)
    .option(
      "--plugin-allow <permissions>",
      "grant plugins more than the harness needs, as Deno names it: net, read=/srv/x, env=TOKEN, run, import",
      list,
    )
    .option(
      "--source-options <json>",
      'options per source, e.g. {"policy-guided":{"guidanceStrength":2}}',
      json("--source-options"),
    )
    .option("--agent-options <json>", "options per agent as JSON", json("--agent-options"))
    .option("--data-dir <dirs>", "folders searched for D4RL HDF5 files", list)
    .option("--cache-dir <dir>", "folder for collected datasets and trained models")
    .option(
      "--hook-timeout <seconds>",
      "longest a data source's prepare or generate may run (default: by preset)",
      positiveNumberFlag("--hook-timeout"),
    )
    .addOption(shardOption())
    .addOption(shardCountOption())
    .option("-v, --verbose", "print each cell's evaluations");
}

type GridFlags = ReturnType<ReturnType<typeof gridCommand>["opts"]>;

async function gridConfigFrom(
  flags: GridFlags,
  defaults: Record<string, unknown> = {},
): Promise<GridConfig> {
  return await loadGridConfig(flags.config, {
    ...defaults,
    datasets: flags.datasets,
    sources: flags.sources,
    agents: flags.agents,
    seeds: flags.seeds,
    preset: flags.preset,
    backend: flags.backend,
    out: flags.out,
    workers: flags.workers,
    stackSeeds: flags.stackSeeds,
    plugins: flags.plugin,
    pluginAllow: flags.pluginAllow,
    sourceOptions: flags.sourceOptions,
    agentOptions: flags.agentOptions,
    dataDirs: flags.dataDir,
    cacheDir: flags.cacheDir,
    hookTimeoutSeconds: flags.hookTimeout,
  });
}

/**
 * A plugin host for a command's plugins: a worker process with the least
 * permissions, where the plugins are loaded and checked (this process never
 * imports them). Its folders are the grid's, or a command's own.
 */
function hostFor(
  config: Partial<Pick<GridConfig, "out" | "cacheDir" | "dataDirs" | "plugins" | "pluginAllow">>,
  log: (message: string) => void = (message) => console.error(pc.dim(message)),
): PluginHost {
  const checked = parseGridConfig({
    plugins: config.plugins,
    pluginAllow: config.pluginAllow,
    ...(config.cacheDir ? { cacheDir: config.cacheDir } : {}),
    ...(config.dataDirs ? { dataDirs: config.dataDirs } : {}),
  }, "flags");
  // A command without a result folder writes nowhere but the cache.
  return new PluginHost(workerModule, { ...checked, out: config.out ?? checked.cacheDir }, { log });
}

/** Runs `work` with a plugin host, closing it afterwards. */
async function withHost<T>(host: PluginHost, work: (host: PluginHost) => Promise<T>): Promise<T> {
  try {
    return await work(host);
  } finally {
    await host.close();
  }
}

async function runAndReport(config: GridConfig, flags: GridFlags): Promise<void> {
  const out = await Deno.stat(config.out).catch(() => undefined);
  if (out && !out.isDirectory) {
    throw new UserError(`--out '${config.out}': is a file; expected a result folder`);
  }
  // A data folder the user named must exist: a typo would silently mean collected data.
  for (const folder of flags.dataDir ?? []) {
    const found = await Deno.stat(folder).catch(() => undefined);
    if (!found?.isDirectory) {
      throw new UserError(
        `--data-dir '${folder}': no such folder; expected a folder holding D4RL files (e.g. maze2d-umaze-v1.hdf5)`,
      );
    }
  }
  const shard = planShard(config, flags);
  await assertSameShard(config.out, shard);
  const progress = gridProgress(Boolean(flags.verbose));
  const marked = markedEvents(config, shard, progress);
  const host = new PluginHost(workerModule, config, marked.events);
  const started = performance.now();
  let outcome;
  try {
    // Plugins load and unknown names and bad options fail here, in a worker,
    // before any work starts.
    await host.inspect(config);
    progress.log(shard.message);
    outcome = await runGrid(config, marked.events, {
      workerModule,
      cells: shard.cells,
      manifest: shard.manifest,
      host,
    });
  } finally {
    await host.close();
    await marked.flush();
    progress.stop();
  }
  const minutes = (performance.now() - started) / 60000;
  console.log(
    `${outcome.finished} cells finished, ${outcome.skipped} already done, ` +
      `${outcome.failed.length} failed` +
      ` in ${minutes.toFixed(1)} min`,
  );
  const report = await writeReports(config.out, { terminalColumns: tableColumns() });
  console.log("\n" + report.terminal);
  console.log(`report: ${report.htmlPath}`);
  console.log(`summary: ${report.markdownPath}`);
  if (outcome.failed.length) {
    throw new UserError(
      `${outcome.failed.length} cell(s) failed:\n` +
        outcome.failed.map((f) =>
          `  ${f.cell.dataset}/${f.cell.source}/${f.cell.agent}/seed-${f.cell.seed}: ${
            f.message.split("\n")[0]
          }`
        ).join("\n"),
    );
  }
}

/**
 * The action of `bench` and `run`: the grid the flags (and `--config`)
 * describe, the default grid where they describe none, then its reports.
 */
async function runGridCommand(flags: GridFlags): Promise<void> {
  await runAndReport(await gridConfigFrom(flags), flags);
}

/** The program, built fresh so tests can run it in-process. */
export function program(): Command {
  const root = new Command("pgd-bench")
    .description("Offline RL with synthetic experience: policy-guided diffusion benchmarks")
    .showHelpAfterError();

  // `bench` is `run` under the name a first-time user looks for: with no flags
  // both run the default grid, so they share one action.
  root.addCommand(
    gridCommand(
      "bench",
      "run the default benchmark grid (maze2d-umaze, quick preset), then report (= `run` without flags)",
    ).action(runGridCommand),
  );
  root.addCommand(
    gridCommand("run", "run a grid from a config file and/or flags, then report")
      .action(runGridCommand),
  );
  root.addCommand(
    gridCommand(
      "controls",
      "a source beside its controls: exact dynamics, shuffled actions, a state-noise curve",
    )
      .option("--subject <source>", "the source whose data are examined", "unguided")
      .option(
        "--noise-error <position,velocity>",
        "the one-step error the noise curve is a multiple of (default: the subject's, measured)",
        numberListFlag("--noise-error", 0),
      )
      .option(
        "--noise-scales <list>",
        "multiples of the error in the noise curve",
        numberListFlag("--noise-scales", 0),
        defaultNoiseScales,
      )
      .action(async (flags) => {
        if (flags.sources) {
          throw new UserError("controls: --sources: the sources are set by --subject");
        }
        const base = subjectGrid(
          await gridConfigFrom(flags, {
            out: "results/controls",
            sources: [...new Set(["real", flags.subject])],
          }),
          flags.subject,
        );
        let error: OneStepError;
        if (flags.noiseError) {
          const [positionError, velocityError] = flags.noiseError;
          if (!(positionError >= 0) || !(velocityError >= 0) || flags.noiseError.length !== 2) {
            throw new UserError(
              "controls: --noise-error: expected two non-negative numbers, <position>,<velocity>",
            );
          }
          error = { positionError, velocityError };
        } else {
          await runAndReport(base, flags);
          error = await measuredError(base.out, base.datasets[0], flags.subject);
        }
        console.log(
          `controls: state noise in multiples of position ${error.positionError.toPrecision(3)}, ` +
            `velocity ${error.velocityError.toPrecision(3)}`,
        );
        await runAndReport(noiseGrid(base, error, flags.noiseScales), flags);
      }),
  );
  root.addCommand(
    new Command("collect")
      .description(
        "collect D4RL-layout datasets where no D4RL file is at hand (cached per machine)",
      )
      .argument("<datasets...>", "dataset ids, e.g. maze2d-umaze")
      .addOption(
        new Option("--preset <name>", "size preset").choices(presetNames).default("quick" as const),
      )
      .option("--seed <n>", "collection seed", integerFlag("--seed", 0), 0)
      .option("--cache-dir <dir>", "cache folder", ".cache")
      .option("--data-dir <dirs>", "folders searched for D4RL files first", list, ["data/d4rl"])
      .option("--plugin <path>", "load a plugin module (repeatable)", collectPlugins)
      .option("--plugin-allow <permissions>", "grant plugins more (see `run --help`)", list)
      .action(async (datasets, flags) => {
        const host = hostFor({
          plugins: flags.plugin ?? [],
          pluginAllow: flags.pluginAllow,
          cacheDir: flags.cacheDir,
          dataDirs: flags.dataDir,
        });
        const records = await withHost(host, async (host) => {
          await host.inspect({ datasets });
          return await host.resolve(datasets, {
            dataDirs: flags.dataDir,
            cacheDir: flags.cacheDir,
            preset: flags.preset,
            seed: flags.seed,
          });
        });
        for (const dataset of datasets) {
          const record = records[dataset];
          console.log(
            `${dataset}: ${record.size} steps, ${record.episodes} episodes, mean return ` +
              `${record.meanReturn.toFixed(1)}, normalised score ${
                record.normalizedScore.toFixed(1)
              } → ${record.path}`,
          );
        }
      }),
  );
  root.addCommand(
    new Command("datasets")
      .description("list collected datasets: how they were made, mean return and normalised score")
      .option("--cache-dir <dir>", "cache folder", ".cache")
      .action(async (flags) => {
        const records = await listCachedDatasets(flags.cacheDir);
        if (!records.length) console.log(`no collected datasets in ${flags.cacheDir}/datasets`);
        for (const r of records) {
          console.log(
            `${r.dataset.padEnd(28)} ${String(r.preset).padEnd(6)} seed ${r.seed} ${
              String(r.size).padStart(8)
            } steps ` +
              `${String(r.episodes).padStart(6)} episodes  return ${
                r.meanReturn.toFixed(1).padStart(9)
              }  ` +
              `score ${r.normalizedScore.toFixed(1).padStart(6)}  ${r.plugin}@${r.version}` +
              (r.seconds !== undefined ? `  ${r.seconds.toFixed(0)} s` : ""),
          );
        }
      }),
  );
  root.addCommand(
    new Command("report")
      .description("rebuild the HTML, Markdown, CSV and JSON reports of a result folder")
      .argument("[dir]", "result folder", "results/bench")
      .action(async (dir) => {
        const report = await writeReports(dir, { terminalColumns: tableColumns() });
        console.log(report.terminal);
        console.log(`report: ${report.htmlPath}`);
      }),
  );
  root.addCommand(
    new Command("plugins")
      .description("list the built-in plugins and any loaded with --plugin")
      .option("--plugin <path>", "load a plugin module (repeatable)", collectPlugins)
      .option("--plugin-allow <permissions>", "grant plugins more (see `run --help`)", list)
      .action(async (flags) => {
        const host = hostFor({ plugins: flags.plugin ?? [], pluginAllow: flags.pluginAllow });
        for (const entry of await withHost(host, (host) => host.inspect())) {
          const datasets = entry.datasets ? `  datasets: ${entry.datasets.join(", ")}` : "";
          console.log(
            `${entry.kind.padEnd(12)} ${entry.name.padEnd(16)} ${entry.origin}${datasets}`,
          );
        }
      }),
  );
  root.addCommand(
    new Command("analyze")
      .description(
        "Section 5.3: action likelihood of synthetic trajectories over λ (Figure 5) and their " +
          "dynamics error replayed in the simulator (Figure 6), for PGD, unguided diffusion and PETS",
      )
      .addOption(
        new Option("--preset <name>", "size preset").choices(presetNames).default("quick" as const),
      )
      .addOption(
        new Option("--backend <name>", "compute backend").choices(backendNames).default(
          "wasm" as const,
        ),
      )
      .option("--dataset <id>", "dataset the generative models are fitted on", "halfcheetah-medium")
      .option("--targets <ids>", "datasets the target IQL policies are trained on", list)
      .option(
        "--guidances <list>",
        "guidance coefficients λ of Figure 5",
        numberListFlag("--guidances", 0),
      )
      .option("--seeds <n>", "model seeds (0…N−1)", integerFlag("--seeds", 1))
      .option(
        "--trajectories <n>",
        "synthetic trajectories per model seed and setting",
        integerFlag("--trajectories", 1),
      )
      .option("-o, --out <dir>", "result folder (writes <out>/analysis/*.json)", "results/bench")
      .option("--cache-dir <dir>", "cache folder shared with the benchmark", ".cache")
      .option("--data-dir <dirs>", "folders searched for D4RL files", list, ["data/d4rl"])
      .option("--no-report", "do not rebuild the report afterwards")
      .action(async (flags) => {
        const info = await initCompute(flags.backend);
        console.error(pc.dim(`compute: ${info.path}`));
        // The built-ins only: no user's plugin runs in this process.
        const registry = new PluginRegistry(builtinPlugins);
        const reporter = {
          progress(phase: string, fraction: number) {
            if (fraction === 0 || fraction >= 1) {
              console.error(pc.dim(`${phase}: ${Math.round(fraction * 100)}%`));
            }
          },
          log: (message: string) => console.error(pc.dim(message)),
        };
        const output = await analyze(
          {
            resultDir: flags.out,
            cacheDir: flags.cacheDir,
            preset: flags.preset,
            dataset: flags.dataset,
            targets: flags.targets,
            guidances: flags.guidances,
            seeds: flags.seeds ? [...Array(flags.seeds).keys()] : undefined,
            trajectories: flags.trajectories,
          },
          harnessProviders({
            registry,
            dataDirs: flags.dataDir,
            cacheDir: flags.cacheDir,
            preset: flags.preset,
            reporter,
          }),
          reporter,
        );
        for (const path of output.paths) console.log(`wrote ${path}`);
        if (flags.report) {
          const report = await writeReports(flags.out);
          console.log(`report: ${report.htmlPath}`);
        }
      }),
  );
  for (const command of scaleOutCommands()) root.addCommand(command);
  return root as unknown as Command;
}

/** Errors of the filesystem a user can act on (a path that is missing, read-only, full, …). */
function isFilesystemError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const kinds = [
    Deno.errors.NotFound,
    Deno.errors.PermissionDenied,
    Deno.errors.AlreadyExists,
    Deno.errors.NotADirectory,
    Deno.errors.IsADirectory,
    Deno.errors.NotCapable,
  ];
  return kinds.some((kind) => error instanceof kind) ||
    /\(os error (20|21|28|30|122)\)|No space left|Read-only file system|Disk quota/.test(
      error.message,
    );
}

/** Every command and subcommand throws instead of exiting, so `main` decides the exit code. */
function throwInsteadOfExit(command: Command): void {
  command.exitOverride();
  for (const child of command.commands) throwInsteadOfExit(child as unknown as Command);
}

/**
 * Runs the CLI with `args`; returns the exit code: 0, 2 for anything the
 * user can fix (one line naming the file, key, flag or path), 1 for a fault
 * of the harness. Stacks are printed only with `--debug` or `PGD_DEBUG=1`.
 */
export async function main(args: string[]): Promise<number> {
  const debug = args.includes("--debug") || Deno.env.get("PGD_DEBUG") === "1";
  const command = program();
  throwInsteadOfExit(command);
  try {
    await command.parseAsync(args.filter((arg) => arg !== "--debug"), { from: "user" });
    return 0;
  } catch (error) {
    // Commander has printed its own message (unknown option, bad choice) or the help.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const userCaused = error instanceof UserError || isFilesystemError(error);
    const message = error instanceof Error ? error.message : String(error);
    if (debug && error instanceof Error && error.stack) console.error(error.stack);
    else {
      console.error(pc.red(`error: ${message.split("\n")[0]}`));
      for (const line of message.split("\n").slice(1)) console.error(pc.red(line));
      if (!userCaused) console.error(pc.dim("(a fault of pgd-bench: --debug prints the stack)"));
    }
    return userCaused ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
