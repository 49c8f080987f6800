/**
 * The grid with seeds stacked (`--stack-seeds on`): each (dataset, source,
 * agent)'s pending seeds train as one stack in one worker, and every cell's
 * numbers are those of the same grid run one seed at a time; a finished
 * seed is not run again, a stack the agent refuses runs its seeds one at a
 * time, and the switch is not part of a cell's identity.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { cellConfigHash } from "../core/cell.ts";
import { parseGridConfig } from "../core/config.ts";
import { groupSeedStacks, planCells } from "../core/plan.ts";
import { cellId } from "../core/results.ts";
import { shardOf } from "../core/shard.ts";
import { cellFiles, moduleCache, resultsOf, run as runCli, smokeGrid } from "./fixtures/cli_run.ts";

const cacheDir = await moduleCache("pgd-stacked-cache-");
const run = (args: string[]) => runCli(cacheDir, args);

Deno.test("stacked grid: every cell's numbers are those of the grid run seed by seed", async () => {
  const folder = await Deno.makeTempDir({ prefix: "pgd-stacked-" });
  try {
    const grid = [
      // Policy-guided data: seed k's regenerations are guided by stack member k.
      "--sources=real,policy-guided",
      "--agents=td3bc,iql",
      "--seeds=3",
      "--workers=2",
    ];
    const off = await run(smokeGrid(`${folder}/off`, ...grid, "--stack-seeds=off"));
    assertEquals(off.code, 0, off.output);
    const on = await run(smokeGrid(`${folder}/on`, ...grid, "--stack-seeds=on"));
    assertEquals(on.code, 0, on.output);
    assertOk(on.output.includes("12 of 12 cells to run in 4 seed stacks"), on.output);
    assertOk(!on.output.includes("one at a time"), on.output);

    const relative = async (out: string) =>
      (await cellFiles(out)).map((file) => file.slice(out.length + 1));
    const expected = planCells(parseGridConfig({
      sources: ["real", "policy-guided"],
      agents: ["td3bc", "iql"],
      seeds: 3,
    })).map((cell) => `cells/${cellId(cell)}.json`).sort();
    assertEquals(await relative(`${folder}/on`), expected);
    assertEquals(await relative(`${folder}/off`), expected);
    // Everything but when, where and how fast: losses, evaluations, finalScore,
    // generations, data quality, identity and hash, bit for bit.
    const [stacked, alone] = [await resultsOf(`${folder}/on`), await resultsOf(`${folder}/off`)];
    for (const [id, numbers] of alone) assertEquals(stacked.get(id), numbers, id);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("stacked grid: a finished seed is left as it is; the stack holds the missing seeds", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-stacked-resume-" });
  try {
    const first = await run(smokeGrid(out, "--seeds=1"));
    assertEquals(first.code, 0, first.output);
    const [finished] = await cellFiles(out);
    assertOk(finished.endsWith("real/td3bc/seed-0.json"), finished);
    const before = await Deno.readFile(finished);

    const { code, output } = await run(smokeGrid(out, "--seeds=3", "--stack-seeds=on"));
    assertEquals(code, 0, output);
    assertOk(output.includes("2 of 3 cells to run in 1 seed stacks"), output);
    assertOk(!output.includes("started maze2d-umaze/real/td3bc/seed-0"), output);
    for (const seed of [1, 2]) {
      assertOk(output.includes(`started maze2d-umaze/real/td3bc/seed-${seed}`), output);
    }
    assertEquals((await cellFiles(out)).length, 3);
    assertEquals(await Deno.readFile(finished), before);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("stacked grid: shards stack their own seeds and together cover the grid once", async () => {
  const folder = await Deno.makeTempDir({ prefix: "pgd-stacked-shards-" });
  try {
    const config = parseGridConfig({ agents: ["td3bc"], sources: ["real"], seeds: 4 });
    const cells = new Map<string, string>();
    for (const index of [0, 1]) {
      const out = `${folder}/${index}`;
      const { code, output } = await run(
        smokeGrid(out, "--seeds=4", "--stack-seeds=on", `--shard=${index}/2`),
      );
      assertEquals(code, 0, output);
      const own = planCells(config).filter((cell) => shardOf(cell, 2) === index);
      assertOk(
        output.includes(`${own.length} of ${own.length} cells to run in 1 seed stacks`),
        output,
      );
      for (const id of (await resultsOf(out)).keys()) {
        assertOk(!cells.has(id), `${id} ran on both shards`);
        cells.set(id, out);
      }
    }
    assertEquals([...cells.keys()].sort(), planCells(config).map(cellId).sort());
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("stacked grid: a stack that fails fails every one of its cells with its message", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-stacked-failed-" });
  try {
    const { code, output } = await run(
      smokeGrid(
        out,
        "--plugin=./tests/fixtures/hanging_source.ts",
        "--sources=hanging,real",
        "--seeds=2",
        "--stack-seeds=on",
        "--hook-timeout=2",
      ),
    );
    assertEquals(code, 2, output);
    for (const seed of [0, 1]) {
      assertOk(
        new RegExp(
          `hanging/td3bc/seed-${seed}: .*data source 'hanging' generate \\(generation 0\\) ` +
            "did not finish within 2 s",
        ).test(output),
        output,
      );
    }
    const files = (await cellFiles(out)).map((file) => file.slice(out.length + 1));
    assertEquals(files, [0, 1].map((seed) => `cells/maze2d-umaze/real/td3bc/seed-${seed}.json`));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("stacked grid: options the agent cannot stack run the seeds one at a time, saying why", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-stacked-refused-" });
  try {
    const { code, output } = await run(
      smokeGrid(
        out,
        "--seeds=2",
        "--stack-seeds=on",
        '--agent-options={"td3bc":{"criticUpdatesPerStep":2}}',
      ),
    );
    assertEquals(code, 0, output);
    assertOk(
      output.includes(
        "maze2d-umaze/real/td3bc: seeds 0, 1 run one at a time, not stacked: " +
          "td3bc stack: criticUpdatesPerStep other than 1 runs unstacked only",
      ),
      output,
    );
    assertEquals((await cellFiles(out)).length, 2);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("stacked grid: a bad --stack-seeds is one line naming it, a bad stackSeeds names the key; exit 2", async () => {
  const folder = await Deno.makeTempDir({ prefix: "pgd-stacked-errors-" });
  try {
    const flag = await run(smokeGrid(`${folder}/out`, "--stack-seeds=maybe"));
    assertEquals(flag.code, 2, flag.output);
    assertEquals(flag.output.trim().split("\n").length, 1, flag.output);
    assertOk(/--stack-seeds .*'maybe' is invalid.*off, on/.test(flag.output), flag.output);

    const config = `${folder}/grid.json`;
    await Deno.writeTextFile(config, JSON.stringify({ stackSeeds: "yes" }));
    const file = await run(smokeGrid(`${folder}/out`, `--config=${config}`));
    assertEquals(file.code, 2, file.output);
    assertOk(/grid\.json\.stackSeeds: .*"off"\|"on"/.test(file.output), file.output);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("stacked grid: the switch is not part of a cell's identity", async () => {
  const [cell] = planCells(parseGridConfig({}));
  const hashOf = (stackSeeds: "on" | "off") =>
    cellConfigHash(cell, parseGridConfig({ stackSeeds }), "data");
  assertEquals(await hashOf("on"), await hashOf("off"));
});

Deno.test("stacked grid: stacks are one per (dataset, source, agent), seeds rotated across workers", () => {
  const cells = planCells(parseGridConfig({
    sources: ["real", "unguided"],
    agents: ["td3bc", "iql"],
    seeds: 4,
  }));
  const describe = (groups: typeof cells[]) =>
    groups.map((group) =>
      `${group[0].source}/${group[0].agent}: ${group.map((cell) => cell.seed).join(" ")}`
    );
  // Two workers start groups in pairs: each pair begins two seeds apart, so
  // the pair prepares (trains) different seeds' models at once.
  assertEquals(describe(groupSeedStacks(cells, 2)), [
    "real/td3bc: 0 1 2 3",
    "real/iql: 2 3 0 1",
    "unguided/td3bc: 0 1 2 3",
    "unguided/iql: 2 3 0 1",
  ]);
  assertEquals(describe(groupSeedStacks(cells, 1)).at(-1), "unguided/iql: 0 1 2 3");
  // Only the cells given (the pending ones) are grouped.
  const pending = cells.filter((cell) => !(cell.agent === "iql" && cell.seed === 1));
  assertEquals(describe(groupSeedStacks(pending, 1)).at(-1), "unguided/iql: 0 2 3");
});
