/**
 * The progress display on a real pseudo-terminal: a smoke grid on two
 * workers runs under util-linux `script`, and its output is replayed on a
 * screen of the same size. Every frame shows each running cell once, with
 * its phase and progress; a finished cell's row is gone; the closing table
 * fits the terminal's width.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { replay } from "./screen.ts";
import { join } from "../core/paths.ts";

const main = new URL("../cli/main.ts", import.meta.url).pathname;
const columns = 80;

/** Why the test cannot run here, or undefined when util-linux `script` is at hand. */
async function missingScript(): Promise<string | undefined> {
  try {
    const { stdout } = await new Deno.Command("script", { args: ["--version"], stdout: "piped" })
      .output();
    const version = new TextDecoder().decode(stdout);
    return version.includes("util-linux") ? undefined : `'script' is not util-linux's (${version})`;
  } catch {
    return "no 'script' command (util-linux) to give the grid a pseudo-terminal";
  }
}

const skipReason = await missingScript();
if (skipReason) console.log(`pty progress test skipped: ${skipReason}`);

/** A word for the shell, in single quotes. */
function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A live row: its label (cell id or the grid), an optional phase, a bar and a percentage. */
const rowPattern = /^ (\S+)(?: {2}(\S.*?))? +[█░]+ +(\d+)%$/;
/** A terminal control sequence (cursor moves, erasing, modes). */
const escapeSequence = new RegExp(String.raw`\x1b\[[?\d;]*[A-Za-z]`, "g");
const phasePattern = /^(prepare|generate|train|evaluate)(: \S.*)?$/;

Deno.test({
  name: "progress: on a terminal, one live row per running cell, gone when done; the table fits",
  ignore: skipReason !== undefined,
  async fn() {
    const folder = await Deno.makeTempDir({ prefix: "pgd-pty-" });
    try {
      const grid = [
        Deno.execPath(),
        "run",
        "--allow-all",
        "--quiet",
        main,
        "run",
        "--preset=smoke",
        "--datasets=maze2d-umaze",
        "--sources=real,unguided",
        "--agents=td3bc,iql",
        "--seeds=1",
        "--workers=2",
        `--out=${join(folder, "out")}`,
        `--cache-dir=${join(folder, "cache")}`,
      ].map(quote).join(" ");
      const log = join(folder, "terminal.log");
      const env: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1" };
      // The display draws only on a terminal, and not under CI.
      delete env.CI;
      const { code, stderr } = await new Deno.Command("script", {
        args: ["-qfec", `stty cols ${columns} rows 30; exec ${grid}`, log],
        clearEnv: true,
        env,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      const raw = await Deno.readTextFile(log);
      assertEquals(code, 0, new TextDecoder().decode(stderr) + raw.slice(-3000));
      // `script` writes a header line of its own into the log.
      const output = raw.slice(raw.indexOf("\n") + 1);
      const { frames, final } = replay(output, columns);

      const phases = new Set<string>();
      let together = 0;
      for (const frame of frames) {
        const live = frame.map((line) => rowPattern.exec(line)).filter((match) => match !== null);
        const cells = live.filter((match) => match[1].startsWith("maze2d-umaze/"));
        const ids = cells.map((match) => match[1]);
        assertEquals(new Set(ids).size, ids.length, `a cell on two rows:\n${frame.join("\n")}`);
        if (ids.length === 2) together += 1;
        for (const match of cells) {
          if (match[2] === undefined) continue; // Started, no progress yet.
          assertOk(phasePattern.test(match[2]), `phase '${match[2]}' in:\n${frame.join("\n")}`);
          phases.add(match[2].split(":")[0]);
        }
        for (const id of ids) {
          assertOk(
            !frame.some((line) => line.startsWith(`done ${id}:`)),
            `${id} is done and still has a live row:\n${frame.join("\n")}`,
          );
        }
      }
      // Two workers ran cells at the same time (what could put a cell on two rows).
      assertOk(together > 0, "no frame showed two running cells");
      for (const phase of ["prepare", "generate", "train"]) {
        assertOk(phases.has(phase), `phase ${phase} never shown (${[...phases]})`);
      }
      // Every cell finished, and no live row is left below the closing lines.
      assertOk(final.some((line) => line.startsWith("4 cells finished, 0 already done, 0 failed")));
      assertOk(!final.some((line) => rowPattern.test(line)), final.join("\n"));

      // The closing table as written (before the terminal wraps anything) fits the width.
      // (A carriage return starts the line over.)
      const plain = output.replace(escapeSequence, "").split(/\r?\n/)
        .map((line) => line.slice(line.lastIndexOf("\r") + 1));
      // (The paths printed after it are what they are.)
      const table = plain.slice(
        plain.findIndex((line) => line.startsWith("4 cells finished")),
        plain.findIndex((line) => line.startsWith("report: ")),
      );
      assertOk(table.some((line) => /^maze2d-umaze +td3bc +iql$/.test(line)), table.join("\n"));
      assertOk(table.some((line) => line.startsWith("Final normalised score")), table.join("\n"));
      for (const line of table) {
        assertOk([...line].length <= columns, `${[...line].length} > ${columns}: ${line}`);
      }
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
  },
});
