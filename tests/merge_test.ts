import { assertEquals, assertOk, assertRejects } from "./assert.ts";
import { mergeResults } from "../core/merge.ts";
import { markFailed, markRunning, readStatus } from "../core/status.ts";
import { ResultStore } from "../core/store.ts";
import { cellId, type CellKey, cellPath, type CellResult } from "../core/results.ts";
import { parseGridConfig } from "../core/config.ts";
import { planCells } from "../core/plan.ts";
import { join } from "../core/paths.ts";
import { UserError } from "../core/errors.ts";
import { writeReports } from "../reports/mod.ts";

const grid = parseGridConfig({
  datasets: ["maze2d-umaze"],
  sources: ["real"],
  agents: ["td3bc", "iql"],
  seeds: 2,
  preset: "smoke",
});

function result(cell: CellKey, finalScore: number): CellResult {
  return {
    schemaVersion: 1,
    cell,
    configHash: "h",
    preset: "smoke",
    backend: "wasm",
    computePath: "tfjs-wasm",
    sourceOptions: {},
    agentOptions: {},
    finalScore,
    finalReturn: finalScore / 10,
    evaluations: [{
      step: 10,
      meanReturn: finalScore / 10,
      normalizedScore: finalScore,
      episodeScores: [finalScore],
    }],
    losses: [],
    generations: [{ step: 0, transitions: 100 }],
    timings: {
      prepareSeconds: 0,
      generateSeconds: 0,
      trainSeconds: 1,
      evaluateSeconds: 0,
      totalSeconds: 1,
    },
    versions: { "pgd-bench": "0.1.0" },
    host: "test",
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:00:01.000Z",
  };
}

/** A shard's result folder holding `cells`, with the run.json the scheduler writes. */
async function shardFolder(
  root: string,
  cells: CellKey[],
  shard?: { index: number; count: number },
): Promise<string> {
  const store = new ResultStore(root);
  for (const cell of cells) await store.write(result(cell, 10 * cell.seed + cell.agent.length));
  await Deno.mkdir(root, { recursive: true });
  await Deno.writeTextFile(
    join(root, "run.json"),
    JSON.stringify({
      config: { ...grid, out: root },
      expectedCells: planCells(grid),
      datasets: { "maze2d-umaze": { origin: "collected", key: "maze2d-umaze__smoke" } },
      backend: "wasm",
      versions: { "pgd-bench": "0.1.0" },
      startedAt: `2026-01-01T00:0${shard?.index ?? 0}:00.000Z`,
      finishedAt: `2026-01-01T01:0${shard?.index ?? 0}:00.000Z`,
      computePath: "tfjs-wasm",
      ...(shard ? { shard: { ...shard, origin: "flag" } } : {}),
    }),
  );
  return root;
}

async function snapshot(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      const path = join(folder, entry.name);
      if (entry.isDirectory) await walk(path);
      else files.set(path.slice(root.length), await Deno.readTextFile(path));
    }
  };
  await walk(root);
  return files;
}

Deno.test("merge combines shards into one folder whose manifest lists the whole grid", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [a, b, c, d] = planCells(grid);
    const first = await shardFolder(join(dir, "s0"), [a, b], { index: 0, count: 2 });
    const second = await shardFolder(join(dir, "s1"), [c, d], { index: 1, count: 2 });
    await Deno.writeTextFile(join(second, "report.html"), "<html></html>");
    await Deno.writeTextFile(join(second, "quality.csv"), "dataset,source\n");
    await Deno.writeTextFile(join(second, "notes.txt"), "a file a merge does not know");
    const before = await snapshot(first);
    const outcome = await mergeResults([first, second], join(dir, "merged"));
    assertEquals(outcome.cells, 4);
    assertEquals(outcome.copied.length, 4);
    assertEquals(outcome.missing, []);
    // A report is rebuilt, not copied; an unknown file is named, not silently dropped.
    assertEquals(outcome.skipped, [join(second, "notes.txt")]);
    const merged = new ResultStore(join(dir, "merged"));
    for (const [cell, folder] of [[a, first], [b, first], [c, second], [d, second]] as const) {
      assertEquals(
        await Deno.readTextFile(merged.pathOf(cell)),
        await Deno.readTextFile(join(folder, cellPath(cell))),
      );
    }
    const manifest = JSON.parse(await Deno.readTextFile(join(dir, "merged", "run.json")));
    assertEquals(manifest.expectedCells.length, 4);
    assertEquals(manifest.shards.map((s: { shard: { index: number } }) => s.shard.index), [0, 1]);
    assertEquals(manifest.startedAt, "2026-01-01T00:00:00.000Z");
    assertEquals(manifest.finishedAt, "2026-01-01T01:01:00.000Z");
    assertEquals(manifest.config.out, join(dir, "merged"));
    // The sources are only read.
    assertEquals(await snapshot(first), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("merge keeps an identical duplicate once and lists cells nobody ran", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [a, b, c] = planCells(grid);
    const first = await shardFolder(join(dir, "s0"), [a, b]);
    const copy = await shardFolder(join(dir, "copy"), [b, c]);
    // The same result file reached both folders (e.g. copied between machines).
    await Deno.copyFile(join(first, cellPath(b)), join(copy, cellPath(b)));
    const outcome = await mergeResults([first, copy], join(dir, "merged"));
    assertEquals(outcome.cells, 3);
    assertEquals(outcome.duplicates, [cellId(b)]);
    assertEquals(outcome.missing.map(cellId), [cellId(planCells(grid)[3])]);
    // The report of the merged folder lists the cell nobody ran.
    const report = await writeReports(join(dir, "merged"));
    const summary = await Deno.readTextFile(report.markdownPath);
    assertOk(summary.includes(cellPath(planCells(grid)[3])), summary);
    // Merging again into the same target changes nothing and copies nothing.
    const again = await mergeResults([first, copy], join(dir, "merged"));
    assertEquals(again.copied, []);
    assertEquals(again.cells, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("merge refuses two different results for one cell, naming it, and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [a, b] = planCells(grid);
    const first = await shardFolder(join(dir, "s0"), [a]);
    const second = await shardFolder(join(dir, "s1"), [a, b]);
    const other = result(a, 99);
    await new ResultStore(second).write(other);
    const target = join(dir, "merged");
    const error = await assertRejects(
      () => mergeResults([first, second], target),
      UserError,
      `cell ${cellId(a)} differs between`,
    );
    assertOk(error.message.includes("finalScore"), error.message);
    assertOk(error.message.includes("nothing was written"), error.message);
    await assertRejects(() => Deno.stat(target), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("merge refuses runs made at different presets, and bad input names the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [a, b] = planCells(grid);
    const first = await shardFolder(join(dir, "s0"), [a]);
    const second = await shardFolder(join(dir, "s1"), [b]);
    const manifest = JSON.parse(await Deno.readTextFile(join(second, "run.json")));
    manifest.config.preset = "quick";
    await Deno.writeTextFile(join(second, "run.json"), JSON.stringify(manifest));
    await assertRejects(
      () => mergeResults([first, second], join(dir, "m1")),
      UserError,
      "different config.preset",
    );
    await Deno.writeTextFile(join(first, cellPath(a)), "{ not json");
    await assertRejects(
      () => mergeResults([first], join(dir, "m2")),
      UserError,
      join(first, cellPath(a)),
    );
    await assertRejects(
      () => mergeResults([join(dir, "nowhere")], join(dir, "m3")),
      UserError,
      "does not exist",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("merge carries markers of unfinished cells so status still shows failures", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [a, b, c] = planCells(grid);
    const first = await shardFolder(join(dir, "s0"), [a], { index: 0, count: 2 });
    const second = await shardFolder(join(dir, "s1"), [c], { index: 1, count: 2 });
    await markFailed(new ResultStore(first), b, { index: 0, count: 2 }, "out of memory\nstack");
    // A running marker of a cell that finished elsewhere says nothing any more.
    await markRunning(new ResultStore(second), a, { index: 1, count: 2 });
    const outcome = await mergeResults([first, second], join(dir, "merged"));
    assertEquals(outcome.markers, 1);
    const status = await readStatus(join(dir, "merged"));
    assertEquals(status.shardCount, 2);
    const states = Object.fromEntries(status.cells.map((s) => [cellId(s.cell), s.state]));
    assertEquals(states[cellId(a)], "stale"); // the fabricated results carry configHash "h"
    assertEquals(states[cellId(b)], "failed");
    assertEquals(status.totals.missing, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
