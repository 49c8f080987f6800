/**
 * Helpers of the end-to-end tests: the CLI in a child process on a shared
 * cache folder, a smoke grid's flags, and the cell files of a result folder.
 */

const main = new URL("../cli/main.ts", import.meta.url).pathname;

/** A cache folder removed when the test module ends, whichever tests ran. */
export async function moduleCache(prefix: string): Promise<string> {
  const cacheDir = await Deno.makeTempDir({ prefix });
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(cacheDir, { recursive: true });
    } catch {
      // Already gone: nothing to clean.
    }
  });
  return cacheDir;
}

/** The CLI with `args` on `cacheDir` (none for `""`), its output piped. */
export function cli(
  cacheDir: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      main,
      ...args,
      ...(cacheDir ? ["--cache-dir", cacheDir] : []),
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", CI: "1", ...env },
  }).spawn();
}

/** Runs the CLI to its end: exit code and output (stdout then stderr). */
export async function run(
  cacheDir: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await cli(cacheDir, args, env).output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

/**
 * The arguments of a smoke grid on maze2d-umaze with one worker into `out`
 * (one seed of TD3+BC on real data unless `extra` adds or overrides flags).
 */
export function smokeGrid(out: string, ...extra: string[]): string[] {
  const flags = new Map(
    [
      "--preset=smoke",
      "--datasets=maze2d-umaze",
      "--sources=real",
      "--agents=td3bc",
      "--seeds=1",
      "--workers=1",
      `--out=${out}`,
      ...extra,
    ].map((flag) => [flag.split("=")[0], flag]),
  );
  return ["run", ...flags.values()];
}

/** Every cell JSON under `<out>/cells`, sorted. */
export async function cellFiles(out: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      const path = `${folder}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".json")) files.push(path);
    }
  };
  await walk(`${out}/cells`).catch(() => {});
  return files.sort();
}
