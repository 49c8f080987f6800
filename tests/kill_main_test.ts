/**
 * Kill -9 of the main process at each stage of a grid (collecting the
 * dataset, training a denoiser, training an agent), with one and with two
 * workers: its orphaned workers exit (their stdin closes), and a rerun
 * takes over the locks they left at once and completes the grid, with no
 * wait on a lock. Linux only: the test finds the workers through `/proc`.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { cellFiles, cli, moduleCache, run, smokeGrid } from "./grid_helpers.ts";

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

for (const [stage, marker] of Object.entries(stages)) {
  for (const workers of [1, 2]) {
    Deno.test({
      name: `kill -9 of the main process while ${stage} runs, ${workers} worker(s): ` +
        "workers exit, the rerun completes with no wait on a lock",
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
              await Deno.copyFile(
                `${warmCache}/datasets/${entry.name}`,
                `${cache}/datasets/${entry.name}`,
              );
            }
          }
          const args = smokeGrid(out, "--sources=real,unguided", `--workers=${workers}`);
          const child = cli(cache, args);
          const processes = new Set<number>();
          let reached: string[] = [];
          for (let waited = 0; waited < 120_000 && !reached.length; waited += 20) {
            await new Promise((done) => setTimeout(done, 20));
            for (const pid of childrenOf(child.pid)) processes.add(pid);
            reached = await marker(cache, out);
          }
          for (const pid of childrenOf(child.pid)) processes.add(pid);
          child.kill("SIGKILL");
          await child.status;
          await child.stdout.cancel();
          await child.stderr.cancel();
          assertOk(reached.length > 0, `the run never reached ${stage}`);
          assertOk(processes.size > 0, "no worker process was seen");
          // Orphaned workers notice their closed stdin and exit.
          for (let waited = 0; waited < 10_000; waited += 100) {
            if (![...processes].some(alive)) break;
            await new Promise((done) => setTimeout(done, 100));
          }
          assertEquals([...processes].filter(alive), [], "orphaned workers still running");

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
