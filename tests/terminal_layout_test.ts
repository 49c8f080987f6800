/**
 * What the terminal is given fits it: the closing table at any width (agents
 * in blocks where they do not fit side by side, the legend wrapped), and a
 * live progress row at any width.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { syntheticGrid, writeSyntheticRun } from "./fixtures/synthetic_run.ts";
import { loadRun } from "../reports/load.ts";
import { summarizeRun } from "../reports/summary.ts";
import { renderTerminalTable, wrapText } from "../reports/terminal.ts";
import { progressRow } from "../cli/progress.ts";
import { fit } from "../cli/live_rows.ts";

Deno.test("terminal table: every line fits the width; narrow, the agents go in blocks", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "pgd-terminal-" });
  try {
    await writeSyntheticRun(runDir);
    const summary = summarizeRun(await loadRun(runDir));
    const wide = renderTerminalTable(summary, 100).split("\n");
    const narrow = renderTerminalTable(summary, 50).split("\n");
    for (const [lines, columns] of [[wide, 100], [narrow, 50]] as const) {
      for (const line of lines) assertOk(line.length <= columns, `${columns}: ${line}`);
      // Every dataset has a header naming each agent.
      for (const dataset of syntheticGrid.datasets) {
        for (const agent of syntheticGrid.agents) {
          assertOk(
            lines.some((line) => line.startsWith(`${dataset} `) && line.includes(agent)),
            `${columns}: ${dataset} ${agent}`,
          );
        }
      }
    }
    // Side by side at 100, one agent per block at 50 where the
    // dataset's name is long (50 is about the narrowest a block of one fits).
    assertOk(wide.some((line) => /^maze2d-umaze +td3bc +iql$/.test(line)), wide.join("\n"));
    const longest = "halfcheetah-medium-replay";
    for (const agent of syntheticGrid.agents) {
      const header = new RegExp(`^${longest} +${agent}$`);
      assertOk(narrow.some((line) => header.test(line)), narrow.join("\n"));
    }
    assertEquals(
      wide.filter((line) => line.startsWith("  policy-guided ")).length,
      syntheticGrid.datasets.length,
    );
    // The legend says what few seeds mean where there are few (4 here: nothing).
    assertOk(wide.join(" ").includes("Welch's t-test, p < 0.05)."), wide.join("\n"));
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("terminal table: a legend is wrapped at spaces, a long word keeps its line", () => {
  assertEquals(wrapText("aa bb cc dd", 5), ["aa bb", "cc dd"]);
  assertEquals(wrapText("a verylongword b", 4), ["a", "verylongword", "b"]);
});

Deno.test("progress row: bar and percentage within the width; a long label is cut", () => {
  const label = "maze2d-umaze/policy-guided/td3bc/seed-0  generate: diffusion-sample";
  for (const columns of [40, 79, 120]) {
    const row = progressRow(label, 0.5, label.length, columns);
    assertOk([...row].length <= columns, `${columns}: ${row}`);
    assertOk(/ 50%$/.test(row), row);
  }
  assertOk(progressRow(label, 0.5, label.length, 120).includes(label));
  assertOk(progressRow(label, 0.5, label.length, 40).includes("…"));
  assertEquals(fit("abcdef", 4), "abc…");
  assertEquals(fit("abc", 4), "abc");
});
