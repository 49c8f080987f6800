/**
 * Kill -9 of the main process at each stage of a grid (collecting the
 * dataset, training a denoiser, training an agent), with one and with two
 * workers: its orphaned workers exit (their stdin closes), and a rerun
 * completes the grid with no wait on a lock. Orphans that see their pipe
 * break release their locks; kill -9 of the whole process tree leaves them,
 * and the rerun takes them over at once (the workers, which may not read
 * `/proc`, ask the scheduler whether an owner lives). Linux only: the test
 * finds the workers through `/proc`.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { cellFiles, cli, moduleCache, run, smokeGrid } from "./fixtures/cli_run.ts";

const hasProc = await Deno.stat("/proc/self").then(() => true, () => false);
const warmCache = await moduleCache("pgd-kill-main-cache-");

/** Every process whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // The fields after the command name (in parentheses): state, ppid, …
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent === pid) children.push(Number(entry.name));
    } catch {
      // The process ended while being read.
    }
  }
  return children;
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Every `.lock` file under `folder`. */
async function locks(folder: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (at: string) => {
    for await (const entry of Deno.readDir(at)) {
      const path = `${at}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".lock")) found.push(path);
    }
  };
  await walk(folder).catch(() => {});
  return found;
}

const stages = {
  collection: (cache: string, _out: string) => locks(`${cache}/datasets`),
  denoiser: (cache: string, _out: string) => locks(`${cache}/models`),
  agent: async (_cache: string, out: string) => {
    const lock = `${out}/cells/maze2d-umaze/real/td3bc/seed-0.json.lock`;
    return await Deno.stat(lock).then(() => [lock], () => []);
  },
};

const cases = Object.keys(stages).flatMap((stage) => [
  { stage, workers: 1, tree: false },
  { stage, workers: 2, tree: false },
  { stage, workers: 2, tree: true },
]) as { stage: keyof typeof stages; workers: number; tree: boolean }[];

for (const { stage, workers, tree } of cases) {
  const marker = stages[stage];
  {
    Deno.test({
      name:
        `kill -9 of the ${
          tree ? "main process and its workers" : "main process"
        } while ${stage} runs, ${workers} worker(s): ` +
        "no worker is left, the rerun completes with no wait on a lock",
      ignore: !hasProc,
      async fn() {
        const cache = await Deno.makeTempDir({ prefix: "pgd-kill-main-" });
        const out = await Deno.makeTempDir({ prefix: "pgd-kill-main-out-" });
        try {
          if (stage !== "collection") {
            // The dataset is collected once for these; each has its own models.
            const warm = await run(warmCache, ["collect", "maze2d-umaze", "--preset=smoke"]);
            assertEquals(warm.code, 0, warm.output);
            await Deno.mkdir(`${cache}/datasets`);
            for await (const entry of Deno.readDir(`${warmCache}/datasets`)) {
              const [from, to] = [`${warmCache}/datasets`, `${cache}/datasets`];
              if (entry.name.endsWith(".json")) {
                // The record names its file: this cache's copy.
                const text = await Deno.readTextFile(`${from}/${entry.name}`);
                await Deno.writeTextFile(`${to}/${entry.name}`, text.replaceAll(from, to));
              } else await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
            }
          }
          const args = smokeGrid(out, "--sources=real,unguided", `--workers=${workers}`);
          const child = cli(cache, args);
          let exited = false;
          child.status.then(() => exited = true);
          const processes = new Set<number>();
          let reached: string[] = [];
          for (let waited = 0; waited < 120_000 && !reached.length && !exited; waited += 20) {
            await new Promise((done) => setTimeout(done, 20));
            for (const pid of childrenOf(child.pid)) processes.add(pid);
            reached = await marker(cache, out);
          }
          for (const pid of childrenOf(child.pid)) processes.add(pid);
          if (!exited) child.kill("SIGKILL");
          if (tree) { for (const pid of processes) if (alive(pid)) Deno.kill(pid, "SIGKILL"); }
          await child.status;
          const early = exited
            ? new TextDecoder().decode(await new Response(child.stderr).arrayBuffer())
            : "";
          await child.stdout.cancel();
          if (!exited) await child.stderr.cancel();
          assertOk(reached.length > 0, `the run never reached ${stage}:\n${early}`);
          assertOk(processes.size > 0, "no worker process was seen");
          // Orphaned workers notice their closed stdin and exit.
          for (let waited = 0; waited < 10_000; waited += 100) {
            if (![...processes].some(alive)) break;
            await new Promise((done) => setTimeout(done, 100));
          }
          assertEquals([...processes].filter(alive), [], "orphaned workers still running");
          if (tree) {
            // Nobody cleaned up: the rerun has locks of dead owners to take over.
            assertOk((await locks(cache)).length + (await locks(out)).length > 0, "no lock left");
          }

          const started = performance.now();
          const rerun = await run(cache, args);
          const seconds = (performance.now() - started) / 1000;
          assertEquals(rerun.code, 0, rerun.output);
          assertEquals((await cellFiles(out)).length, 2, rerun.output);
          assertOk(!rerun.output.includes("waiting for"), `a wait on a lock:\n${rerun.output}`);
          assertOk(seconds < 45, `the rerun took ${seconds.toFixed(0)} s`);
          assertEquals([...await locks(cache), ...await locks(out)], [], "locks left behind");
        } finally {
          await Deno.remove(cache, { recursive: true });
          await Deno.remove(out, { recursive: true });
        }
      },
    });
  }
}
