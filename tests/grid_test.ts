/**
 * End-to-end: the CLI runs a `smoke` grid in worker processes, writes every
 * cell and the reports, resumes after being killed without redoing finished
 * cells, and runs a user's plugin loaded by path.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { cellResultSchema } from "../core/results.ts";
import { writeD4rl } from "../core/d4rl.ts";
import { maze2d } from "../plugins/envs/maze2d.ts";
import {
  cellFiles,
  cli as spawnCli,
  moduleCache,
  run as runCli,
  smokeGrid,
} from "./fixtures/cli_run.ts";

const cacheDir = await moduleCache("pgd-grid-cache-");
const cli = (args: string[], env: Record<string, string> = {}) => spawnCli(cacheDir, args, env);
const run = (args: string[], env: Record<string, string> = {}) => runCli(cacheDir, args, env);

Deno.test("grid: a smoke grid runs both agents in parallel workers and reports", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-grid-" });
  const { code, output } = await run([
    "run",
    "--preset=smoke",
    "--datasets=maze2d-umaze",
    "--sources=real",
    "--agents=td3bc,iql",
    "--seeds=1",
    "--workers=2",
    `--out=${out}`,
  ]);
  assertEquals(code, 0, output);
  const files = await cellFiles(out);
  assertEquals(files.length, 2, files.join("\n"));
  for (const file of files) {
    const result = cellResultSchema.parse(JSON.parse(await Deno.readTextFile(file)));
    assertOk(Number.isFinite(result.finalScore));
    assertOk(result.evaluations.length >= 1);
    assertOk(result.losses.length >= 1);
  }
  for (const report of ["summary.md", "report.html", "results.csv", "run.json"]) {
    assertOk((await Deno.stat(`${out}/${report}`)).size > 0, report);
  }
  await Deno.remove(out, { recursive: true });
});

Deno.test("grid: killed mid-run, it resumes without redoing finished cells", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-resume-" });
  const args = [
    "run",
    "--preset=smoke",
    "--datasets=maze2d-umaze",
    "--sources=real",
    "--agents=td3bc",
    "--seeds=3",
    "--workers=1",
    `--out=${out}`,
  ];
  const child = cli(args);
  // Kill the run as soon as its first cell is stored.
  let first: string[] = [];
  for (let waited = 0; waited < 240_000 && !first.length; waited += 100) {
    await new Promise((done) => setTimeout(done, 100));
    first = await cellFiles(out);
  }
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assertOk(first.length >= 1, "no cell finished before the time limit");
  const partial = await cellFiles(out);
  assertOk(partial.length < 3, "the run finished before it could be killed");
  const before = new Map<string, string>();
  for (const file of partial) before.set(file, await Deno.readTextFile(file));

  const { code, output } = await run(args);
  assertEquals(code, 0, output);
  const after = await cellFiles(out);
  assertEquals(after.length, 3, after.join("\n"));
  for (const [file, text] of before) {
    assertEquals(await Deno.readTextFile(file), text, `${file} was redone`);
  }
  assertOk(output.includes(`${partial.length} already finished`), output);
  await Deno.remove(out, { recursive: true });
});

Deno.test("grid: the example plugin loads by path and runs in a smoke grid", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-plugin-" });
  const { code, output } = await run([
    "run",
    "--preset=smoke",
    "--plugin=./examples/noisy_source.ts",
    "--datasets=maze2d-umaze",
    "--sources=noisy-real",
    "--agents=td3bc",
    "--seeds=1",
    "--workers=1",
    `--out=${out}`,
    '--source-options={"noisy-real":{"noiseScale":0.05}}',
  ]);
  assertEquals(code, 0, output);
  const [file] = await cellFiles(out);
  const result = cellResultSchema.parse(JSON.parse(await Deno.readTextFile(file)));
  assertEquals(result.cell.source, "noisy-real");
  assertEquals(result.sourceOptions, { noiseScale: 0.05 });
  await Deno.remove(out, { recursive: true });
});

Deno.test("grid: a worker killed mid-cell is replaced; its cell fails with the reason, the queue still runs", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-crash-" });
  const markers = await Deno.makeTempDir({ prefix: "pgd-crash-markers-" });
  try {
    const args = smokeGrid(
      out,
      "--plugin=./tests/fixtures/crash_once_source.ts",
      // Killing its own process and writing its marker are granted here.
      `--plugin-allow=run,write=${markers}`,
      "--sources=crash-once,real",
      "--seeds=2",
    );
    const first = await run(args, { PGD_CRASH_MARKER_DIR: markers });
    // The killed cell is named with its reason, and the run exits non-zero.
    assertOk(first.code !== 0, first.output);
    assertOk(
      /crash-once\/td3bc\/seed-0: worker \d+ exited/.test(first.output),
      `the lost cell and its reason:\n${first.output}`,
    );
    assertOk(first.output.includes("takes the"), first.output);
    // The report names the cell with its reason, not only as missing.
    const summary = await Deno.readTextFile(`${out}/summary.md`);
    assertOk(
      /`cells\/maze2d-umaze\/crash-once\/td3bc\/seed-0\.json` — failed: worker \d+ exited/.test(
        summary,
      ),
      summary,
    );
    // Every other cell ran on the replacement worker.
    const files = (await cellFiles(out)).map((file) => file.slice(out.length + 1));
    assertEquals(files, [
      "cells/maze2d-umaze/crash-once/td3bc/seed-1.json",
      "cells/maze2d-umaze/real/td3bc/seed-0.json",
      "cells/maze2d-umaze/real/td3bc/seed-1.json",
    ]);
    // Rerun: only the lost cell runs, and the grid is complete.
    const second = await run(args, { PGD_CRASH_MARKER_DIR: markers });
    assertEquals(second.code, 0, second.output);
    assertOk(second.output.includes("1 cells finished, 3 already done"), second.output);
    assertEquals((await cellFiles(out)).length, 4);
  } finally {
    await Deno.remove(out, { recursive: true });
    await Deno.remove(markers, { recursive: true });
  }
});

Deno.test("grid: a plugin hook that never resolves fails its cell after the timeout, naming the hook", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-hang-" });
  try {
    const { code, output } = await run(
      smokeGrid(
        out,
        "--plugin=./tests/fixtures/hanging_source.ts",
        "--sources=hanging,real",
        "--hook-timeout=2",
      ),
    );
    assertEquals(code, 2, output);
    assertOk(
      /hanging\/td3bc\/seed-0: .*data source 'hanging' generate \(generation 0\) did not finish within 2 s/
        .test(output),
      output,
    );
    const files = (await cellFiles(out)).map((file) => file.slice(out.length + 1));
    assertEquals(files, ["cells/maze2d-umaze/real/td3bc/seed-0.json"]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("grid: user errors are one line naming the flag, file or key, exit 2, no stack", async () => {
  const folder = await Deno.makeTempDir({ prefix: "pgd-errors-" });
  try {
    const smoke = ["--preset=smoke", "--sources=real", "--agents=td3bc", "--seeds=1"];
    const aFile = `${folder}/a-file`;
    await Deno.writeTextFile(aFile, "not a folder");
    // A truncated D4RL file, and one whose observations are 3 wide where maze2d's are 4.
    const truncatedDir = `${folder}/truncated`;
    const narrowDir = `${folder}/narrow`;
    await Deno.mkdir(truncatedDir);
    await Deno.mkdir(narrowDir);
    const dataset = await maze2d().collect!({ dataset: "maze2d-umaze", seed: 1, preset: "smoke" });
    await writeD4rl(`${folder}/whole.hdf5`, dataset);
    const bytes = await Deno.readFile(`${folder}/whole.hdf5`);
    await Deno.writeFile(`${truncatedDir}/maze2d-umaze-v1.hdf5`, bytes.slice(0, bytes.length / 2));
    const narrow = {
      ...dataset,
      observationDim: 3,
      observations: dataset.observations.filter((_, i) => i % 4 !== 3),
      nextObservations: undefined,
      infos: {},
    };
    await writeD4rl(`${narrowDir}/maze2d-umaze-v1.hdf5`, narrow);
    const cases: [string[], RegExp][] = [
      [["run", "--preset=huge"], /argument 'huge' is invalid/],
      [
        ["run", ...smoke, `--out=${folder}/o0`, `--data-dir=${folder}/typo`],
        /--data-dir '.*typo': no such folder; expected a folder holding D4RL files/,
      ],
      [
        ["run", ...smoke, `--out=${aFile}`],
        /--out '.*a-file': is a file; expected a result folder/,
      ],
      [
        ["run", ...smoke, `--out=${folder}/o1`, `--data-dir=${truncatedDir}`],
        /maze2d-umaze-v1\.hdf5: truncated: its HDF5 superblock says \d+ bytes, the file has \d+/,
      ],
      [
        ["run", ...smoke, `--out=${folder}/o2`, `--data-dir=${narrowDir}`],
        /maze2d-umaze-v1\.hdf5: key "observations": has 3 columns; maze2d-umaze's observations have 4/,
      ],
    ];
    for (const [args, expected] of cases) {
      const { code, output } = await run(args);
      assertEquals(code, 2, `${args.join(" ")}:\n${output}`);
      assertOk(expected.test(output), `${args.join(" ")}:\n${output}`);
      assertOk(!/\n\s+at /.test(output), `no stack:\n${output}`);
    }
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("grid: an unknown plugin or option fails at once with one clear error", async () => {
  const unknown = await run(["run", "--preset=smoke", "--sources=realistic", "--out=/tmp/x"]);
  assertEquals(unknown.code, 2, unknown.output);
  assertOk(unknown.output.includes("unknown data source 'realistic'"), unknown.output);
  const option = await run([
    "run",
    "--preset=smoke",
    '--agent-options={"td3bc":{"alfa":2}}',
    "--out=/tmp/x",
  ]);
  assertEquals(option.code, 2, option.output);
  assertOk(option.output.includes("alfa"), option.output);
});

Deno.test("grid: a cell's identity includes its data; a changed --data-dir reruns it and the cell says which data it used", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-data-" });
  const dataDir = await Deno.makeTempDir({ prefix: "pgd-data-dir-" });
  try {
    const args = smokeGrid(out);
    const file = `${out}/cells/maze2d-umaze/real/td3bc/seed-0.json`;
    const collected = await run([...args, `--data-dir=${dataDir}`]);
    assertEquals(collected.code, 0, collected.output);
    assertOk(collected.output.includes("maze2d-umaze: collected dataset"), collected.output);
    const first = cellResultSchema.parse(JSON.parse(await Deno.readTextFile(file)));
    assertEquals(first.data?.origin, "collected");
    assertOk(first.data!.rows > 0 && first.data!.key?.startsWith("maze2d-umaze__smoke"));

    // A D4RL file appears in the data folder: the cell is stale and runs again on it.
    await Deno.copyFile(first.data!.path, `${dataDir}/maze2d-umaze-v1.hdf5`);
    const fromFile = await run([...args, `--data-dir=${dataDir}`]);
    assertEquals(fromFile.code, 0, fromFile.output);
    assertOk(fromFile.output.includes("maze2d-umaze: D4RL file"), fromFile.output);
    assertOk(fromFile.output.includes("1 cells finished, 0 already done"), fromFile.output);
    const second = cellResultSchema.parse(JSON.parse(await Deno.readTextFile(file)));
    assertEquals(second.data?.origin, "d4rl-file");
    assertEquals(second.data?.path, `${dataDir}/maze2d-umaze-v1.hdf5`);
    assertEquals(second.data?.sha256?.length, 64);
    const manifest = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
    assertEquals(manifest.datasets["maze2d-umaze"].sha256, second.data?.sha256);

    // The same data again: nothing reruns.
    const again = await run([...args, `--data-dir=${dataDir}`]);
    assertOk(again.output.includes("all 1 cells already finished"), again.output);
  } finally {
    await Deno.remove(out, { recursive: true });
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("grid: finished cells of another configuration are never overwritten; the run refuses, naming the fields", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-other-config-" });
  try {
    const args = smokeGrid(out);
    const first = await run(args);
    assertEquals(first.code, 0, first.output);
    const file = `${out}/cells/maze2d-umaze/real/td3bc/seed-0.json`;
    const before = await Deno.readTextFile(file);
    const stored = cellResultSchema.parse(JSON.parse(before));
    assertEquals(stored.identity?.preset, "smoke");
    const other = await run([...args, '--agent-options={"td3bc":{"alpha":5}}']);
    assertEquals(other.code, 2, other.output);
    assertOk(
      other.output.includes("1 finished cell(s) were made by another configuration"),
      other.output,
    );
    assertOk(other.output.includes('agentOptions {} ≠ {"alpha":5}'), other.output);
    assertEquals(await Deno.readTextFile(file), before, "the finished cell is untouched");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("grid: two runs into one folder at once compute each cell once", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-two-runs-" });
  try {
    const args = smokeGrid(out, "--agents=td3bc,iql", "--seeds=3");
    // The dataset is collected once before, so both runs reach their cells together.
    const warm = await run(["collect", "maze2d-umaze", "--preset=smoke"]);
    assertEquals(warm.code, 0, warm.output);
    const [first, second] = await Promise.all([run(args), run(args)]);
    assertEquals(first.code, 0, first.output);
    assertEquals(second.code, 0, second.output);
    const computed = (output: string) => Number(/(\d+) cells finished/.exec(output)?.[1] ?? NaN);
    assertEquals(
      computed(first.output) + computed(second.output),
      6,
      `each of the 6 cells computed once:\n${first.output}\n---\n${second.output}`,
    );
    assertEquals((await cellFiles(out)).length, 6);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("grid: each cell names the models it used by content; a model's cache key includes the compute path", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-artefacts-" });
  const wasmOut = await Deno.makeTempDir({ prefix: "pgd-artefacts-wasm-" });
  try {
    const first = await run(smokeGrid(out, "--sources=unguided,pets"));
    assertEquals(first.code, 0, first.output);
    const artefactsOf = async (folder: string, source: string) => {
      const result = cellResultSchema.parse(
        JSON.parse(
          await Deno.readTextFile(`${folder}/cells/maze2d-umaze/${source}/td3bc/seed-0.json`),
        ),
      );
      return result.artefacts ?? [];
    };
    // The unguided cell used its denoiser and the two unguided generations kept beside it.
    const expected = {
      unguided: ["denoiser", "unguided-windows", "unguided-windows"],
      pets: ["pets-ensemble"],
    };
    for (const [source, kinds] of Object.entries(expected)) {
      const artefacts = await artefactsOf(out, source);
      assertEquals(artefacts.map((a) => a.kind), kinds, source);
      for (const artefact of artefacts) {
        const bytes = await Deno.readFile(artefact.path);
        const hash = Array.from(
          new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
          (b) => b.toString(16).padStart(2, "0"),
        ).join("");
        assertEquals(artefact.sha256, hash, `${source}: the recorded hash is ${artefact.path}'s`);
      }
    }
    // The pure-wasm path rounds differently from BLAS: its model and samples are other entries.
    const wasm = await run(smokeGrid(wasmOut, "--sources=unguided,pets"), { PGD_BLAS: "off" });
    assertEquals(wasm.code, 0, wasm.output);
    const onBlas = first.output.includes("OpenBLAS") || /\+ \w+ \(/.test(first.output);
    const [blasFiles, wasmFiles] = [
      (await artefactsOf(out, "unguided")).map((a) => a.path),
      (await artefactsOf(wasmOut, "unguided")).map((a) => a.path),
    ];
    blasFiles.forEach((path, i) => {
      if (onBlas) assertOk(path !== wasmFiles[i], `${path} reused`);
      else assertEquals(path, wasmFiles[i]);
    });
  } finally {
    await Deno.remove(out, { recursive: true });
    await Deno.remove(wasmOut, { recursive: true });
  }
});
