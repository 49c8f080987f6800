/**
 * Least privilege: plugin code runs in worker processes that may read only
 * the project, packages, data, cache and output folders, write only the
 * output and cache folders, and neither spawn processes nor use the network;
 * a refusal fails the cell naming the plugin and the permission; a grant
 * (`--plugin-allow`) widens it; URL plugins are refused unless granted.
 */
import { assertEquals, assertOk } from "./assert.ts";
import {
  describeRefusal,
  isUrlPlugin,
  permissionFlags,
  pluginFolders,
  workerEnvironment,
  workerEnvironmentNames,
} from "../core/permissions.ts";
import { workerAccess } from "../core/host.ts";
import { parseGridConfig } from "../core/config.ts";
import { cellFiles, cli, moduleCache, run, smokeGrid } from "./fixtures/cli_run.ts";

const cacheDir = await moduleCache("pgd-permissions-cache-");
const plugin = "--plugin=./tests/fixtures/plugins/overreaching.ts";

Deno.test("permissions: a worker reads and writes only the harness's folders, with no network or subprocess", () => {
  const config = parseGridConfig({
    out: "results/x",
    cacheDir: ".cache-x",
    plugins: ["./tests/fixtures/plugins/overreaching.ts"],
  });
  const flags = permissionFlags(workerAccess(config));
  const read = flags.find((flag) => flag.startsWith("--allow-read="))!.split("=")[1].split(",");
  const write = flags.find((flag) => flag.startsWith("--allow-write="))!.split("=")[1].split(",");
  assertEquals(write.sort(), [`${Deno.cwd()}/.cache-x`, `${Deno.cwd()}/results/x`]);
  for (const folder of [...write, `${Deno.cwd()}/data/d4rl`, ...pluginFolders(config.plugins)]) {
    assertOk(read.includes(folder), `${folder} readable: ${read}`);
  }
  assertOk(!read.includes("/") && !read.some((path) => path === Deno.env.get("HOME")), `${read}`);
  for (const absent of ["--allow-net", "--allow-run", "--allow-all", "--allow-import"]) {
    assertOk(!flags.some((flag) => flag.startsWith(absent)), `${absent} in ${flags}`);
  }
  assertOk(flags.includes("--deny-import") && flags.includes("--no-prompt"), `${flags}`);
  const ffi = flags.filter((flag) => flag.startsWith("--allow-ffi"));
  assertOk(ffi.length === 0 || /^--allow-ffi=[^,]+$/.test(ffi[0]), `one library at most: ${ffi}`);
  // Grants add to the lists or grant a kind whole.
  const granted = permissionFlags({
    ...workerAccess(config),
    grants: ["net", "read=/srv/extra", "run=echo"],
  });
  assertOk(granted.includes("--allow-net"), `${granted}`);
  assertOk(granted.includes("--allow-run=echo"), `${granted}`);
  assertOk(granted.some((flag) => /^--allow-read=.*,\/srv\/extra$/.test(flag)), `${granted}`);
  assertOk(!granted.includes("--deny-import"), "net lets a plugin import by URL");
});

Deno.test("permissions: URLs are fetched, paths and file URLs read; a refusal names the plugin on its stack", () => {
  assertOk(isUrlPlugin("https://example.org/p.ts") && isUrlPlugin("jsr:@x/p"));
  assertOk(!isUrlPlugin("./p.ts") && !isUrlPlugin("/srv/p.ts") && !isUrlPlugin("file:///srv/p.ts"));
  assertEquals(pluginFolders(["file:///srv/plugins/p.ts", "https://example.org/q.ts"]), [
    "/srv/plugins",
  ]);
  const error = new Deno.errors.NotCapable('Requires net access to "example.org:443"');
  error.stack = `${error.message}\n    at generate (file:///srv/plugins/p.ts:3:9)`;
  assertEquals(
    describeRefusal(error, ["./other.ts", "/srv/plugins/p.ts"]),
    "permission denied to plugin '/srv/plugins/p.ts': Requires net access to \"example.org:443\" " +
      "(grant it with --plugin-allow net, if it should)",
  );
  assertOk(
    describeRefusal(error, ["./other.ts"]).startsWith("permission denied to the cell's code"),
  );
});

Deno.test("permissions: a worker's environment holds the harness's variables alone, and those granted", () => {
  const env = workerEnvironment([])!;
  for (const name of Object.keys(env)) {
    assertOk(
      name === "DENO_DIR" ||
        workerEnvironmentNames.some((pattern) =>
          pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern
        ),
      `${name} passed to a worker`,
    );
  }
  assertEquals(env.HOME, undefined);
  const home = Deno.env.get("HOME");
  if (home) assertEquals(workerEnvironment(["env=HOME"])!.HOME, home);
  assertEquals(workerEnvironment(["env"]), undefined, "env granted whole: inherited");
});

Deno.test("permissions: a plugin reading outside its folders, spawning a process or opening a socket fails its cell, named", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-overreach-" });
  const outside = await Deno.makeTempDir({ prefix: "pgd-secret-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connected = false;
  const accepting = (async () => {
    for await (const connection of listener) {
      connected = true;
      connection.close();
    }
  })();
  try {
    const secret = `${outside}/secret.txt`;
    await Deno.writeTextFile(secret, "not for plugins");
    const env = { PGD_SECRET_FILE: secret, PGD_SOCKET_PORT: String(listener.addr.port) };
    const { code, output } = await run(
      cacheDir,
      smokeGrid(out, plugin, "--sources=real,reads-outside,spawns,opens-socket"),
      env,
    );
    assertEquals(code, 2, output);
    assertOk(output.includes("3 cell(s) failed"), output);
    const named = "permission denied to plugin './tests/fixtures/plugins/overreaching.ts'";
    const expected: [string, RegExp][] = [
      ["reads-outside", /Requires read access to "[^"]*secret\.txt".*--plugin-allow read/],
      ["spawns", /Requires run access to "\/bin\/echo".*--plugin-allow run/],
      ["opens-socket", /Requires net access to "127\.0\.0\.1:\d+".*--plugin-allow net/],
    ];
    for (const [source, refusal] of expected) {
      const line = output.split("\n").find((text) =>
        text.includes(`maze2d-umaze/${source}/td3bc/seed-0: `)
      );
      assertOk(line?.includes(named) && refusal.test(line), `${source}:\n${output}`);
    }
    assertOk(!connected, "the socket was opened");
    // The real cell ran: refusals fail their own cells alone.
    assertEquals((await cellFiles(out)).length, 1);

    // Granted explicitly, the same read succeeds.
    const granted = await run(
      cacheDir,
      smokeGrid(out, plugin, "--sources=reads-outside", `--plugin-allow=read=${outside}`),
      env,
    );
    assertEquals(granted.code, 0, granted.output);
    assertEquals((await cellFiles(out)).length, 2);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    await Deno.remove(out, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("permissions: a plugin by URL is refused unless imports are granted, in one line", async () => {
  const { code, output } = await run(
    cacheDir,
    smokeGrid("/tmp/pgd-never-written", "--plugin=https://example.org/plugin.ts"),
  );
  assertEquals(code, 2, output);
  assertOk(
    /flags\.plugins\.0: 'https:\/\/example\.org\/plugin\.ts' is a URL: .*--plugin-allow import/
      .test(output),
    output,
  );
  assertOk(!/\n\s+at /.test(output), `no stack:\n${output}`);
});

Deno.test("config: a grid file's data folder that does not exist is one line naming the file and key", async () => {
  const folder = await Deno.makeTempDir({ prefix: "pgd-grid-file-" });
  try {
    const file = `${folder}/grid.json`;
    await Deno.writeTextFile(file, JSON.stringify({ dataDirs: [folder, `${folder}/typo`] }));
    const { code, output } = await run(
      cacheDir,
      ["run", `--config=${file}`, "--preset=smoke", `--out=${folder}/out`],
    );
    assertEquals(code, 2, output);
    const lines = output.trim().split("\n");
    assertEquals(lines.length, 1, output);
    assertOk(
      lines[0].includes(
        `grid config '${file}': key "dataDirs[1]": '${folder}/typo' is not a folder`,
      ),
      output,
    );
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("permissions: a plugin module loads only in worker processes, never in the main process", async () => {
  const out = await Deno.makeTempDir({ prefix: "pgd-announcing-" });
  try {
    const child = cli(
      cacheDir,
      smokeGrid(out, "--plugin=./tests/fixtures/plugins/announcing.ts", "--sources=announcing"),
    );
    const { code, stdout, stderr } = await child.output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assertEquals(code, 0, output);
    const loaders = [...output.matchAll(/plugin loaded in process (\d+)/g)].map((m) =>
      Number(m[1])
    );
    // The contract check (a plugin host) and the cell's worker.
    assertOk(loaders.length >= 2, output);
    assertOk(!loaders.includes(child.pid), `loaded in the main process ${child.pid}:\n${output}`);
    assertEquals((await cellFiles(out)).length, 1);
    // `plugins` checks and lists it through a worker too.
    const listed = cli("", ["plugins", "--plugin=./tests/fixtures/plugins/announcing.ts"]);
    const result = await listed.output();
    const text = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
    assertEquals(result.code, 0, text);
    assertOk(/source\s+announcing\s+\.\/tests\/fixtures\/plugins\/announcing\.ts/.test(text), text);
    assertOk(!text.includes(`process ${listed.pid}`), text);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("permissions: a plugin whose top-level code reaches past its permissions fails the run at the check, in one line", async () => {
  const outside = await Deno.makeTempDir({ prefix: "pgd-secret-" });
  try {
    const secret = `${outside}/secret.txt`;
    await Deno.writeTextFile(secret, "not for plugins");
    const { code, output } = await run(
      cacheDir,
      smokeGrid(`${outside}/out`, "--plugin=./tests/fixtures/plugins/reads_at_load.ts"),
      { PGD_SECRET_FILE: secret },
    );
    assertEquals(code, 2, output);
    assertOk(
      /cannot load plugin '\.\/tests\/fixtures\/plugins\/reads_at_load\.ts': .*Requires read access to "[^"]*secret\.txt"/
        .test(output),
      output,
    );
    assertOk(!/\n\s+at /.test(output), `no stack:\n${output}`);
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});
