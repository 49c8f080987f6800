/**
 * Progress display for the grid: one bar per worker on a terminal, plain
 * lines elsewhere (CI logs). The only module that knows cli-progress.
 *
 * @module
 */
import cliProgress from "cli-progress";
import pc from "picocolors";
import process from "node:process";
import type { GridEvents } from "../core/scheduler.ts";
import { cellId, type CellKey } from "../core/results.ts";

/** Grid events drawn as progress bars (TTY) or printed as lines; `stop()` ends the display. */
export function gridProgress(verbose = false): GridEvents & { stop(): void } {
  const interactive = Deno.stderr.isTerminal() && !Deno.env.get("CI");
  const multibar = interactive
    ? new cliProgress.MultiBar(
      {
        format: " {bar} {percentage}% | {label}",
        hideCursor: true,
        clearOnComplete: false,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    )
    : undefined;
  const bars = new Map<string, cliProgress.SingleBar>();
  let overall: cliProgress.SingleBar | undefined;
  let done = 0;
  let total = 0;
  const line = (text: string) => {
    if (multibar) multibar.log(text + "\n");
    else console.error(text);
  };
  const barOf = (cell: CellKey) => bars.get(cellId(cell));
  // A finished or failed cell's row leaves the screen, so rows are running cells only.
  const dropBar = (cell: CellKey) => {
    const bar = barOf(cell);
    if (!bar) return;
    bar.stop();
    multibar?.remove(bar);
    bars.delete(cellId(cell));
  };
  // Without bars, a line per quarter of each phase of a cell (a denoiser trains for minutes).
  const quarters = new Map<string, number>();
  return {
    log: (message) => line(pc.dim(message)),
    compute(path, hint) {
      line(`${pc.bold("compute")}: ${path}`);
      if (hint) line(pc.yellow(`hint: ${hint}`));
    },
    planned(cells, finished) {
      total = cells;
      done = finished;
      line(`${pc.bold("grid")}: ${cells} cells, ${finished} already finished`);
      if (multibar) overall = multibar.create(total, done, { label: "grid" });
    },
    collecting(dataset, fraction) {
      if (!multibar && (fraction === 0 || fraction >= 1)) {
        line(`collecting ${dataset}: ${Math.round(fraction * 100)}%`);
      }
    },
    started(cell, worker) {
      if (multibar) {
        dropBar(cell);
        bars.set(cellId(cell), multibar.create(100, 0, { label: cellId(cell) }));
      } else line(`started ${cellId(cell)} on worker ${worker}`);
    },
    progress(cell, phase, fraction) {
      if (multibar) {
        barOf(cell)?.update(Math.round(fraction * 100), { label: `${cellId(cell)} ${phase}` });
        return;
      }
      const key = `${cellId(cell)} ${phase}`;
      const quarter = Math.floor(fraction * 4);
      if (quarter >= 1 && quarter <= 3 && quarter > (quarters.get(key) ?? 0)) {
        quarters.set(key, quarter);
        line(pc.dim(`${key}: ${quarter * 25}%`));
      }
    },
    cellLog(cell, message) {
      if (verbose) line(pc.dim(`${cellId(cell)}: ${message}`));
    },
    finished(cell, finalScore, seconds) {
      done += 1;
      overall?.update(done);
      dropBar(cell);
      line(
        `${pc.green("done")} ${cellId(cell)}: normalised score ${finalScore.toFixed(1)}` +
          (seconds > 0 ? ` (${seconds.toFixed(0)} s)` : " (already finished)"),
      );
    },
    failed(cell, message) {
      done += 1;
      overall?.update(done);
      dropBar(cell);
      line(`${pc.red("failed")} ${cellId(cell)}: ${message.split("\n")[0]}`);
    },
    stop() {
      multibar?.stop();
    },
  };
}
