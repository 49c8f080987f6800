/**
 * What the report says in the cases the browser test's full run does not
 * reach: few seeds (a visible note on the Welch tests), no analysis yet (the
 * command that fills the section), the Welch table's improvement column, and
 * a folder holding cells of more than one configuration (refused).
 */
import { assertEquals, assertOk, assertRejects } from "./assert.ts";
import { writeSyntheticRun } from "./fixtures/synthetic_run.ts";
import { writeReports } from "../reports/mod.ts";
import { join } from "../core/paths.ts";
import { UserError } from "../core/errors.ts";

const main = new URL("../cli/main.ts", import.meta.url).pathname;

/** A synthetic run in a fresh folder, without seeds `drop` and without analysis files. */
async function syntheticRun(drop: number[] = []): Promise<string> {
  const runDir = await Deno.makeTempDir({ prefix: "pgd-report-items-" });
  await writeSyntheticRun(runDir, { analysis: false });
  if (drop.length) {
    const walk = async (folder: string) => {
      for await (const entry of Deno.readDir(folder)) {
        const path = join(folder, entry.name);
        if (entry.isDirectory) await walk(path);
        else if (drop.some((seed) => entry.name === `seed-${seed}.json`)) await Deno.remove(path);
      }
    };
    await walk(join(runDir, "cells"));
  }
  return runDir;
}

Deno.test("report: with two seeds, the page and summary.md say what a Welch test can show", async () => {
  const runDir = await syntheticRun([2, 3]);
  try {
    const { htmlPath, markdownPath, terminal } = await writeReports(runDir);
    const note = "with 2 seeds a test has about 1 degree of freedom and rarely finds a difference";
    const html = await Deno.readTextFile(htmlPath);
    const table2 = html.slice(html.indexOf('<section id="table2">'), html.indexOf("</section>"));
    assertOk(table2.includes(note), "the note is under Table 2");
    assertOk((await Deno.readTextFile(markdownPath)).includes(note), "summary.md");
    assertOk(terminal.split("\n").join(" ").includes(note), terminal);
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("report: without analysis files, the analysis section names the command that fills it", async () => {
  const runDir = await syntheticRun();
  try {
    const html = await Deno.readTextFile((await writeReports(runDir)).htmlPath);
    const section = html.slice(html.indexOf('<section id="analysis">'));
    assertOk(
      section.slice(0, section.indexOf("</section>")).includes("deno task pgd analyze --out"),
      section.slice(0, 600),
    );
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("report: every row of summary.md's Welch table says whether it is an improvement", async () => {
  const runDir = await syntheticRun();
  try {
    const markdown = await Deno.readTextFile((await writeReports(runDir)).markdownPath);
    const section = markdown.slice(markdown.indexOf("## Welch's t-tests"));
    const rows = section.split("\n\n")[1].split("\n").slice(2);
    assertOk(rows.length > 10, section.slice(0, 600));
    for (const row of rows) {
      const improvement = row.split("|").map((cell) => cell.trim()).at(-2);
      assertOk(["yes", "no", "—"].includes(improvement ?? ""), row);
    }
    // The synthetic policy-guided data are better by construction: some rows say so.
    assertOk(rows.some((row) => row.trim().endsWith("| yes |")), section.slice(0, 600));
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("report: a folder holding cells of two presets or two options is refused in one line", async () => {
  for (
    const [change, named] of [
      [{ preset: "quick" }, "preset"],
      [{ agentOptions: { expectile: 0.9 } }, "options of agent 'iql'"],
    ] as const
  ) {
    const runDir = await syntheticRun();
    try {
      const file = join(runDir, "cells/maze2d-umaze/real/iql/seed-1.json");
      const cell = JSON.parse(await Deno.readTextFile(file));
      await Deno.writeTextFile(file, JSON.stringify({ ...cell, ...change }));
      const error = await assertRejects(() => writeReports(runDir), UserError);
      assertOk(error.message.includes(named) && !error.message.includes("\n"), error.message);
      assertOk(error.message.includes("cells/maze2d-umaze/real/iql/seed-1.json"), error.message);
      // Through the CLI: one line, exit 2, and no report written over the folder.
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--quiet", main, "report", runDir],
        stdout: "null",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const message = new TextDecoder().decode(stderr).trim();
      assertEquals(code, 2, message);
      assertEquals(message.split("\n").length, 1, message);
      await assertRejects(() => Deno.stat(join(runDir, "report.html")), Deno.errors.NotFound);
    } finally {
      await Deno.remove(runDir, { recursive: true });
    }
  }
});
