/**
 * Every dataset family through the command line, each in a fresh process on
 * a fresh cache, as a new user would run it: `collect` for one family, and a
 * smoke grid whose main process collects the others (Maze2d with its
 * controller, each locomotion environment by training SAC) before its workers
 * train on them. Neither process has set compute up before collection starts.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { run } from "./fixtures/cli_run.ts";
import { cellResultSchema } from "../core/results.ts";

/** The CLI on `cacheDir` with an empty data folder: no D4RL file, so every dataset is collected. */
async function cli(args: string[], cacheDir: string): Promise<{ code: number; output: string }> {
  const noDataDir = `${cacheDir}/no-d4rl-files`;
  await Deno.mkdir(noDataDir, { recursive: true });
  return await run(cacheDir, [...args, "--data-dir", noDataDir]);
}

Deno.test("cli: `collect` on a fresh cache trains SAC and writes a locomotion dataset", async () => {
  const cacheDir = await Deno.makeTempDir({ prefix: "pgd-collect-cli-" });
  try {
    const { code, output } = await cli(
      ["collect", "halfcheetah-medium", "--preset", "smoke"],
      cacheDir,
    );
    assertEquals(code, 0, output);
    assertOk(/halfcheetah-medium: \d+ steps, \d+ episodes/.test(output), output);
    const files = [...Deno.readDirSync(`${cacheDir}/datasets`)].map((entry) => entry.name);
    assertOk(files.some((name) => name.startsWith("halfcheetah-medium") && name.endsWith(".hdf5")));
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("cli: a smoke grid on a fresh cache collects and trains on every dataset family", async () => {
  const cacheDir = await Deno.makeTempDir({ prefix: "pgd-families-cache-" });
  const out = await Deno.makeTempDir({ prefix: "pgd-families-" });
  const datasets = ["maze2d-umaze", "halfcheetah-medium", "hopper-medium", "walker2d-medium"];
  try {
    const { code, output } = await cli([
      "run",
      "--preset=smoke",
      `--datasets=${datasets.join(",")}`,
      "--sources=real",
      "--agents=td3bc",
      "--seeds=1",
      "--workers=1",
      `--out=${out}`,
    ], cacheDir);
    assertEquals(code, 0, output);
    for (const dataset of datasets) {
      assertOk(
        output.includes(`${dataset}: collecting`),
        `${dataset} was not collected:\n${output}`,
      );
      const file = `${out}/cells/${dataset}/real/td3bc/seed-0.json`;
      const result = cellResultSchema.parse(JSON.parse(await Deno.readTextFile(file)));
      assertEquals(result.cell.dataset, dataset);
      assertOk(Number.isFinite(result.finalScore), `${dataset}: ${result.finalScore}`);
    }
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});
