/**
 * Opens the HTML report in headless Chromium (Debian's package, installed by
 * scripts/install_browser.sh when missing) and checks, in the DOM the browser
 * produced after running the page's scripts, that every chart painted pixels
 * and that the tables show the numbers of the cell files: n per entry, the
 * reference points, the totals rows, aggregates per agent. (Few seeds, no
 * analysis yet, the Welch table's improvement column and a folder of two
 * configurations: tests/report_items_test.ts.)
 */
import { assertEquals, assertOk } from "./assert.ts";
import { syntheticGrid, writeSyntheticRun } from "./fixtures/synthetic_run.ts";
import { writeReports } from "../reports/mod.ts";
import { formatEstimate, formatNumber } from "../reports/format.ts";
import { cellPath, type CellResult } from "../core/results.ts";
import { join, toFileUrl } from "../core/paths.ts";

const installScript = new URL("../scripts/install_browser.sh", import.meta.url).pathname;

async function hasChromium(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("chromium", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return success;
  } catch {
    return false;
  }
}

async function ensureChromium(): Promise<void> {
  if (await hasChromium()) return;
  const { success, stderr } = await new Deno.Command("sh", {
    args: [installScript],
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!success || !(await hasChromium())) {
    throw new Error(
      `chromium is required for this test: ${new TextDecoder().decode(stderr).trim()}`,
    );
  }
}

/** Runs headless Chromium on a page with a fresh profile; returns stdout. */
async function chromium(page: string, extra: string[]): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "pgd-chromium-" });
  try {
    const { success, code, stdout, stderr } = await new Deno.Command("chromium", {
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
  name: "the HTML report draws every chart and shows the cells' numbers in headless Chromium",
  sanitizeResources: false,
  async fn() {
    await ensureChromium();
    const runDir = await Deno.makeTempDir({ prefix: "pgd-report-browser-" });
    try {
      const results: CellResult[] = await writeSyntheticRun(runDir);
      const { htmlPath } = await writeReports(runDir, { bootstrapRepetitions: 500 });
      const dom = await chromium(htmlPath, ["--dump-dom"]);

      // Every canvas drew: the page records painted pixels per canvas after drawing.
      const canvases = [...dom.matchAll(/<canvas[^>]*>/g)].map((m) => attributes(m[0]));
      // 3 aggregate bar charts + IQM, one learning-curve chart per dataset × agent, one
      // replay-error chart per dataset, Figures 5 and 6.
      const expectedCharts = 4 + syntheticGrid.datasets.length * syntheticGrid.agents.length +
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
