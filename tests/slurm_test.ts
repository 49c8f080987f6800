/**
 * The Slurm examples on a real scheduler: a one-node cluster (slurmctld,
 * slurmd and munged, started by scripts/slurm_cluster.sh) runs
 * `examples/slurm/submit.sh` as a user would: a smoke grid as a job array of
 * 3 tasks sharing one cache, and the merge job that waits for it. One task is
 * cancelled mid-run; the merge that follows lists what it left missing;
 * resubmitted alone the way the README says (`--array=K` with the shard count
 * kept, on 2 cores) it runs 2 workers and only the cells it had not finished,
 * and the second merge equals a single-process run cell for cell.
 *
 * Starting the daemons needs root (and apt, when Slurm is not installed):
 * elsewhere the test is ignored with the reason.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { cellId, type CellKey } from "../core/results.ts";
import { parseGridConfig } from "../core/config.ts";
import { planCells } from "../core/plan.ts";
import { shardOf } from "../core/shard.ts";
import { markerPath } from "../core/status.ts";
import { ResultStore } from "../core/store.ts";
import { dirname, join } from "../core/paths.ts";
import { childEnv, resultsOf } from "./fixtures/cli_run.ts";

const root = new URL("..", import.meta.url).pathname;
const clusterScript = join(root, "scripts/slurm_cluster.sh");
const submitScript = join(root, "examples/slurm/submit.sh");
const decoder = new TextDecoder();

/** Why no cluster can be started here (the script's `--check`), or `undefined`. */
async function cannotStart(): Promise<string | undefined> {
  try {
    const check = await new Deno.Command("bash", { args: [clusterScript, "--check"] }).output();
    if (check.success) return undefined;
    return decoder.decode(check.stdout).trim() || decoder.decode(check.stderr).trim();
  } catch (error) {
    return `bash could not run: ${error instanceof Error ? error.message : error}`;
  }
}

const reason = await cannotStart();
if (reason) console.log(`Slurm test ignored: ${reason}`);

interface Cluster {
  /** Its slurm.conf; its folder holds everything else of the cluster. */
  conf: string;
  /** Stops it (the script ends when its standard input closes); resolves to its stderr. */
  stop(): Promise<{ code: number; stderr: string }>;
}

/** Lines of a stream, as they come. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
    }
  }
  if (buffer) yield buffer;
}

/** Starts the one-node cluster and resolves once its node is idle. */
async function startCluster(): Promise<Cluster> {
  const child = new Deno.Command("bash", {
    args: [clusterScript],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: childEnv(),
    clearEnv: true,
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stop = async () => {
    await child.stdin.close().catch(() => {});
    const { code } = await child.status;
    return { code, stderr: await stderr };
  };
  let conf: string | undefined;
  for await (const line of lines(child.stdout)) {
    const ready = /^slurm_cluster: ready (.+)$/.exec(line);
    if (ready) {
      conf = ready[1];
      break;
    }
  }
  if (!conf) {
    const { code, stderr } = await stop();
    throw new Error(`the cluster did not start (exit ${code}):\n${stderr}`);
  }
  // The rest of its output is not needed, but must not fill the pipe.
  child.stdout.cancel().catch(() => {});
  return { conf, stop };
}

async function command(
  name: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(name, {
    args,
    cwd: root,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

/** `JobState` of a job, or of each task of an array, keyed by `JobId`. */
async function jobStates(id: string, env: Record<string, string>): Promise<Map<string, string>> {
  const { code, output } = await command("scontrol", ["show", "job", "-o", id], env);
  assertEquals(code, 0, `scontrol show job ${id}: ${output}`);
  const states = new Map<string, string>();
  for (const line of output.split("\n").filter((l) => l.includes("JobState="))) {
    const job = /\bJobId=(\S+)/.exec(line)![1];
    const task = /\bArrayTaskId=(\S+)/.exec(line)?.[1];
    states.set(
      task === undefined ? job : `${/\bArrayJobId=(\S+)/.exec(line)![1]}_${task}`,
      /\bJobState=(\S+)/.exec(line)![1],
    );
  }
  return states;
}

const endedStates = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
]);

/** Waits until every task of a job has ended; returns their states. */
async function waitForJob(
  id: string,
  env: Record<string, string>,
  deadline: number,
  whileWaiting?: () => Promise<void>,
): Promise<Map<string, string>> {
  while (true) {
    const states = await jobStates(id, env);
    if ([...states.values()].every((state) => endedStates.has(state))) return states;
    assertOk(Date.now() < deadline, `job ${id} has not ended in time: ${[...states]}`);
    await whileWaiting?.();
    await new Promise((done) => setTimeout(done, 200));
  }
}

/** Pids of the processes whose environment holds `entry` (e.g. `SLURM_CONF=…`) exactly. */
async function processesWith(entry: string, cmdlineIncludes = ""): Promise<number[]> {
  const pids: number[] = [];
  for await (const item of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(item.name) || Number(item.name) === Deno.pid) continue;
    try {
      const environ = await Deno.readTextFile(`/proc/${item.name}/environ`);
      if (!environ.split("\0").includes(entry)) continue;
      const cmdline = (await Deno.readTextFile(`/proc/${item.name}/cmdline`)).replaceAll("\0", " ");
      if (cmdline.includes(cmdlineIncludes)) pids.push(Number(item.name));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

/** `[pid, parent pid]` of every process whose command line includes `cmdlineIncludes`. */
async function childrenWith(cmdlineIncludes: string): Promise<[number, number][]> {
  const found: [number, number][] = [];
  for await (const item of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(item.name)) continue;
    try {
      const cmdline = (await Deno.readTextFile(`/proc/${item.name}/cmdline`)).replaceAll("\0", " ");
      if (!cmdline.includes(cmdlineIncludes)) continue;
      // stat: "pid (comm) state ppid …"; comm may hold spaces, so read after its ')'.
      const stat = await Deno.readTextFile(`/proc/${item.name}/stat`);
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      found.push([Number(item.name), parent]);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

async function fileExists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test({
  name: "slurm: the example job array and merge on slurmctld and slurmd, a task cancelled and " +
    `resubmitted alone on 2 cores${reason ? ` (ignored: ${reason})` : ""}`,
  ignore: reason !== undefined,
  async fn() {
    const started = Date.now();
    const dir = await Deno.makeTempDir({ prefix: "pgd-slurm-test-" });
    const logs: string[] = [];
    let cluster: Cluster | undefined;
    let finished = false;
    // What the cleanup found wrong; a failure of the test's body is not hidden by it.
    const problems: string[] = [];
    try {
      // Seeds 1 and 2 put 1, 2 and 3 groups on the 3 shards, and the unguided and policy-guided
      // cells of each seed, which share one denoiser, on two different shards; on 2 cores, those
      // two tasks run at once for most of their time.
      const noData = join(dir, "no-d4rl-files");
      await Deno.mkdir(noData);
      const grid = {
        datasets: ["maze2d-umaze"],
        sources: ["real", "unguided", "policy-guided"],
        agents: ["td3bc"],
        seeds: [1, 2],
        preset: "smoke",
        dataDirs: [noData],
      };
      const gridFile = join(dir, "grid.json");
      await Deno.writeTextFile(gridFile, JSON.stringify(grid, null, 2));
      const cells = planCells(parseGridConfig(grid));
      const shardCount = 3;
      const sizes = [0, 1, 2].map((i) => cells.filter((c) => shardOf(c, shardCount) === i).length);
      assertEquals(sizes.toSorted(), [1, 2, 3], "the grid's cells per shard");
      // The task to cancel: one cell finished, one running and one queued when it is cancelled,
      // so that its rerun on 2 cores has 2 groups for its 2 workers.
      const victim = sizes.indexOf(3);
      const victimCells = cells.filter((c) => shardOf(c, shardCount) === victim);

      // The single-process run uses the cache path the array will use (results name their dataset
      // file), then leaves it empty, so that the array's tasks build every dataset and denoiser.
      const run = join(dir, "run");
      const cache = join(run, "cache");
      const single = join(dir, "single");
      const whole = await command(Deno.execPath(), [
        "run",
        "--allow-all",
        "cli/main.ts",
        "run",
        `--config=${gridFile}`,
        `--out=${single}`,
        `--cache-dir=${cache}`,
        "--workers=1",
      ], childEnv());
      assertEquals(whole.code, 0, whole.output);
      const expected = await resultsOf(single);
      assertEquals(expected.size, cells.length);
      await Deno.remove(cache, { recursive: true });

      cluster = await startCluster();
      // What a user sets: where the run goes, the grid, and memory that fits this machine
      // (for the merge job too; the scripts ask for 32G and 4G).
      const env = childEnv({
        SLURM_CONF: cluster.conf,
        PGD_RUN: run,
        PGD_GRID: gridFile,
        SBATCH_MEM_PER_NODE: "1G",
      });
      const submitted = /job array (\d+); merge: job (\d+)/;
      const first = await command(
        "bash",
        [submitScript, `--array=0-${shardCount - 1}`, "--cpus-per-task=1"],
        env,
      );
      assertEquals(first.code, 0, first.output);
      const [, array, merge] = submitted.exec(first.output) ?? [];
      assertOk(array && merge, first.output);
      const shardDir = (i: number) => join(run, "shards", `${i}`);
      for (let i = 0; i < shardCount; i++) logs.push(join(root, `logs/pgd-grid-${array}_${i}.out`));
      logs.push(join(root, `logs/pgd-merge-${merge}.out`));

      // Cancelled once one of its cells has a result and another its running marker.
      const store = new ResultStore(shardDir(victim));
      const deadline = Date.now() + 150_000;
      while (true) {
        const done: CellKey[] = [];
        for (const cell of victimCells) if (await store.read(cell)) done.push(cell);
        const running: CellKey[] = [];
        for (const cell of victimCells) {
          if (await fileExists(join(shardDir(victim), markerPath(cell)))) running.push(cell);
        }
        if (done.length >= 1 && running.some((cell) => !done.includes(cell))) break;
        assertOk(Date.now() < deadline, `task ${victim} never had a cell done and one running`);
        await new Promise((ok) => setTimeout(ok, 50));
      }
      const cancel = await command("scancel", [`${array}_${victim}`], env);
      assertEquals(cancel.code, 0, cancel.output);
      const firstStates = await waitForJob(merge, env, deadline);
      assertEquals(firstStates.get(merge), "COMPLETED", `merge job ${merge}`);
      const arrayStates = await jobStates(array, env);
      for (let i = 0; i < shardCount; i++) {
        assertEquals(
          arrayStates.get(`${array}_${i}`),
          i === victim ? "CANCELLED" : "COMPLETED",
          `task ${i}: ${[...arrayStates]}\n${await Deno.readTextFile(logs[i]).catch(() => "")}`,
        );
      }
      const finishedBefore = new Map<string, string>();
      for (const cell of victimCells) {
        if (await store.read(cell)) {
          finishedBefore.set(cellId(cell), await Deno.readTextFile(store.pathOf(cell)));
        }
      }
      const left = victimCells.length - finishedBefore.size;
      assertOk(left >= 2, `the cancelled task left ${left} cells`);
      // The merge ran after every task had ended, the cancelled one too, and says what is missing.
      const firstMergeLog = await Deno.readTextFile(logs[shardCount]);
      assertOk(firstMergeLog.includes(`${left} expected cell(s) have no result`), firstMergeLog);
      const cancelledLog = await Deno.readTextFile(logs[victim]);
      assertOk(/CANCELLED/.test(cancelledLog), cancelledLog);

      // Resubmitted alone, as the README says, with the shard count kept, on 2 cores.
      const second = await command(
        "bash",
        [submitScript, `--array=${victim}`, "--cpus-per-task=2"],
        { ...env, PGD_SHARD_COUNT: `${shardCount}` },
      );
      assertEquals(second.code, 0, second.output);
      const [, rerun, remerge] = submitted.exec(second.output) ?? [];
      assertOk(rerun && remerge, second.output);
      const rerunLog = join(root, `logs/pgd-grid-${rerun}_${victim}.out`);
      const remergeLog = join(root, `logs/pgd-merge-${remerge}.out`);
      logs.push(rerunLog, remergeLog);
      // The task's worker processes, counted while it runs. Workers start with a cleared
      // environment, so they are found as children of the task's main process; one of them
      // is the plugin host, which checks plugins and finds datasets before the grid starts.
      let workers = 0;
      const countWorkers = async () => {
        const mains = new Set(await processesWith(`SLURM_ARRAY_JOB_ID=${rerun}`, "cli/main.ts"));
        const children = (await childrenWith("cli/worker.ts")).filter(([, parent]) =>
          mains.has(parent)
        );
        workers = Math.max(workers, children.length - 1);
      };
      const secondStates = await waitForJob(remerge, env, deadline + 60_000, countWorkers);
      assertEquals(secondStates.get(remerge), "COMPLETED", `merge job ${remerge}`);
      assertEquals([...(await jobStates(rerun, env)).values()], ["COMPLETED"]);

      const rerunText = await Deno.readTextFile(rerunLog);
      assertOk(
        rerunText.includes(`shard ${victim}/${shardCount} (from SLURM_ARRAY_TASK_ID`),
        rerunText,
      );
      assertOk(rerunText.includes(`in ${left} groups on 2 workers`), rerunText);
      assertOk(
        rerunText.includes(`${left} cells finished, ${finishedBefore.size} already done`),
        rerunText,
      );
      assertEquals(workers, 2, "grid workers of the task on 2 cores (beside its plugin host)");
      // Nothing that had finished was recomputed: its result file is the same, byte for byte.
      for (const cell of victimCells) {
        const before = finishedBefore.get(cellId(cell));
        if (before) assertEquals(await Deno.readTextFile(store.pathOf(cell)), before, cellId(cell));
      }

      // Every cell once: in the shard folder of its own shard and in no other.
      const seen: string[] = [];
      for (let i = 0; i < shardCount; i++) {
        const ids = [...(await resultsOf(shardDir(i))).keys()];
        for (const id of ids) {
          assertEquals(shardOf(cells.find((c) => cellId(c) === id)!, shardCount), i, id);
        }
        seen.push(...ids);
      }
      assertEquals(seen.toSorted(), cells.map(cellId).toSorted());
      // The merged result equals the single-process run, cell for cell.
      const merged = await resultsOf(join(run, "merged"));
      assertEquals([...merged.keys()].toSorted(), [...expected.keys()].toSorted());
      for (const [id, numbers] of expected) assertEquals(merged.get(id), numbers, `cell ${id}`);
      const summary = await Deno.readTextFile(join(run, "merged", "summary.md"));
      assertOk(!summary.includes("expected cells have no result"), summary);

      // `status` on the shard folders, as the merge job and a user run it.
      const shardDirs = [0, 1, 2].map(shardDir);
      const status = await command(
        Deno.execPath(),
        ["run", "--allow-all", "--quiet", "cli/main.ts", "status", "--json", ...shardDirs],
        env,
      );
      assertEquals(status.code, 0, status.output);
      const totals = JSON.parse(status.output).totals as Record<string, number>;
      assertEquals(totals.finished, cells.length, status.output);
      assertEquals(Object.values(totals).reduce((a, b) => a + b, 0), cells.length, status.output);
      const remergeText = await Deno.readTextFile(remergeLog);
      assertOk(remergeText.includes(`merged ${shardCount} folder(s)`), remergeText);
      assertOk(!remergeText.includes("have no result"), remergeText);
      // The shards' reports are rebuilt, not reported as files the merge does not know.
      assertOk(!remergeText.includes("unknown file"), remergeText);

      // The logs where the scripts say: one per task, one per merge.
      for (let i = 0; i < shardCount; i++) {
        const text = await Deno.readTextFile(logs[i]);
        assertOk(text.includes(`shard ${i}/${shardCount} (from SLURM_ARRAY_TASK_ID`), text);
        assertOk(/ on 1 worker\b/.test(text), text);
      }
      console.log(`slurm test: ${((Date.now() - started) / 1000).toFixed(0)} s`);
      finished = true;
    } finally {
      if (cluster) {
        const { code, stderr } = await cluster.stop();
        const clusterDir = dirname(cluster.conf);
        // No daemon, slurmstepd or job of this cluster is left.
        const pgrep = await command("pgrep", ["-a", "-f", clusterDir], childEnv());
        if (pgrep.output.trim()) problems.push(`processes left:\n${pgrep.output}`);
        const left = await processesWith(`SLURM_CONF=${cluster.conf}`);
        if (left.length) problems.push(`processes of the cluster left: ${left.join(" ")}`);
        if (code !== 0) problems.push(`slurm_cluster.sh exited with ${code}:\n${stderr}`);
        if (await fileExists(clusterDir)) problems.push(`${clusterDir} was not removed`);
      }
      for (const log of logs) {
        if (!finished) {
          const text = await Deno.readTextFile(log).catch(() => "(none)\n");
          console.error(`--- ${log} (last lines) ---\n${text.split("\n").slice(-15).join("\n")}`);
        }
        await Deno.remove(log).catch(() => {});
      }
      // The folder the scripts made, when nothing else is in it.
      await Deno.remove(join(root, "logs")).catch(() => {});
      await Deno.remove(dir, { recursive: true });
      if (problems.length && !finished) console.error(problems.join("\n"));
    }
    if (problems.length) throw new Error(problems.join("\n"));
  },
});
