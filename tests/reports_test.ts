import { assertEquals, assertOk, assertRejects } from "./assert.ts";
import { missingCell, syntheticGrid, writeSyntheticRun } from "./fixtures/synthetic_run.ts";
import {
  compareDatasets,
  lateEvaluations,
  loadRun,
  summarizeRun,
  writeReports,
} from "../reports/mod.ts";
import { formatEstimate } from "../reports/format.ts";
import { csvColumns } from "../reports/csv.ts";
import { welchTTest } from "../stats/mod.ts";
import { cellPath, type CellResult } from "../core/results.ts";
import { UserError } from "../core/errors.ts";
import { join } from "../core/paths.ts";
import { mergeResults } from "../core/merge.ts";

/** Final scores per `dataset/source/agent`, read back from the cell files. */
function scoresByEntry(results: CellResult[]): Map<string, number[]> {
  const scores = new Map<string, number[]>();
  for (const result of results) {
    const id = `${result.cell.dataset}/${result.cell.source}/${result.cell.agent}`;
    scores.set(id, [...(scores.get(id) ?? []), result.finalScore]);
  }
  return scores;
}

/** Mean ± s.e. computed here, apart from the stats module. */
function expectedText(scores: number[]): string {
  const n = scores.length;
  const mean = scores.reduce((a, b) => a + b, 0) / n;
  const variance = scores.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (n - 1);
  return formatEstimate({
    count: n,
    mean,
    standardError: Math.sqrt(variance / n),
    degreesOfFreedom: n - 1,
  });
}

/** A run's late score computed here: the mean of its last evaluations. */
function lateOfRun(result: CellResult): number {
  const late = result.evaluations.slice(-lateEvaluations).map((e) => e.normalizedScore);
  return late.reduce((a, b) => a + b, 0) / late.length;
}

/** Splits one RFC 4180 line (no embedded newlines in this CSV). */
function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quoted) {
      if (char === '"' && line[i + 1] === '"') {
        current += '"';
        i++;
      } else if (char === '"') quoted = false;
      else current += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") {
      fields.push(current);
      current = "";
    } else current += char;
  }
  fields.push(current);
  return fields;
}

Deno.test("writeReports writes HTML, Markdown, CSV and JSON with the cells' numbers", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "pgd-report-" });
  try {
    const results = await writeSyntheticRun(runDir);
    const written = await writeReports(runDir);
    assertEquals(written.htmlPath, join(runDir, "report.html"));
    for (
      const path of [written.htmlPath, written.markdownPath, written.csvPath, written.jsonPath]
    ) {
      assertOk((await Deno.stat(path)).size > 0, `${path} written`);
    }
    for await (const entry of Deno.readDir(runDir)) {
      assertOk(!entry.name.endsWith(".tmp"), `no temporary file left: ${entry.name}`);
    }

    const scores = scoresByEntry(results);
    const markdown = await Deno.readTextFile(written.markdownPath);
    const html = await Deno.readTextFile(written.htmlPath);
    const lines = written.markdown.split("\n");
    const header = lines[0].split("|").map((cell) => cell.trim());
    for (const [id, entryScores] of scores) {
      const [dataset, source, agent] = id.split("/");
      const row = lines.find((line) => line.startsWith(`| ${dataset} |`));
      assertOk(row, `a row for ${dataset}`);
      const cells = row.split("|").map((cell) => cell.trim());
      const column = header.indexOf(`${agent} · ${source}`);
      assertOk(column > 0, `a column for ${agent} · ${source}`);
      const shown = cells[column];
      assertOk(
        shown.includes(expectedText(entryScores)),
        `${id}: ${shown} shows ${expectedText(entryScores)}`,
      );
      // Bold exactly where Welch's test says the source beats real.
      if (source !== "real") {
        const real = scores.get(`${dataset}/real/${agent}`)!;
        const test = welchTTest(entryScores, real);
        const significant = test.difference > 0 && test.pValue < 0.05;
        assertEquals(
          shown.startsWith("**"),
          significant,
          `${id} marked iff p < 0.05 (p=${test.pValue})`,
        );
      }
      if (source === "policy-guided") {
        const test = welchTTest(entryScores, scores.get(`${dataset}/unguided/${agent}`)!);
        assertEquals(
          shown.endsWith("†"),
          test.difference > 0 && test.pValue < 0.05,
          `${id} dagger`,
        );
      }
      assertOk(html.includes(`data-cell="${id}"`), `HTML has ${id}`);
    }
    // The fixture has marked and unmarked guided entries, so the marks are not uniform.
    assertOk(written.markdown.includes("**"), "some entry is marked");
    assertOk(
      /\| maze2d-umaze \|[^*]*\|$/.test(lines.find((l) => l.startsWith("| maze2d-umaze"))!),
      "maze2d-umaze has no mark",
    );
    assertOk(markdown.includes(written.markdown.split("\n")[2]), "summary.md holds the main table");
    // Reference points per dataset (random policy: the mean of 1.5 + seed over seeds 0–3).
    assertOk(
      written.markdown.includes(
        "maze2d-umaze: random policy 3.0, zero return -5.0, the dataset's behaviour 20.0",
      ),
      written.markdown,
    );
    assertOk(written.markdown.includes("over 4 seeds per entry"), written.markdown);
    assertOk(
      markdown.includes(`## Late score (mean of each run's last ${lateEvaluations} evaluations)`),
      "summary.md has the late-score table",
    );
    assertOk(
      written.markdown.includes("References (D4RL normalisation: random reference 0, expert 100)"),
      written.markdown,
    );
    // The terminal gets plain aligned text: no Markdown, narrow, every dataset and source.
    const terminal = written.terminal.split("\n");
    assertOk(!written.terminal.includes("|") && !written.terminal.includes("**"), written.terminal);
    assertOk(terminal.slice(0, -1).every((line) => line.length <= 100), written.terminal);
    for (const dataset of syntheticGrid.datasets) {
      assertOk(terminal.some((line) => line.startsWith(`${dataset} `)), dataset);
    }
    assertEquals(terminal.filter((line) => line.startsWith("  policy-guided ")).length, 6);

    // Table 2 order: locomotion by level (medium-replay before medium), then maze2d by layout.
    const rows = lines.filter((line) => /^\| [a-z0-9]+-[a-z-]+ \|/.test(line)).map((line) =>
      line.split("|")[1].trim()
    );
    assertEquals(rows, [
      "halfcheetah-medium-replay",
      "hopper-medium-replay",
      "halfcheetah-medium",
      "hopper-medium",
      "maze2d-umaze",
      "maze2d-medium",
    ]);

    // The entry that lost a seed says how many it has; full entries do not.
    const partial = lines.find((line) => line.startsWith("| maze2d-medium |"))!.split("|")
      .map((cell) => cell.trim())[header.indexOf("iql · unguided")];
    assertOk(partial.endsWith("(n=3)"), `partial entry shows its seed count: ${partial}`);
    assertEquals(written.markdown.split("(n=").length, 2, "only the partial entry shows a count");

    // The missing cell is listed, never dropped.
    assertOk(markdown.includes(cellPath(missingCell)), "summary.md lists the missing cell");
    assertOk(html.includes(cellPath(missingCell)), "report.html lists the missing cell");

    // HTML: chart.js inlined (no external script), links to every cell's JSON, Figures 5 and 6.
    assertOk(html.includes("Chart.js v4"), "chart.js inlined");
    assertOk(!/<script[^>]+src=/.test(html), "no external scripts");
    for (const result of results) {
      assertOk(
        html.includes(`href="${cellPath(result.cell)}"`),
        `link to ${cellPath(result.cell)}`,
      );
    }
    assertOk(html.includes("Figure 5") && html.includes("Figure 6"), "analysis figures present");
    assertOk(html.includes("machine-a") && html.includes("machine-b"), "hosts of a merged run");

    // CSV: a header and one row per entry, numbers equal to the cells'.
    const csvLines = (await Deno.readTextFile(written.csvPath)).trimEnd().split("\r\n");
    assertEquals(parseCsvLine(csvLines[0]), [...csvColumns]);
    const csvRows = csvLines.slice(1).map(parseCsvLine).map((fields) =>
      Object.fromEntries(csvColumns.map((column, i) => [column, fields[i]]))
    );
    const datasetRows = csvRows.filter((row) => row.scope === "dataset");
    assertEquals(datasetRows.length, scores.size);
    for (const row of datasetRows) {
      const entryScores = scores.get(`${row.dataset}/${row.source}/${row.agent}`)!;
      const mean = entryScores.reduce((a, b) => a + b, 0) / entryScores.length;
      assertOk(
        Math.abs(Number(row.mean) - mean) < 1e-9,
        `CSV mean of ${row.dataset}/${row.source}/${row.agent}`,
      );
      assertEquals(Number(row.runs), entryScores.length);
      // The late score: each run's last evaluations averaged, then averaged over seeds.
      const runs = results.filter((r) =>
        `${r.cell.dataset}/${r.cell.source}/${r.cell.agent}` ===
          `${row.dataset}/${row.source}/${row.agent}`
      );
      const late = runs.map(lateOfRun).reduce((a, b) => a + b, 0) / runs.length;
      const lateRow = html.slice(html.indexOf('id="table-late"')).split("</tr>")
        .find((tr) => tr.includes(`<th>${row.dataset}</th>`));
      assertOk(
        lateRow?.includes(`${late.toFixed(1)} ±`),
        `report.html's late table has ${row.dataset}/${row.source}/${row.agent}'s ${
          late.toFixed(1)
        }`,
      );
      assertOk(
        Math.abs(Number(row.late_mean) - late) < 1e-9 && Math.abs(late - mean) > 1e-6,
        `CSV late mean of ${row.dataset}/${row.source}/${row.agent}: ${row.late_mean}, expected ${late}`,
      );
      // The dataset's references: means over all its cells, computed here from the cell files.
      const recorded = results.filter((r) => r.cell.dataset === row.dataset).map((r) =>
        r.references!
      );
      const meanOf = (pick: (r: (typeof recorded)[0]) => number) =>
        recorded.reduce((sum, r) => sum + pick(r), 0) / recorded.length;
      for (
        const [column, expected] of [
          ["reference_random_policy", meanOf((r) => r.randomPolicy)],
          ["reference_zero_return", meanOf((r) => r.zeroReturn)],
          ["reference_dataset_behaviour", meanOf((r) => r.datasetBehavior)],
        ] as const
      ) {
        assertOk(
          Math.abs(Number(row[column]) - expected) < 1e-9 && row[column] !== "",
          `${row.dataset} ${column}: ${row[column]}, expected ${expected}`,
        );
      }
    }
    // The fixture's maze2d-medium lacks a seed, so its random-policy reference differs.
    assertOk(
      new Set(datasetRows.map((row) => row.reference_random_policy)).size > 1,
      "references differ per dataset",
    );
    // References do not average across datasets: aggregate rows leave them empty.
    for (const row of csvRows.filter((row) => row.scope !== "dataset")) {
      assertEquals(
        [row.reference_random_policy, row.reference_zero_return, row.reference_dataset_behaviour],
        ["", "", ""],
        `${row.scope} ${row.group}`,
      );
    }
    assertOk(
      csvRows.some((row) => row.scope === "family" && row.group === "hopper"),
      "family rows",
    );
    assertOk(
      csvRows.some((row) => row.scope === "level" && row.group === "medium-replay"),
      "level rows",
    );

    // JSON: parses, NaN written as null, IQM intervals bracket their estimates.
    const json = JSON.parse(await Deno.readTextFile(written.jsonPath));
    assertEquals(json.missing.length, 1);
    for (const aggregate of json.aggregates) {
      if (!aggregate.complete) continue;
      const { estimate, lower, upper } = aggregate.interquartileMean;
      assertOk(lower <= estimate && estimate <= upper, `IQM interval of ${aggregate.group.name}`);
    }
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("paired t-tests: policy-guided against unguided over the seeds both have, in every report", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "pgd-report-" });
  try {
    const results = await writeSyntheticRun(runDir, { analysis: false });
    const written = await writeReports(runDir);
    const summary = summarizeRun(await loadRun(runDir));
    const bySeed = (dataset: string, source: string, agent: string) =>
      new Map(
        results.filter((r) =>
          r.cell.dataset === dataset && r.cell.source === source && r.cell.agent === agent
        ).map((r) => [r.cell.seed, r]),
      );
    const csvLines = (await Deno.readTextFile(written.csvPath)).trimEnd().split("\r\n");
    const csvRows = csvLines.slice(1).map(parseCsvLine).map((fields) =>
      Object.fromEntries(csvColumns.map((column, i) => [column, fields[i]]))
    );
    const guided = summary.cells.filter((cell) => cell.source === "policy-guided");
    assertEquals(guided.length, syntheticGrid.datasets.length * syntheticGrid.agents.length);
    for (const cell of guided) {
      const mine = bySeed(cell.dataset, "policy-guided", cell.agent);
      const theirs = bySeed(cell.dataset, "unguided", cell.agent);
      // The fixture's maze2d-medium lacks unguided IQL seed 3: that pair drops out.
      const seeds = [...mine.keys()].filter((seed) => theirs.has(seed)).sort();
      const paired = cell.pairedVersusUnguided!;
      assertEquals(paired.seeds, seeds, `${cell.dataset}/${cell.agent} seeds`);
      const differences = (pick: (r: CellResult) => number) =>
        seeds.map((seed) => pick(mine.get(seed)!) - pick(theirs.get(seed)!));
      for (
        const [what, result, expected] of [
          ["final", paired.final, differences((r) => r.finalScore)],
          ["late", paired.late, differences(lateOfRun)],
        ] as const
      ) {
        const mean = expected.reduce((a, b) => a + b, 0) / expected.length;
        const sd = Math.sqrt(
          expected.reduce((sum, d) => sum + (d - mean) ** 2, 0) / (expected.length - 1),
        );
        assertOk(Math.abs(result.difference - mean) < 1e-9, `${what} difference`);
        assertOk(Math.abs(result.t - mean / (sd / Math.sqrt(expected.length))) < 1e-9, `${what} t`);
        assertEquals(result.degreesOfFreedom, expected.length - 1);
      }
      const row = csvRows.find((r) =>
        r.scope === "dataset" && r.dataset === cell.dataset && r.source === "policy-guided" &&
        r.agent === cell.agent
      )!;
      assertEquals(Number(row.paired_difference_vs_unguided), paired.final.difference);
      assertEquals(Number(row.paired_late_p_vs_unguided), paired.late.pValue);
    }
    assertEquals(
      summary.cells.filter((cell) => cell.pairedVersusUnguided).length,
      guided.length,
      "only policy-guided entries are paired",
    );
    const markdown = await Deno.readTextFile(written.markdownPath);
    const section = markdown.slice(markdown.indexOf("## Paired t-tests"));
    assertOk(section.includes("| maze2d-medium | iql | 0, 1, 2 |"), "summary.md's paired table");
    const html = await Deno.readTextFile(written.htmlPath);
    assertOk(html.includes('id="table-paired"'), "report.html's paired table");
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("aggregates: the locomotion total averages dataset means; an incomplete group has none", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "pgd-report-" });
  try {
    const results = await writeSyntheticRun(runDir, { analysis: false });
    // Remove every seed of one entry: its family aggregate cannot be formed.
    for (const seed of syntheticGrid.seeds) {
      await Deno.remove(
        join(
          runDir,
          cellPath({ dataset: "hopper-medium", source: "unguided", agent: "td3bc", seed }),
        ),
      );
    }
    const summary = summarizeRun(await loadRun(runDir), { bootstrapRepetitions: 200 });
    const scores = scoresByEntry(results);
    const locomotion = summary.aggregates.find((a) =>
      a.group.kind === "suite" && a.group.name === "locomotion" && a.source === "real" &&
      a.agent === "iql"
    )!;
    const expected = [
      "halfcheetah-medium-replay",
      "hopper-medium-replay",
      "halfcheetah-medium",
      "hopper-medium",
    ]
      .map((dataset) => {
        const values = scores.get(`${dataset}/real/iql`)!;
        return values.reduce((a, b) => a + b, 0) / values.length;
      });
    assertOk(
      Math.abs(locomotion.estimate.mean - expected.reduce((a, b) => a + b, 0) / 4) < 1e-9,
      "mean of means",
    );
    const hopper = summary.aggregates.find((a) =>
      a.group.kind === "family" && a.group.name === "hopper" && a.source === "unguided" &&
      a.agent === "td3bc"
    )!;
    assertEquals([hopper.complete, hopper.tasksCovered, hopper.tasks], [false, 1, 2]);
    assertOk(Number.isNaN(hopper.estimate.mean), "no number for an incomplete group");
    assertEquals(summary.missing.length, 1 + syntheticGrid.seeds.length);
    const written = await writeReports(runDir, { bootstrapRepetitions: 200 });
    const html = await Deno.readTextFile(written.htmlPath);
    assertOk(html.includes("No analysis results"), "the analysis section says it is empty");
    assertOk(!html.includes("chart-figure5"), "no Figure 5 canvas without analysis");
    assertOk(written.markdown.includes("| hopper-medium | "), "the dataset row stays");
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("bad input: errors name the folder, the file and the field", async () => {
  await assertRejects(
    () => loadRun("/nonexistent/run"),
    UserError,
    "'/nonexistent/run' does not exist",
  );
  const runDir = await Deno.makeTempDir({ prefix: "pgd-report-" });
  try {
    await assertRejects(() => loadRun(runDir), UserError, "no results in");
    const results = await writeSyntheticRun(runDir);
    const file = join(runDir, cellPath(results[0].cell));
    const broken = { ...results[0], finalScore: "high" };
    await Deno.writeTextFile(file, JSON.stringify(broken));
    const error = await assertRejects(() => loadRun(runDir), UserError, file);
    assertOk(error.message.includes("finalScore"), error.message);
    await Deno.writeTextFile(file, "{ not json");
    await assertRejects(() => loadRun(runDir), UserError, "is not valid JSON");
    await Deno.writeTextFile(file, JSON.stringify(results[0]));

    // The same cell stored twice (a bad merge) is refused, naming both files.
    const copy = join(runDir, "cells", "copy.json");
    await Deno.writeTextFile(copy, JSON.stringify(results[0]));
    await assertRejects(() => loadRun(runDir), UserError, "appears twice");
    await Deno.remove(copy);

    const analysisFile = join(runDir, "analysis", "dynamics-error-halfcheetah-medium.json");
    const analysis = JSON.parse(await Deno.readTextFile(analysisFile));
    analysis.series[0].standardError.pop();
    await Deno.writeTextFile(analysisFile, JSON.stringify(analysis));
    const analysisError = await assertRejects(() => loadRun(runDir), UserError, analysisFile);
    assertOk(analysisError.message.includes("series.0.standardError"), analysisError.message);
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("dataset order follows Table 2", () => {
  const shuffled = [
    "maze2d-large",
    "hopper-random",
    "maze2d-umaze",
    "walker2d-medium",
    "halfcheetah-random",
    "hopper-medium-replay",
  ];
  assertEquals(shuffled.sort(compareDatasets), [
    "halfcheetah-random",
    "hopper-random",
    "hopper-medium-replay",
    "walker2d-medium",
    "maze2d-umaze",
    "maze2d-large",
  ]);
});

Deno.test("a run merged from two machines reports the same numbers as the whole run", async () => {
  const whole = await Deno.makeTempDir({ prefix: "pgd-report-whole-" });
  const shards = [0, 1].map((i) => join(whole, `..`, `${whole.split("/").pop()}-shard-${i}`));
  const merged = `${whole}-merged`;
  try {
    const results = await writeSyntheticRun(whole, { analysis: false });
    const manifest = JSON.parse(await Deno.readTextFile(join(whole, "run.json")));
    // Each machine ran the seeds of its parity and wrote its own run.json.
    for (const [i, shard] of shards.entries()) {
      for (const result of results.filter((r) => r.cell.seed % 2 === i)) {
        const path = join(shard, cellPath(result.cell));
        await Deno.mkdir(join(path, ".."), { recursive: true });
        await Deno.writeTextFile(path, JSON.stringify(result));
      }
      const expectedCells = manifest.expectedCells.filter((c: { seed: number }) =>
        c.seed % 2 === i
      );
      await Deno.writeTextFile(
        join(shard, "run.json"),
        JSON.stringify({ ...manifest, expectedCells, shard: { index: i, count: 2 } }),
      );
    }
    await mergeResults(shards, merged);
    const options = { bootstrapRepetitions: 200, now: () => new Date(0) };
    const fromWhole = summarizeRun(await loadRun(whole), options);
    const fromMerged = summarizeRun(await loadRun(merged), options);
    assertEquals(
      fromMerged.cells.map((c) => [c.dataset, c.source, c.agent, c.scores]),
      fromWhole.cells.map((c) => [c.dataset, c.source, c.agent, c.scores]),
    );
    assertEquals(fromMerged.missing.map((c) => c.file), fromWhole.missing.map((c) => c.file));
    assertEquals(fromMerged.hosts, ["machine-a", "machine-b"]);
    const { htmlPath } = await writeReports(merged, options);
    const html = await Deno.readTextFile(htmlPath);
    assertOk(html.includes('id="table-shards"'), "the page lists the shards merged");
    for (const shard of shards) {
      assertOk(html.includes(shard.split("/").pop()!), `shard ${shard} listed`);
    }
  } finally {
    for (const dir of [whole, ...shards, merged]) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
});
