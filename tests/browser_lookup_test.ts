/**
 * The browser lookup of the report's browser test (tests/chromium.ts): a
 * browser that runs is used; a missing one is installed only as
 * scripts/install_browser.sh allows; otherwise the browser test is reported
 * as ignored with the reason. Absence is simulated (fake probes, a PATH
 * without chromium or apt-get, a named binary that does not exist), so
 * Chromium stays installed.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { type BrowserProbes, chromiumVariable, findBrowser } from "./chromium.ts";
import { join } from "../core/paths.ts";

const root = new URL("..", import.meta.url).pathname;

/** Fake probes: `present` binaries run; `install` answers as given and adds `chromium`. */
function fakeProbes(present: string[], install: { success: boolean; output: string }) {
  const calls = { install: 0 };
  const installed = new Set(present);
  const probes: BrowserProbes = {
    runs: (binary) => Promise.resolve(installed.has(binary)),
    install() {
      calls.install++;
      if (install.success) installed.add("chromium");
      return Promise.resolve(install);
    },
  };
  return { probes, calls };
}

Deno.test("browser lookup: a chromium that runs is used without installing", async () => {
  const { probes, calls } = fakeProbes(["chromium"], { success: false, output: "unused" });
  assertEquals(await findBrowser(undefined, probes), { binary: "chromium", installed: false });
  assertEquals(calls.install, 0);
});

Deno.test("browser lookup: a missing chromium that cannot be installed gives the script's reason", async () => {
  const refusal = "install_browser: chromium is not on the PATH, and only root can install it";
  const { probes, calls } = fakeProbes([], { success: false, output: `${refusal}\n` });
  const found = await findBrowser(undefined, probes);
  assertEquals(found.binary, undefined);
  assertOk(found.reason?.endsWith(refusal), found.reason);
  assertEquals(calls.install, 1);
});

Deno.test("browser lookup: a missing chromium is installed where the script can", async () => {
  const { probes, calls } = fakeProbes([], { success: true, output: "" });
  assertEquals(await findBrowser(undefined, probes), { binary: "chromium", installed: true });
  assertEquals(calls.install, 1);
});

Deno.test("browser lookup: an install that reports success but leaves no browser gives a reason", async () => {
  const probes: BrowserProbes = {
    runs: () => Promise.resolve(false),
    install: () => Promise.resolve({ success: true, output: "" }),
  };
  const found = await findBrowser(undefined, probes);
  assertOk(found.reason?.includes("install_browser.sh succeeded"), found.reason);
});

Deno.test("browser lookup: a named binary that does not run is never installed", async () => {
  const { probes, calls } = fakeProbes(["chromium"], { success: true, output: "" });
  const found = await findBrowser("/nowhere/chromium-build", probes);
  assertOk(found.reason?.startsWith(`${chromiumVariable}=/nowhere/chromium-build`), found.reason);
  assertEquals(calls.install, 0);
  assertEquals(await findBrowser("chromium", probes), { binary: "chromium", installed: false });
});

/** Where `name` lies on this process's PATH, if anywhere. */
function onPath(name: string): string | undefined {
  for (const folder of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(join(folder, name)).isFile) return join(folder, name);
    } catch {
      // Not in this folder.
    }
  }
  return undefined;
}

const sh = onPath("sh");
const id = onPath("id");

/** A folder to use as PATH holding only `sh` and `id`: no chromium, no apt-get. */
async function barePath(): Promise<string> {
  const folder = await Deno.makeTempDir({ prefix: "pgd-bare-path-" });
  await Deno.symlink(sh!, join(folder, "sh"));
  await Deno.symlink(id!, join(folder, "id"));
  return folder;
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test({
  name: "install_browser.sh refuses, saying why, where chromium and apt-get are not on the PATH" +
    (sh && id ? "" : " (ignored: no sh or id on the PATH)"),
  ignore: !sh || !id,
  async fn() {
    const folder = await barePath();
    try {
      const { code, stderr } = await new Deno.Command(sh!, {
        args: [join(root, "scripts/install_browser.sh")],
        env: { PATH: folder },
        stdout: "null",
        stderr: "piped",
      }).output();
      assertEquals(code, 1);
      const said = text(stderr);
      // As root it finds no apt-get; otherwise it may not install at all.
      const expected = Deno.uid() === 0 ? "there is no apt-get" : "only root can install it";
      assertOk(said.startsWith("install_browser: chromium is not on the PATH"), said);
      assertOk(said.includes(expected), said);
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
  },
});

/** Runs the browser test file in a child `deno test` with `env` added; returns its output. */
async function browserTestWith(env: Record<string, string>): Promise<[number, string]> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "tests/report_browser_test.ts"],
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  return [code, text(stdout) + text(stderr)];
}

/** The summary line of a `deno test` run: passed, failed and ignored counts. */
function counts(output: string): string | undefined {
  return output.match(/\d+ passed \| \d+ failed(?: \| \d+ ignored)?/)?.[0];
}

Deno.test({
  name:
    "the browser test is ignored with the reason where chromium is missing and cannot be installed" +
    (sh && id ? "" : " (ignored: no sh or id on the PATH)"),
  ignore: !sh || !id,
  sanitizeResources: false,
  async fn() {
    const folder = await barePath();
    try {
      // The default lookup: no chromium on the PATH, and the install script refuses.
      const [code, output] = await browserTestWith({ PATH: folder });
      assertEquals(code, 0, output);
      assertEquals(counts(output), "0 passed | 0 failed | 1 ignored", output);
      assertOk(
        /headless Chromium \(ignored: chromium is missing and was not installed: install_browser: chromium is not on the PATH/
          .test(output),
        output,
      );
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
    // A named binary that does not exist: ignored, and no install is tried.
    const missing = join(await Deno.makeTempDir({ prefix: "pgd-no-browser-" }), "chromium");
    try {
      const [code, output] = await browserTestWith({ [chromiumVariable]: missing });
      assertEquals(code, 0, output);
      assertEquals(counts(output), "0 passed | 0 failed | 1 ignored", output);
      assertOk(output.includes(`(ignored: ${chromiumVariable}=${missing} does not run`), output);
    } finally {
      await Deno.remove(join(missing, ".."), { recursive: true });
    }
  },
});
