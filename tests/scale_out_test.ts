/**
 * Scale-out end to end: a `smoke` grid run as 3 shards in separate
 * processes (indices from Slurm's and from Kubernetes' variables, in turn)
 * and merged equals a single-process run cell for cell; a shard killed
 * mid-run and rerun alone completes without redoing finished cells; the
 * status view reads it all from the files; the Slurm scripts and the
 * Kubernetes manifests are well formed.
 */
import { assertEquals, assertOk, assertRejects } from "./assert.ts";
// deno-lint-ignore no-import-prefix -- test-only YAML parser, kept out of the project's imports
import { parseAllDocuments } from "npm:yaml@2.9.1";
// deno-lint-ignore no-import-prefix -- test-only Kubernetes schemas (from the OpenAPI spec)
import { Job } from "npm:kubernetes-models@5.1.0/batch/v1";
// deno-lint-ignore no-import-prefix -- test-only Kubernetes schemas (from the OpenAPI spec)
import { ConfigMap, PersistentVolumeClaim } from "npm:kubernetes-models@5.1.0/v1";
import { cellId, type CellKey, cellPath } from "../core/results.ts";
import { parseGridConfig } from "../core/config.ts";
import { planCells } from "../core/plan.ts";
import { shardOf } from "../core/shard.ts";
import { markerPath, markFailed, markRunning, readStatus, renderStatus } from "../core/status.ts";
import { ResultStore } from "../core/store.ts";
import { join } from "../core/paths.ts";
import { assertSameShard, planShard } from "../cli/scale_out.ts";
import { UserError } from "../core/errors.ts";
import { childEnv, resultsOf } from "./fixtures/cli_run.ts";

const root = new URL("..", import.meta.url).pathname;
const main = join(root, "cli/main.ts");
const cacheDir = await Deno.makeTempDir({ prefix: "pgd-scale-cache-" });
const noDataDir = join(cacheDir, "no-d4rl-files");
Deno.mkdirSync(noDataDir, { recursive: true });
const shardCount = 3;

/** The smallest seeds that put `wanted[i]` groups of the test grid on shard i of `wanted.length`. */
function seedsFor(wanted: number[]): number[] {
  const left = [...wanted];
  const seeds: number[] = [];
  for (let seed = 0; left.some((n) => n > 0); seed++) {
    const shard = shardOf(
      { dataset: "maze2d-umaze", source: "real", agent: "td3bc", seed },
      wanted.length,
    );
    if (left[shard] > 0) {
      left[shard] -= 1;
      seeds.push(seed);
    }
  }
  return seeds;
}

function spawnCli(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", main, ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: childEnv(env),
  }).spawn();
}

async function finish(child: Deno.ChildProcess): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

/** Smaller networks and fewer steps than even `smoke`, where only the harness is under test. */
const tinyAgent = JSON.stringify({
  td3bc: { hiddenDims: [32, 32], schedule: { trainingSteps: 60, evaluationEpisodes: 1 } },
});

function gridArgs(seeds: number[], out: string, agentOptions?: string): string[] {
  return [
    "run",
    "--preset=smoke",
    "--datasets=maze2d-umaze",
    "--sources=real",
    "--agents=td3bc",
    `--seeds=${seeds.join(",")}`,
    "--workers=1",
    `--out=${out}`,
    `--cache-dir=${cacheDir}`,
    `--data-dir=${noDataDir}`,
    ...(agentOptions ? [`--agent-options=${agentOptions}`] : []),
  ];
}

Deno.test("scale-out: 3 shards from Slurm's and Kubernetes' variables, merged, equal one process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pgd-scale-" });
  try {
    const seeds = seedsFor(new Array(shardCount).fill(1));
    assertEquals(seeds.length, shardCount);
    const single = join(dir, "single");
    const whole = await finish(spawnCli(gridArgs(seeds, single, tinyAgent)));
    assertEquals(whole.code, 0, whole.output);
    const expected = await resultsOf(single);
    assertEquals(expected.size, seeds.length);

    const variants: {
      name: string;
      env: (index: number) => Record<string, string>;
      args: string[];
      says: string;
    }[] = [
      {
        name: "slurm",
        env: (index) => ({
          SLURM_ARRAY_TASK_ID: String(index),
          SLURM_ARRAY_TASK_COUNT: String(shardCount),
          SLURM_ARRAY_TASK_MIN: "0",
        }),
        args: [],
        says: "SLURM_ARRAY_TASK_ID",
      },
      {
        name: "kubernetes",
        env: (index) => ({ JOB_COMPLETION_INDEX: String(index) }),
        args: [`--shard-count=${shardCount}`],
        says: "JOB_COMPLETION_INDEX",
      },
    ];
    for (const variant of variants) {
      const shardDirs = [...Array(shardCount).keys()].map((i) => join(dir, variant.name, `${i}`));
      const runs = await Promise.all(
        shardDirs.map((out, index) =>
          finish(
            spawnCli([...gridArgs(seeds, out, tinyAgent), ...variant.args], variant.env(index)),
          )
        ),
      );
      for (const [index, run] of runs.entries()) {
        assertEquals(run.code, 0, `${variant.name} shard ${index}:\n${run.output}`);
        assertOk(run.output.includes(`shard ${index}/${shardCount}`), run.output);
        assertOk(
          run.output.includes(variant.says),
          `the CLI names ${variant.says}:\n${run.output}`,
        );
        // Each shard ran its own cells and nothing else.
        const own = planCells(parseGridConfig({ seeds, agents: ["td3bc"], sources: ["real"] }))
          .filter((cell) => shardOf(cell, shardCount) === index).map(cellId);
        assertEquals([...(await resultsOf(shardDirs[index])).keys()].sort(), own.sort());
      }
      const merged = join(dir, variant.name, "merged");
      const merge = await finish(spawnCli(["merge", merged, ...shardDirs]));
      assertEquals(merge.code, 0, merge.output);
      const combined = await resultsOf(merged);
      assertEquals([...combined.keys()].sort(), [...expected.keys()].sort());
      for (const [id, numbers] of expected) {
        assertEquals(combined.get(id), numbers, `${variant.name}: cell ${id}`);
      }
      const summary = await Deno.readTextFile(join(merged, "summary.md"));
      assertOk(!summary.includes("expected cells have no result"), summary);
      const status = await readStatus(merged);
      assertEquals(status.shardCount, shardCount);
      assertEquals(status.totals.finished, seeds.length);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scale-out: a shard killed mid-run, rerun alone, completes without redoing cells", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pgd-scale-kill-" });
  try {
    // Two groups on shard 0 of 2, one on shard 1; cells of the full smoke size (seconds each), so
    // that the kill lands while the second cell runs.
    const seeds = seedsFor([2, 1]);
    const out = join(dir, "shard-0");
    const args = [...gridArgs(seeds, out), "--shard=0/2"];
    const mine = planCells(parseGridConfig({ seeds, agents: ["td3bc"], sources: ["real"] }))
      .filter((cell) => shardOf(cell, 2) === 0);
    assertEquals(mine.length, 2);

    const child = spawnCli(args);
    const store = new ResultStore(out);
    const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
    // Killed once one cell has its result and the other its running marker.
    let first: CellKey | undefined;
    let second: CellKey | undefined;
    const deadline = Date.now() + 120_000;
    while (!(first && second) && Date.now() < deadline) {
      await new Promise((done) => setTimeout(done, 50));
      first = undefined;
      second = undefined;
      for (const cell of mine) if (await store.read(cell)) first = cell;
      for (const cell of mine) {
        if (cell !== first && await exists(join(out, markerPath(cell)))) second = cell;
      }
    }
    assertOk(first && second, "within two minutes, no cell finished while the next one ran");
    child.kill("SIGKILL");
    await child.output();
    // The worker notices its scheduler is gone and exits; give it a moment.
    await new Promise((done) => setTimeout(done, 1000));
    const firstFile = await Deno.readTextFile(store.pathOf(first));

    const before = await readStatus(out);
    const shard0 = before.shards[0];
    assertEquals(shard0.counts.finished, 1, renderStatus(before));
    // Its process is gone: `status` says so where it can look (Linux's /proc).
    const canLook = await exists("/proc/self");
    assertEquals(shard0.counts[canLook ? "interrupted" : "running"], 1, renderStatus(before));
    assertEquals(before.shards[1].counts.missing, 1, renderStatus(before));

    const rerun = await finish(spawnCli(args));
    assertEquals(rerun.code, 0, rerun.output);
    assertOk(rerun.output.includes("1 cells finished, 1 already done"), rerun.output);
    assertEquals(await Deno.readTextFile(store.pathOf(first)), firstFile);
    for (const cell of mine) assertOk(await store.read(cell), `${cellId(cell)} has no result`);
    const after = await readStatus(out);
    assertEquals(after.shards[0].counts.finished, 2, renderStatus(after));
    assertEquals(after.shards[0].counts.missing + after.shards[0].counts.interrupted, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status: finished, running, interrupted, failed, unreadable and missing per shard, from files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pgd-status-" });
  try {
    const config = parseGridConfig({ seeds: 6, agents: ["td3bc"], out: dir, preset: "smoke" });
    const cells = planCells(config);
    await Deno.writeTextFile(
      join(dir, "run.json"),
      JSON.stringify({ config, expectedCells: cells, shard: { index: 0, count: 2 } }),
    );
    const store = new ResultStore(dir);
    const shard = (cell: CellKey) => ({ index: shardOf(cell, 2), count: 2 });
    const [running, gone, failed] = cells;
    await markRunning(store, running, shard(running));
    await markRunning(store, gone, shard(gone));
    // A marker left by a process that is gone (killed, its node rebooted).
    const goneFile = join(dir, markerPath(gone));
    const goneMarker = JSON.parse(await Deno.readTextFile(goneFile));
    goneMarker.pid = 999_999_999;
    await Deno.writeTextFile(goneFile, JSON.stringify(goneMarker));
    await markFailed(store, failed, shard(failed), "NaN loss\n  at update");
    // A result cut short (a full disk, a copy interrupted) is unreadable, not missing.
    const truncated = cells[3];
    await Deno.mkdir(join(dir, cellPath(truncated), ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, cellPath(truncated)), '{"schemaVersion": 1, "cell": {');
    const status = await readStatus(dir, { isAlive: (pid) => pid === Deno.pid });
    const states = new Map(status.cells.map((s) => [cellId(s.cell), s.state]));
    assertEquals(states.get(cellId(running)), "running");
    assertEquals(states.get(cellId(gone)), "interrupted");
    assertEquals(states.get(cellId(failed)), "failed");
    assertEquals(states.get(cellId(truncated)), "unreadable");
    assertEquals(status.totals.missing, cells.length - 4);
    assertEquals(status.shards.length, 2);
    for (const entry of status.shards) {
      assertEquals(
        Object.values(entry.counts).reduce((a, b) => a + b, 0),
        cells.filter((cell) => shardOf(cell, 2) === entry.shard).length,
      );
    }
    const text = renderStatus(status);
    assertOk(text.includes("NaN loss") && !text.includes("at update"), text);
    assertOk(text.includes(`${cellId(failed)} [shard ${shardOf(failed, 2)}]`), text);
    assertOk(text.includes(`unreadable:\n  ${cellId(truncated)}`), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planShard: the cells of the shard the environment names, and the manifest entry", () => {
  const config = parseGridConfig({ seeds: 8, sources: ["real"], agents: ["td3bc", "iql"] });
  const plan = planShard(config, {}, { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "3" });
  assertEquals(plan.shard, { index: 1, count: 3, origin: "slurm" });
  assertEquals(plan.cells, planCells(config).filter((cell) => shardOf(cell, 3) === 1));
  assertEquals(plan.manifest, { shard: { index: 1, count: 3, origin: "slurm" } });
  assertOk(plan.message.includes(`${plan.cells.length} of 16 cells`), plan.message);
  const whole = planShard(config, {}, {});
  assertEquals(whole.cells.length, 16);
  assertEquals(whole.shard, undefined);
});

Deno.test("a folder holding one shard refuses another shard or the whole grid, naming the count", async () => {
  const config = parseGridConfig({ seeds: 8, sources: ["real"], agents: ["td3bc", "iql"] });
  const out = await Deno.makeTempDir({ prefix: "pgd-shard-folder-" });
  try {
    const task = (id: string, count: string) =>
      planShard(config, {}, { SLURM_ARRAY_TASK_ID: id, SLURM_ARRAY_TASK_COUNT: count });
    await assertSameShard(out, task("0", "1")); // no run.json yet: anything goes
    await Deno.writeTextFile(`${out}/run.json`, JSON.stringify(task("0", "3").manifest));
    await assertSameShard(out, task("0", "3"));
    // `sbatch --array=0` alone: an array of one task, whose one shard is the whole grid.
    await assertRejects(
      () => assertSameShard(out, task("0", "1")),
      UserError,
      "holds shard 0 of 3 (its run.json), but this run is shard 0 of 1: pass --shard-count 3",
    );
    await assertRejects(
      () => assertSameShard(out, planShard(config, {}, {})),
      UserError,
      "but this run is the whole grid",
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("examples: the Slurm scripts parse, the array counts from 0 and the merge waits for it", async () => {
  const folder = join(root, "examples/slurm");
  for (const script of ["pgd-grid.sbatch", "pgd-merge.sbatch", "submit.sh"]) {
    const check = await new Deno.Command("bash", { args: ["-n", join(folder, script)] }).output();
    assertEquals(check.code, 0, `${script}: ${new TextDecoder().decode(check.stderr)}`);
  }
  const grid = await Deno.readTextFile(join(folder, "pgd-grid.sbatch"));
  assertOk(/^#SBATCH --array=0-\d+/m.test(grid), "the array counts from 0");
  assertOk(grid.includes("cli/main.ts run") && !grid.includes("--shard "), grid);
  const submit = await Deno.readTextFile(join(folder, "submit.sh"));
  assertOk(/--dependency="?afterany:/.test(submit) && submit.includes("pgd-merge.sbatch"), submit);
  const merge = await Deno.readTextFile(join(folder, "pgd-merge.sbatch"));
  assertOk(merge.includes(" merge ") && merge.includes(" status "), merge);
  parseGridConfig(JSON.parse(await Deno.readTextFile(join(folder, "grid.json"))), "grid.json");
});

Deno.test("examples: the Kubernetes manifests validate against the Kubernetes schemas", async () => {
  const folder = join(root, "examples/kubernetes");
  const models: Record<string, new (data: never) => { validate(): void }> = {
    Job: Job as never,
    ConfigMap: ConfigMap as never,
    PersistentVolumeClaim: PersistentVolumeClaim as never,
  };
  const resources: Record<string, Record<string, unknown>> = {};
  for (const file of ["grid-job.yaml", "merge-job.yaml"]) {
    for (const document of parseAllDocuments(await Deno.readTextFile(join(folder, file)))) {
      assertEquals(document.errors.length, 0, `${file}: ${document.errors.join("; ")}`);
      const resource = document.toJS() as Record<string, unknown>;
      const kind = resource.kind as string;
      assertOk(models[kind], `${file}: unexpected kind ${kind}`);
      new models[kind](resource as never).validate();
      resources[`${kind}/${(resource.metadata as { name: string }).name}`] = resource;
    }
  }
  // deno-lint-ignore no-explicit-any -- walking parsed YAML
  const grid = resources["Job/pgd-grid"] as any;
  assertEquals(grid.spec.completionMode, "Indexed");
  const pod = grid.spec.template.spec;
  const container = pod.containers[0];
  const countArg = container.args.find((arg: string) => arg.startsWith("--shard-count="));
  assertEquals(
    Number(countArg.split("=")[1]),
    grid.spec.completions,
    "--shard-count = completions",
  );
  assertOk(container.args.some((arg: string) => arg.includes("$(SHARD_INDEX)")));
  assertEquals(
    container.env.find((e: { name: string }) => e.name === "SHARD_INDEX").valueFrom.fieldRef
      .fieldPath,
    "metadata.annotations['batch.kubernetes.io/job-completion-index']",
  );
  const claim =
    pod.volumes.find((v: { persistentVolumeClaim?: unknown }) => v.persistentVolumeClaim)
      .persistentVolumeClaim.claimName;
  // deno-lint-ignore no-explicit-any -- walking parsed YAML
  const volume = resources[`PersistentVolumeClaim/${claim}`] as any;
  assertOk(volume, `the claim ${claim} is defined`);
  assertEquals(volume.spec.accessModes, ["ReadWriteMany"]);
  // deno-lint-ignore no-explicit-any -- walking parsed YAML
  const configMap = resources["ConfigMap/pgd-grid"] as any;
  parseGridConfig(JSON.parse(configMap.data["grid.json"]), "ConfigMap pgd-grid");
  // deno-lint-ignore no-explicit-any -- walking parsed YAML
  const merge = resources["Job/pgd-merge"] as any;
  assertEquals(merge.spec.template.spec.containers[0].image, container.image);
  assertOk(merge.spec.template.spec.containers[0].args[0].includes(" merge "));

  const dockerfile = await Deno.readTextFile(join(folder, "Dockerfile"));
  assertOk(/^FROM node:/m.test(dockerfile) && dockerfile.includes("deno@2.9.6"), dockerfile);
  assertOk(dockerfile.includes("COPY . .") && dockerfile.includes("cli/main.ts"), dockerfile);
});
