import { assertEquals, assertOk, assertThrows } from "./assert.ts";
import {
  describeShard,
  groupIdentity,
  parseShard,
  shardCells,
  shardFromEnvironment,
  shardOf,
  shardSizes,
  stableHash,
} from "../core/shard.ts";
import { planCells } from "../core/plan.ts";
import { parseGridConfig } from "../core/config.ts";
import { cellId } from "../core/results.ts";
import { UserError } from "../core/errors.ts";

const paperGrid = parseGridConfig({
  datasets: [
    "halfcheetah-random",
    "halfcheetah-medium",
    "halfcheetah-medium-replay",
    "halfcheetah-medium-expert",
    "hopper-random",
    "hopper-medium",
    "hopper-medium-replay",
    "hopper-medium-expert",
    "walker2d-random",
    "walker2d-medium",
    "walker2d-medium-replay",
    "walker2d-medium-expert",
  ],
  sources: ["real", "unguided", "policy-guided"],
  agents: ["td3bc", "iql"],
  seeds: 4,
});

Deno.test("stableHash is a fixed function (shards of one grid may run different versions)", () => {
  // Values from an independent implementation (Python) of FNV-1a followed by MurmurHash3's fmix32.
  assertEquals(stableHash(""), 0xab3e7c0b);
  assertEquals(stableHash("maze2d-umaze/real/seed-0"), 0x0dea70b8);
  assertOk(stableHash("maze2d-umaze/real/seed-0") !== stableHash("maze2d-umaze/real/seed-1"));
});

Deno.test("shards cover the paper's grid exactly once, for every shard count", () => {
  const cells = planCells(paperGrid);
  assertEquals(cells.length, 288);
  for (const count of [1, 2, 3, 7, 16, 48]) {
    const seen = new Map<string, number>();
    for (let index = 0; index < count; index++) {
      for (const cell of shardCells(cells, { index, count })) {
        seen.set(cellId(cell), (seen.get(cellId(cell)) ?? 0) + 1);
      }
    }
    assertEquals(seen.size, cells.length, `${count} shards`);
    assertOk([...seen.values()].every((times) => times === 1), `${count} shards: a cell twice`);
    assertEquals(shardSizes(cells, count).reduce((a, b) => a + b, 0), cells.length);
  }
});

Deno.test("a group's cells (its agents share one trained model) stay on one shard", () => {
  const cells = planCells(paperGrid);
  for (const count of [3, 16]) {
    const shardOfGroup = new Map<string, number>();
    for (const cell of cells) {
      const shard = shardOf(cell, count);
      const earlier = shardOfGroup.get(groupIdentity(cell));
      if (earlier !== undefined) assertEquals(shard, earlier, groupIdentity(cell));
      shardOfGroup.set(groupIdentity(cell), shard);
    }
  }
});

Deno.test("adding datasets, sources, agents or seeds never moves an existing cell", () => {
  const small = parseGridConfig({
    datasets: ["hopper-medium"],
    sources: ["real"],
    agents: ["td3bc"],
    seeds: 2,
  });
  for (const count of [2, 5, 8]) {
    const before = new Map(planCells(small).map((cell) => [cellId(cell), shardOf(cell, count)]));
    const after = planCells(paperGrid);
    for (const cell of after) {
      const earlier = before.get(cellId(cell));
      if (earlier !== undefined) assertEquals(shardOf(cell, count), earlier, cellId(cell));
    }
  }
});

Deno.test("the paper's grid spreads over shards without an empty or a doubled-up shard", () => {
  // 144 groups over 8 shards: 18 groups (36 cells) each on average.
  const sizes = shardSizes(planCells(paperGrid), 8);
  assertOk(Math.min(...sizes) >= 20 && Math.max(...sizes) <= 54, `sizes ${sizes}`);
});

Deno.test("parseShard reads i/n and names the flag in its errors", () => {
  assertEquals(parseShard("2/5"), { index: 2, count: 5 });
  assertEquals(parseShard(" 0/1 "), { index: 0, count: 1 });
  assertThrows(() => parseShard("5/5"), UserError, "out of range for 5 shards");
  assertThrows(() => parseShard("1-3"), UserError, "--shard: expected 'i/n'");
  assertThrows(() => parseShard("a/3"), UserError, "--shard index: expected an integer");
  assertThrows(() => parseShard("0/0"), UserError, "--shard count: expected an integer ≥ 1");
  assertThrows(() => parseShard("-1/3"), UserError, "--shard index");
});

Deno.test("shardFromEnvironment: the flag wins over the environment", () => {
  const env = { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "4", JOB_COMPLETION_INDEX: "0" };
  assertEquals(shardFromEnvironment("2/3", env), { index: 2, count: 3, origin: "flag" });
  assertThrows(() => shardFromEnvironment("2/3", {}, 4), UserError, "--shard-count says 4");
});

Deno.test("shardFromEnvironment: a Slurm job array", () => {
  assertEquals(
    shardFromEnvironment(undefined, { SLURM_ARRAY_TASK_ID: "2", SLURM_ARRAY_TASK_COUNT: "3" }),
    { index: 2, count: 3, origin: "slurm" },
  );
  // One task of a 16-task array resubmitted alone (--array=3) keeps the whole array's count.
  assertEquals(
    shardFromEnvironment(undefined, { SLURM_ARRAY_TASK_ID: "3", SLURM_ARRAY_TASK_COUNT: "1" }, 16),
    { index: 3, count: 16, origin: "slurm" },
  );
  assertThrows(
    () =>
      shardFromEnvironment(undefined, { SLURM_ARRAY_TASK_ID: "3", SLURM_ARRAY_TASK_COUNT: "1" }),
    UserError,
    "pass --shard-count",
  );
  assertThrows(
    () =>
      shardFromEnvironment(undefined, { SLURM_ARRAY_TASK_ID: "x", SLURM_ARRAY_TASK_COUNT: "3" }),
    UserError,
    "SLURM_ARRAY_TASK_ID: expected an integer",
  );
  assertThrows(
    () => shardFromEnvironment(undefined, { SLURM_ARRAY_TASK_ID: "1" }),
    UserError,
    "SLURM_ARRAY_TASK_COUNT is not: pass --shard-count",
  );
  assertThrows(
    () =>
      shardFromEnvironment(undefined, { SLURM_ARRAY_TASK_ID: "7", SLURM_ARRAY_TASK_COUNT: "3" }),
    UserError,
    "--array=0-2",
  );
});

Deno.test("shardFromEnvironment: a Kubernetes Indexed Job takes its count from the config", () => {
  assertEquals(
    shardFromEnvironment(undefined, { JOB_COMPLETION_INDEX: "1" }, 3),
    { index: 1, count: 3, origin: "kubernetes" },
  );
  assertThrows(
    () => shardFromEnvironment(undefined, { JOB_COMPLETION_INDEX: "1" }),
    UserError,
    "--shard-count",
  );
  assertThrows(
    () => shardFromEnvironment(undefined, { JOB_COMPLETION_INDEX: "3" }, 3),
    UserError,
    "out of range",
  );
  assertThrows(
    () => shardFromEnvironment(undefined, { JOB_COMPLETION_INDEX: "one" }, 3),
    UserError,
    "JOB_COMPLETION_INDEX: expected an integer",
  );
});

Deno.test("shardFromEnvironment: no flag and no scheduler means the whole grid", () => {
  assertEquals(shardFromEnvironment(undefined, {}), undefined);
  assertEquals(shardFromEnvironment(undefined, { SLURM_ARRAY_TASK_ID: "" }), undefined);
  assertOk(describeShard({ index: 1, count: 3, origin: "slurm" }).includes("SLURM_ARRAY_TASK_ID"));
});
