/**
 * The command-line side of running a grid on a cluster's own scheduler:
 * the `--shard` and `--shard-count` options of `run`/`bench`, the plan of
 * one shard's cells, and the `merge` and `status` commands.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import type { GridConfig } from "../core/config.ts";
import type { GridEvents } from "../core/scheduler.ts";
import type { CellKey } from "../core/results.ts";
import { planCells } from "../core/plan.ts";
import {
  describeShard,
  type Shard,
  shardCells,
  shardFromEnvironment,
  shardSizes,
} from "../core/shard.ts";
import { mergeResults } from "../core/merge.ts";
import { type MarkedEvents, readStatus, renderStatus, withCellMarkers } from "../core/status.ts";
import { ResultStore } from "../core/store.ts";
import { cellId } from "../core/results.ts";
import { UserError } from "../core/errors.ts";
import { readJsonIfExists } from "../core/files.ts";
import { join } from "../core/paths.ts";
import { writeReports } from "../reports/mod.ts";
import { tableColumns } from "./terminal.ts";
import { integerFlag } from "./flags.ts";

/** `--shard <i/n>`: run shard i of n (from 0). */
export function shardOption() {
  return new Option(
    "--shard <i/n>",
    "run only shard i of n (from 0); default: SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or " +
      "JOB_COMPLETION_INDEX/--shard-count when set",
  );
}

/** `--shard-count <n>`: the shard count when the index comes from `JOB_COMPLETION_INDEX`. */
export function shardCountOption() {
  return new Option(
    "--shard-count <n>",
    "number of shards, for a Kubernetes Indexed Job (its completions)",
  ).argParser(integerFlag("--shard-count", 1));
}

/** One shard's share of a grid, ready for `runGrid`. */
export interface ShardPlan {
  /** The shard, or `undefined` when the process runs the whole grid. */
  shard?: Shard;
  /** The cells to run: pass as `runGrid`'s `cells`. */
  cells: CellKey[];
  /** Extra `run.json` fields: pass as `runGrid`'s `manifest`. */
  manifest: Record<string, unknown>;
  /** A line for the user: which shard, where its index came from, how many cells. */
  message: string;
}

/**
 * The cells this process runs: the shard from `--shard`, else from the
 * scheduler's environment (Slurm array, Kubernetes Indexed Job), else the
 * whole grid.
 */
export function planShard(
  config: GridConfig,
  flags: { shard?: string; shardCount?: number },
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ShardPlan {
  const all = planCells(config);
  const shard = shardFromEnvironment(flags.shard, env, flags.shardCount);
  if (!shard) {
    return { cells: all, manifest: {}, message: `whole grid: ${all.length} cells (no shard)` };
  }
  const cells = shardCells(all, shard);
  const sizes = shard.count <= 32
    ? ` (cells per shard: ${shardSizes(all, shard.count).join(" ")})`
    : "";
  return {
    shard,
    cells,
    manifest: { shard: { index: shard.index, count: shard.count, origin: shard.origin } },
    message: `${describeShard(shard)}: ${cells.length} of ${all.length} cells${sizes}`,
  };
}

/**
 * Refuses to run into a result folder that holds another shard of the grid
 * (its `run.json` names the shard): a Slurm task resubmitted alone with
 * `--array=K` sees an array of one, so without the shard count it would run
 * the whole grid into shard K's folder.
 */
export async function assertSameShard(out: string, plan: ShardPlan): Promise<void> {
  const previous = (await readJsonIfExists(join(out, "run.json"))) as
    | { shard?: { index: number; count: number } }
    | undefined;
  const before = previous?.shard;
  if (!before) return;
  const now = plan.shard;
  if (now && now.index === before.index && now.count === before.count) return;
  throw new UserError(
    `${out} holds shard ${before.index} of ${before.count} (its run.json), but this run is ` +
      (now ? `shard ${now.index} of ${now.count}` : "the whole grid") +
      `: pass --shard-count ${before.count} (PGD_SHARD_COUNT=${before.count} for the Slurm ` +
      "example), or use another --out",
  );
}

/**
 * Grid events that keep per-cell `running`/`failed` markers in the result
 * folder for `status`; `await flush()` after `runGrid`.
 */
export function markedEvents(
  config: GridConfig,
  plan: ShardPlan,
  events: GridEvents,
): MarkedEvents {
  return withCellMarkers(new ResultStore(config.out), plan.shard, events);
}

/** The `merge` and `status` commands. */
export function scaleOutCommands(): Command[] {
  const merge = new Command("merge")
    .description(
      "combine result folders of shards or machines into one folder and one report " +
        "(identical duplicate cells are kept once; different ones are an error)",
    )
    .argument("<target>", "result folder to merge into (created if absent)")
    .argument("<sources...>", "result folders to merge")
    .option("--no-report", "only merge; do not rebuild the report")
    .action(async (target, sources, flags) => {
      const outcome = await mergeResults(sources, target);
      console.log(
        `merged ${sources.length} folder(s) into ${target}: ${outcome.cells} cells ` +
          `(${outcome.copied.length} copied, ${outcome.duplicates.length} identical duplicates ` +
          `kept once)`,
      );
      if (!outcome.manifest) console.log("no run.json in the sources: missing cells are unknown");
      if (outcome.missing.length) {
        console.log(`${outcome.missing.length} expected cell(s) have no result:`);
        for (const cell of outcome.missing) console.log(`  ${cellId(cell)}`);
      }
      if (outcome.skipped.length) {
        console.log(`${outcome.skipped.length} unknown file(s) not merged:`);
        for (const path of outcome.skipped.slice(0, 10)) console.log(`  ${path}`);
      }
      if (flags.report && outcome.cells > 0) {
        const report = await writeReports(target, { terminalColumns: tableColumns() });
        console.log("\n" + report.terminal);
        console.log(`report: ${report.htmlPath}`);
      }
    });
  const status = new Command("status")
    .description(
      "finished, running, failed and missing cells of a result folder, per shard, from its files",
    )
    .argument("[dirs...]", "result folders (e.g. one per shard), read as one", ["results/bench"])
    .addOption(shardCountOption())
    .option("--json", "print the status as JSON")
    .action(async (dirs, flags) => {
      const result = await readStatus(dirs, { shardCount: flags.shardCount });
      if (flags.json) console.log(JSON.stringify(result, null, 2));
      else console.log(renderStatus(result));
    });
  return [merge, status] as unknown as Command[];
}
