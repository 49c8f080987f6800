/**
 * Splitting a grid over independent processes (a Slurm job array, a
 * Kubernetes Indexed Job, or shells on several machines) without a
 * scheduler of our own: shard `index` of `count` runs exactly the cells
 * whose group hashes to `index`, so `count` processes that share nothing
 * but the shard count cover the grid exactly once.
 *
 * The hash is taken over a cell's group (dataset, source, seed), not over
 * the cell: the agents of a group train on the same trained model (a
 * denoiser, a world model), so keeping a group on one shard trains that
 * model once instead of on several shards at the same time. The hash of a
 * group depends on its identity alone, so adding datasets, sources, agents
 * or seeds to a grid never moves an existing cell to another shard. With
 * seeds stacked (`stackSeeds`), a shard stacks the seeds it holds.
 *
 * @module
 */
import type { CellKey } from "./results.ts";
import { UserError } from "./errors.ts";

/** Where a shard's index and count came from. */
export type ShardOrigin = "flag" | "slurm" | "kubernetes";

/** One shard of a grid: `index` in 0 … `count` − 1. */
export interface Shard {
  /** This process's shard, from 0. */
  index: number;
  /** Number of shards the grid is split into. */
  count: number;
  /** Where the index and count came from. */
  origin: ShardOrigin;
}

/** The identity of a cell's group: the cells that share a trained model. */
export function groupIdentity(cell: CellKey): string {
  return `${cell.dataset}/${cell.source}/seed-${cell.seed}`;
}

/**
 * A 32-bit hash of a string: FNV-1a over its UTF-8 bytes, then MurmurHash3's
 * finaliser so that every bit (the low ones used by `% count` included)
 * depends on every input byte. Fixed forever: shards of one grid may run
 * different versions of the harness.
 */
export function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The shard (0 … `count` − 1) that runs a cell. */
export function shardOf(cell: CellKey, count: number): number {
  if (!Number.isInteger(count) || count < 1) {
    throw new UserError(`shard count must be a positive integer, got ${count}`);
  }
  return stableHash(groupIdentity(cell)) % count;
}

/** The cells of `cells` that shard `shard` runs, in their given order. */
export function shardCells(cells: CellKey[], shard: Pick<Shard, "index" | "count">): CellKey[] {
  return cells.filter((cell) => shardOf(cell, shard.count) === shard.index);
}

/** How many cells each shard runs, index by index. */
export function shardSizes(cells: CellKey[], count: number): number[] {
  const sizes = new Array<number>(count).fill(0);
  for (const cell of cells) sizes[shardOf(cell, count)] += 1;
  return sizes;
}

function integer(text: string, what: string, minimum: number): number {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) < minimum) {
    throw new UserError(`${what}: expected an integer ≥ ${minimum}, got '${text}'`);
  }
  return Number(trimmed);
}

/** Parses `i/n` (shard `i` of `n`, counted from 0); `where` names the flag in errors. */
export function parseShard(text: string, where = "--shard"): Omit<Shard, "origin"> {
  const match = /^\s*([^/]*)\/([^/]*)\s*$/.exec(text);
  if (!match) {
    throw new UserError(`${where}: expected 'i/n' (shard i of n, from 0), got '${text}'`);
  }
  const index = integer(match[1], `${where} index`, 0);
  const count = integer(match[2], `${where} count`, 1);
  if (index >= count) {
    throw new UserError(
      `${where}: index ${index} is out of range for ${count} shards (expected 0 … ${count - 1})`,
    );
  }
  return { index, count };
}

/**
 * The shard this process runs: from `--shard i/n` when given, else from the
 * scheduler's environment: a Slurm job array counted from 0
 * (`SLURM_ARRAY_TASK_ID` of `SLURM_ARRAY_TASK_COUNT` shards, or of
 * `configuredCount` when given, so that one task resubmitted alone with
 * `--array=3` keeps the whole array's count) or a Kubernetes Indexed Job
 * (`JOB_COMPLETION_INDEX`, with the count from `configuredCount`, since
 * Kubernetes does not export the number of completions). `undefined` when
 * none applies: the process runs the whole grid.
 */
export function shardFromEnvironment(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  configuredCount?: number,
): Shard | undefined {
  if (
    configuredCount !== undefined && (!Number.isInteger(configuredCount) || configuredCount < 1)
  ) {
    throw new UserError(`--shard-count: expected an integer ≥ 1, got ${configuredCount}`);
  }
  if (flag !== undefined) {
    const shard = { ...parseShard(flag), origin: "flag" as const };
    if (configuredCount !== undefined && configuredCount !== shard.count) {
      throw new UserError(
        `--shard ${flag} says ${shard.count} shards but --shard-count says ${configuredCount}`,
      );
    }
    return shard;
  }
  const slurmTask = env.SLURM_ARRAY_TASK_ID;
  if (slurmTask !== undefined && slurmTask !== "") {
    const index = integer(slurmTask, "SLURM_ARRAY_TASK_ID", 0);
    const countText = env.SLURM_ARRAY_TASK_COUNT;
    let count: number;
    if (configuredCount !== undefined) count = configuredCount;
    else if (countText !== undefined && countText !== "") {
      count = integer(countText, "SLURM_ARRAY_TASK_COUNT", 1);
    } else {
      throw new UserError(
        "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: pass --shard-count " +
          "<array size>",
      );
    }
    if (index >= count) {
      throw new UserError(
        `SLURM_ARRAY_TASK_ID=${index} is out of range for ${count} shards: the array must ` +
          `count from 0 (--array=0-${count - 1}); to rerun some of its tasks alone ` +
          `(e.g. --array=${index}), pass --shard-count <the whole array's size>`,
      );
    }
    return { index, count, origin: "slurm" };
  }
  const completionIndex = env.JOB_COMPLETION_INDEX;
  if (completionIndex !== undefined && completionIndex !== "") {
    const index = integer(completionIndex, "JOB_COMPLETION_INDEX", 0);
    if (configuredCount === undefined) {
      throw new UserError(
        `JOB_COMPLETION_INDEX=${index} is set but the shard count is not: pass ` +
          "--shard-count <completions> (the Job's spec.completions)",
      );
    }
    if (index >= configuredCount) {
      throw new UserError(
        `JOB_COMPLETION_INDEX=${index} is out of range for --shard-count ${configuredCount}`,
      );
    }
    return { index, count: configuredCount, origin: "kubernetes" };
  }
  return undefined;
}

/** A one-line description of a shard for logs, e.g. `shard 2/8 (from SLURM_ARRAY_TASK_ID)`. */
export function describeShard(shard: Shard): string {
  const origin = {
    flag: "from --shard",
    slurm: "from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT",
    kubernetes: "from JOB_COMPLETION_INDEX and --shard-count",
  }[shard.origin];
  return `shard ${shard.index}/${shard.count} (${origin})`;
}
