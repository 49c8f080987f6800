/**
 * Opens the HTML report in headless Chromium (Debian's package, installed by
 * scripts/install_browser.sh when missing, where root and apt-get allow) and
 * checks, in the DOM the browser produced after running the page's scripts,
 * that every chart painted pixels and that the tables show the numbers of the
 * cell files: n per entry, the reference points and the lines drawn for them,
 * the totals rows, aggregates per agent. (Few seeds, no analysis yet, the
 * Welch table's improvement column and a folder of two configurations:
 * tests/report_items_test.ts.) Where no browser runs and none can be
 * installed, the test is reported as ignored with the reason (the lookup:
 * tests/chromium.ts; its tests: tests/browser_lookup_test.ts).
 */
import { assertEquals, assertOk } from "./assert.ts";
import { syntheticGrid, writeSyntheticRun } from "./fixtures/synthetic_run.ts";
import { writeReports } from "../reports/mod.ts";
import { formatEstimate, formatNumber } from "../reports/format.ts";
import { referenceLabels } from "../reports/reference_lines.ts";
import { cellPath, type CellResult } from "../core/results.ts";
import { join, toFileUrl } from "../core/paths.ts";
import { chromiumVariable, findBrowser, shortReason, systemProbes } from "./chromium.ts";

// Decided before any test runs, so a missing browser makes the test ignored, not failed.
const browser = await findBrowser(Deno.env.get(chromiumVariable), systemProbes());
if (browser.reason !== undefined) {
  console.error(`report browser test ignored: ${browser.reason}`);
}

/** Runs headless Chromium on a page with a fresh profile; returns stdout. */
async function chromium(page: string, extra: string[]): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "pgd-chromium-" });
  try {
    const { success, code, stdout, stderr } = await new Deno.Command(browser.binary!, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        `--user-data-dir=${profile}`,
        "--virtual-time-budget=5000",
        ...extra,
        toFileUrl(page).href,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(120_000),
    }).output();
    if (!success) {
      throw new Error(
        `chromium exited with ${code}: ${new TextDecoder().decode(stderr).slice(-2000)}`,
      );
    }
    return new TextDecoder().decode(stdout);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

function attributes(tag: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const match of tag.matchAll(/([\w-]+)="([^"]*)"/g)) found[match[1]] = match[2];
  return found;
}

function decode(html: string): string {
  return html.replace(/<[^>]+>/g, "").replaceAll("&lt;", "<").replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&amp;", "&");
}

Deno.test({
  name: "the HTML report draws every chart and shows the cells' numbers in headless Chromium" +
    (browser.reason === undefined ? "" : ` (ignored: ${shortReason(browser.reason)})`),
  ignore: browser.reason !== undefined,
  sanitizeResources: false,
  async fn() {
    const runDir = await Deno.makeTempDir({ prefix: "pgd-report-browser-" });
    try {
      const results: CellResult[] = await writeSyntheticRun(runDir);
      const { htmlPath } = await writeReports(runDir, { bootstrapRepetitions: 500 });
      const dom = await chromium(htmlPath, ["--dump-dom"]);

      // Every canvas drew: the page records painted pixels per canvas after drawing.
      const canvases = [...dom.matchAll(/<canvas[^>]*>/g)].map((m) => attributes(m[0]));
      // A final-score chart per dataset, 3 aggregate bar charts + IQM, one learning-curve chart
      // per dataset × agent, one replay-error chart per dataset, Figures 5 and 6.
      const expectedCharts = syntheticGrid.datasets.length + 4 +
        syntheticGrid.datasets.length * syntheticGrid.agents.length +
        syntheticGrid.datasets.length + 2;
      assertEquals(canvases.length, expectedCharts, "one canvas per chart");
      for (const canvas of canvases) {
        assertEquals(canvas["data-error"], undefined, `chart ${canvas.id} raised an error`);
        assertEquals(canvas["data-drawn"], "true", `chart ${canvas.id} drew nothing`);
        assertOk(
          Number(canvas["data-painted-pixels"]) > 1000,
          `chart ${canvas.id} painted too little`,
        );
      }
      const body = attributes(dom.match(/<body[^>]*>/)![0]);
      assertEquals(body["data-charts-drawn"], String(canvases.length));
      assertEquals(body["data-charts-total"], String(canvases.length));
      for (
        const id of [
          "chart-family",
          "chart-level",
          "chart-iqm",
          "chart-replay-0",
          "chart-figure5-0",
          "chart-figure6-1-0",
        ]
      ) {
        assertOk(canvases.some((canvas) => canvas.id === id), `chart ${id} is on the page`);
      }

      // Table 2 shows mean ± s.e. of each entry's final scores, computed here.
      const byEntry = new Map<string, number[]>();
      for (const result of results) {
        const id = `${result.cell.dataset}/${result.cell.source}/${result.cell.agent}`;
        byEntry.set(id, [...(byEntry.get(id) ?? []), result.finalScore]);
      }
      const shown = new Map<string, string>();
      for (const match of dom.matchAll(/<td([^>]*data-cell="[^"]*"[^>]*)>(.*?)<\/td>/g)) {
        shown.set(attributes(match[1])["data-cell"], decode(match[2]));
      }
      for (const [id, scores] of byEntry) {
        const n = scores.length;
        const mean = scores.reduce((a, b) => a + b, 0) / n;
        const se = Math.sqrt(scores.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) / n);
        const expected = formatEstimate({
          count: n,
          mean,
          standardError: se,
          degreesOfFreedom: n - 1,
        });
        assertOk(
          shown.get(id)?.startsWith(expected),
          `${id}: page shows '${shown.get(id)}', expected '${expected}'`,
        );
      }

      // n: the legend gives the seeds per entry, and an entry with fewer says how many.
      const legendText = decode(
        dom.match(/<section id="table2">.*?<p class="legend">(.*?)<\/p>/s)?.[1] ?? "",
      );
      assertOk(legendText.includes("over 4 seeds per entry (n where fewer)"), legendText);
      for (const [id, scores] of byEntry) {
        if (scores.length < 4) {
          assertOk(shown.get(id)?.includes(`(n=${scores.length})`), `${id}: ${shown.get(id)}`);
        }
      }
      assertOk([...byEntry.values()].some((scores) => scores.length < 4), "an entry with n < 4");
      // Reference points of every dataset in the legend.
      for (const dataset of syntheticGrid.datasets) {
        assertOk(
          new RegExp(
            `${dataset}: random policy -?[\\d.]+, zero return -?[\\d.]+, the dataset's behaviour`,
          )
            .test(legendText),
          `references of ${dataset}: ${legendText}`,
        );
      }
      // A totals row per block of several datasets, a number in each agent × source column.
      const totals = [...dom.matchAll(/<tr class="total"><th>([^<]*)<\/th>(.*?)<\/tr>/g)];
      assertOk(totals.length >= 2, `totals rows: ${totals.map((m) => m[1]).join(", ")}`);
      for (const [, title, row] of totals) {
        const values = [...row.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) => decode(m[1]));
        assertEquals(values.length, syntheticGrid.agents.length * syntheticGrid.sources.length);
        assertOk(
          values.every((value) => /^-?\d+\.\d ± \d+\.\d/.test(value)),
          `${title}: ${values}`,
        );
      }
      // Aggregates keep the agents apart: one bar group per dataset group and agent.
      const reportData = JSON.parse(
        dom.match(/<script type="application\/json" id="report-data">(.*?)<\/script>/s)![1],
      ) as { charts: { id: string; config: { data: { labels: string[] } } }[] };
      for (const id of ["chart-family", "chart-level", "chart-iqm"]) {
        const labels = reportData.charts.find((chart) => chart.id === id)!.config.data.labels;
        for (const agent of syntheticGrid.agents) {
          assertOk(labels.some((label) => label.endsWith(` · ${agent}`)), `${id}: ${labels}`);
        }
        assertOk(!labels.some((label) => !/ · \S+$/.test(label)), `${id} blends agents: ${labels}`);
      }

      // Reference lines: on each dataset's final-score bars and learning curves, the dataset's
      // random policy, zero return and behaviour (means over its cells, computed here) and
      // D4RL's expert (100), drawn across the chart by the page and listed in the legend.
      type Config = { data: { datasets: Record<string, unknown>[] } };
      const configOf = new Map(
        (reportData.charts as unknown as { id: string; config: Config }[]).map((chart) => [
          chart.id,
          chart.config,
        ]),
      );
      const expectedLines = (dataset: string) => {
        const recorded = results.filter((r) => r.cell.dataset === dataset).map((r) =>
          r.references!
        );
        const meanOf = (pick: (r: (typeof recorded)[0]) => number) =>
          recorded.reduce((sum, r) => sum + pick(r), 0) / recorded.length;
        return [
          ["randomPolicy", meanOf((r) => r.randomPolicy)],
          ["zeroReturn", meanOf((r) => r.zeroReturn)],
          ["datasetBehavior", meanOf((r) => r.datasetBehavior)],
          ["expert", 100],
        ] as [keyof typeof referenceLabels, number][];
      };
      type Drawn = { kind: string; label: string; value: number; y: number; left: number };
      const drawnLines = (canvas: Record<string, string>): Drawn[] =>
        JSON.parse(decode(canvas["data-reference-lines"] ?? "null")) ?? [];
      const perDataset = canvases.filter((canvas) => canvas["data-dataset"] !== undefined);
      assertEquals(
        perDataset.map((canvas) => canvas.id.replace(/-\d+$/, "")).sort(),
        [
          ...syntheticGrid.datasets.map(() => "chart-dataset"),
          ...syntheticGrid.datasets.flatMap(() => syntheticGrid.agents.map(() => "chart-curve")),
        ].sort(),
        "a score chart per dataset and a curve per dataset × agent carry their dataset",
      );
      for (const canvas of perDataset) {
        const dataset = canvas["data-dataset"];
        const expected = expectedLines(dataset);
        const drawn = drawnLines(canvas);
        assertEquals(drawn.map((line) => line.kind), expected.map(([kind]) => kind), canvas.id);
        for (const [kind, value] of expected) {
          const line = drawn.find((line) => line.kind === kind)!;
          assertOk(Math.abs(line.value - value) < 1e-9, `${canvas.id} ${kind}: ${line.value}`);
          assertOk(line.label.startsWith(referenceLabels[kind]), `${canvas.id}: ${line.label}`);
          if (kind !== "expert") {
            assertOk(line.label.endsWith(`(${formatNumber(value)})`), line.label);
          }
          // In the legend: the chart's datasets hold the line under the same label.
          const legendEntry = configOf.get(canvas.id)!.data.datasets.find((d) =>
            d.label === line.label
          );
          assertEquals(legendEntry?.reference, line.value, `${canvas.id}: ${line.label} listed`);
        }
        // Drawn where the axis puts each value: a higher score lies higher on the canvas,
        // and every line spans the plot from its left edge, within the canvas.
        const byValue = [...drawn].sort((a, b) => b.value - a.value);
        for (let i = 1; i < byValue.length; i++) {
          assertOk(byValue[i - 1].y < byValue[i].y, `${canvas.id}: lines out of order`);
        }
        for (const line of drawn) {
          assertOk(line.y > 0 && line.y < Number(canvas.height), `${canvas.id}: y ${line.y}`);
          assertOk(line.left > 0 && line.left < Number(canvas.width) / 3, `${canvas.id}`);
        }
      }
      assertOk(
        perDataset.some((c) => drawnLines(c)[0].value !== drawnLines(perDataset[0])[0].value),
        "references differ between datasets (maze2d-medium lost a seed)",
      );
      // The per-dataset bars show the table's means.
      for (const canvas of perDataset.filter((c) => c.id.startsWith("chart-dataset-"))) {
        const datasets = configOf.get(canvas.id)!.data.datasets;
        for (const source of syntheticGrid.sources) {
          const bars = datasets.find((d) => d.label === source)!.data as (number | null)[];
          syntheticGrid.agents.forEach((agent, i) => {
            const scores = byEntry.get(`${canvas["data-dataset"]}/${source}/${agent}`)!;
            const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
            assertOk(Math.abs(bars[i]! - mean) < 1e-9, `${canvas.id} ${source} ${agent}`);
          });
        }
      }
      // Aggregates over several datasets draw none, and list none.
      for (const id of ["chart-family", "chart-level", "chart-suite", "chart-iqm"]) {
        const canvas = canvases.find((canvas) => canvas.id === id)!;
        assertEquals(drawnLines(canvas), [], `${id} draws no reference line`);
        assertOk(!configOf.get(id)!.data.datasets.some((d) => "reference" in d), id);
      }
      // What each line is, under the charts that draw them.
      for (const section of ["table2", "curves"]) {
        const text = decode(
          dom.match(new RegExp(`<section id="${section}">.*?</section>`, "s"))?.[0] ?? "",
        );
        for (const label of Object.values(referenceLabels)) {
          assertOk(text.includes(`${label} — `), `${section} explains ${label}`);
        }
      }

      // The cell list shows each run's final score and links its JSON.
      for (const result of results) {
        const file = cellPath(result.cell);
        const row = dom.match(new RegExp(`<tr>(?:(?!<tr>).)*?href="${file}"`))?.[0];
        assertOk(row, `a row linking ${file}`);
        assertOk(decode(row).includes(formatNumber(result.finalScore, 2)), `${file} score shown`);
      }

      // The data-quality table: a held-out real row, then each source's mean action fit.
      const quality = dom.match(/<table[^>]*id="table-quality".*?<\/table>/s)?.[0];
      assertOk(quality, "the data-quality table is on the page");
      const qualityRows = [...quality.matchAll(/<tr[^>]*>(.*?)<\/tr>/g)].map((m) =>
        [...m[1].matchAll(/<t[dh][^>]*>(.*?)<\/t[dh]>/g)].map((c) => decode(c[1]))
      );
      const fitColumn = qualityRows[0].indexOf("action fit");
      assertOk(fitColumn > 1, `columns: ${qualityRows[0].join(", ")}`);
      for (const dataset of syntheticGrid.datasets) {
        const ofDataset = qualityRows.filter((row) => row[0] === dataset);
        assertEquals(ofDataset[0][1], "real (held out)");
        assertEquals(ofDataset[0][fitColumn], "0.1");
        const fit = (source: string) => ofDataset.find((row) => row[1] === source)?.[fitColumn];
        assertEquals([fit("real"), fit("unguided"), fit("policy-guided")], ["0.1", "0.7", "0.5"]);
      }

      // Figure 2: per maze dataset, a panel per source with its trajectories drawn on the map.
      for (const dataset of syntheticGrid.datasets.filter((d) => d.startsWith("maze2d"))) {
        const figure = dom.match(
          new RegExp(`<div class="plan-figure" id="figure2-${dataset}">.*?</div></div>`, "s"),
        )?.[0];
        assertOk(figure, `Figure 2 of ${dataset}`);
        const panels = [...figure.matchAll(/<figure class="plan-panel" data-source="([^"]+)"/g)]
          .map((m) => m[1]);
        assertEquals(panels, ["dataset", ...syntheticGrid.sources]);
        assertEquals(
          [...figure.matchAll(/<polyline class="trajectory"/g)].length,
          2 * panels.length,
        );
        assertEquals(
          [...figure.matchAll(/<rect x=/g)].length,
          2 * panels.length,
          "two walls a panel",
        );
        assertOk(figure.includes('class="goal"'));
      }
      assertOk(!dom.includes('id="figure2-halfcheetah'), "no map for locomotion");

      // A screenshot for a person to look at; it must at least be a real image.
      const screenshot = join(runDir, "report.png");
      await chromium(htmlPath, [`--screenshot=${screenshot}`, "--window-size=1280,2400"]);
      const png = await Deno.readFile(screenshot);
      assertEquals([...png.slice(1, 4)].map((c) => String.fromCharCode(c)).join(""), "PNG");
      assertOk(png.length > 50_000, `screenshot of ${png.length} bytes looks empty`);
      const keep = Deno.env.get("PGD_REPORT_SCREENSHOT");
      if (keep) await Deno.copyFile(screenshot, keep);
    } finally {
      await Deno.remove(runDir, { recursive: true });
    }
  },
});
