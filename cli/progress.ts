/**
 * Progress display for the grid: on a terminal, one live row per running
 * cell (its phase and progress) under a row for the whole grid, with lines
 * scrolling above; elsewhere (CI logs, pipes) plain lines.
 *
 * @module
 */
import pc from "picocolors";
import type { GridEvents } from "../core/scheduler.ts";
import { cellId, type CellKey } from "../core/results.ts";
import { LiveRows } from "./live_rows.ts";
import { terminalSize } from "./terminal.ts";

/** The widest and narrowest bar drawn, in characters. */
const barWidths = { max: 30, min: 8 };

/**
 * One live row: `label` padded to `labelWidth`, a bar and the percentage,
 * fitted to `columns` (the bar shrinks first, then the label is cut).
 */
export function progressRow(
  label: string,
  fraction: number,
  labelWidth: number,
  columns: number,
): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  const percent = `${Math.round(clamped * 100)}%`.padStart(4);
  const room = columns - labelWidth - percent.length - 3;
  const bar = Math.min(barWidths.max, Math.max(barWidths.min, room));
  const filled = Math.round(clamped * bar);
  const drawn = "█".repeat(filled) + "░".repeat(bar - filled);
  const labelRoom = Math.max(1, columns - bar - percent.length - 3);
  const shown = [...label].length > labelRoom
    ? [...label].slice(0, labelRoom - 1).join("") + "…"
    : label.padEnd(Math.min(labelWidth, labelRoom));
  return ` ${shown} ${drawn} ${percent}`;
}

/** Writes all of `bytes` to stderr (a terminal may take them in parts). */
function writeStderr(bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}

/** Grid events drawn as live rows (terminal) or printed as lines; `stop()` ends the display. */
export function gridProgress(verbose = false): GridEvents & { stop(): void } {
  const interactive = Deno.stderr.isTerminal() && !Deno.env.get("CI");
  const encoder = new TextEncoder();
  const live = interactive
    ? new LiveRows({
      write: (text) => writeStderr(encoder.encode(text)),
      size: terminalSize,
    })
    : undefined;
  /** Each running cell's phase and progress, by cell id. */
  const running = new Map<string, { phase: string; fraction: number }>();
  let done = 0;
  let total = 0;
  const line = (text: string) => {
    if (live) live.log(text);
    else console.error(text);
  };
  // Every row shares one label width, so the bars line up.
  const labelOf = (id: string) => {
    const state = running.get(id);
    return state?.phase ? `${id}  ${state.phase}` : id;
  };
  const labelWidth = () => Math.max(0, ...[...running.keys()].map((id) => labelOf(id).length));
  const overallRow = () =>
    live?.set("", (columns) =>
      progressRow(
        `grid: ${done} of ${total} cells done`,
        total ? done / total : 0,
        labelWidth(),
        columns,
      ));
  const cellRow = (id: string) =>
    live?.set(
      id,
      (columns) => progressRow(labelOf(id), running.get(id)?.fraction ?? 0, labelWidth(), columns),
    );
  // A finished or failed cell's row leaves the screen.
  const leave = (cell: CellKey) => {
    running.delete(cellId(cell));
    live?.delete(cellId(cell));
    done += 1;
    overallRow();
  };
  // Without live rows, a line per quarter of each phase of a cell (a denoiser trains for minutes).
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
      overallRow();
    },
    collecting(dataset, fraction) {
      if (!live && (fraction === 0 || fraction >= 1)) {
        line(`collecting ${dataset}: ${Math.round(fraction * 100)}%`);
      }
    },
    started(cell, worker) {
      // A cell that starts again (its worker was replaced) keeps its one row.
      running.set(cellId(cell), { phase: "", fraction: 0 });
      if (live) cellRow(cellId(cell));
      else line(`started ${cellId(cell)} on worker ${worker}`);
    },
    progress(cell, phase, fraction) {
      if (live) {
        // Progress can arrive after a cell ended (a worker's last message): no row comes back.
        if (!running.has(cellId(cell))) return;
        running.set(cellId(cell), { phase, fraction });
        cellRow(cellId(cell));
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
      leave(cell);
      line(
        `${pc.green("done")} ${cellId(cell)}: normalised score ${finalScore.toFixed(1)}` +
          (seconds > 0 ? ` (${seconds.toFixed(0)} s)` : " (already finished)"),
      );
    },
    failed(cell, message) {
      leave(cell);
      line(`${pc.red("failed")} ${cellId(cell)}: ${message.split("\n")[0]}`);
    },
    stop() {
      live?.stop();
    },
  };
}
