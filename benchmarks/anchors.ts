/**
 * PyTorch anchors for the benchmarks: scripts kept outside the repository,
 * each timing one step and printing `median=<ms>`. `PGD_ANCHOR_DIR` names
 * their folder and `PGD_ANCHOR_PYTHON` a Python with PyTorch (default
 * `/usr/bin/python3`); `PGD_BENCH_ANCHORS=off` skips them. On a shared
 * machine the load drifts, so a bench runs each anchor before and after its
 * own timings and takes the faster run ({@link anchorMs}).
 *
 * @module
 */

/** One anchor script with its arguments and the medians of its runs so far. */
export interface Anchor {
  /** File name inside `PGD_ANCHOR_DIR`. */
  script: string;
  /** Its command-line arguments. */
  args: string[];
  /** Median milliseconds of each run. */
  runs: number[];
}

const anchorDir = Deno.env.get("PGD_ANCHOR_DIR");

/** Whether the anchors run in this process (a folder is named and they are not turned off). */
export const anchorsEnabled = Deno.env.get("PGD_BENCH_ANCHORS")?.toLowerCase() !== "off" &&
  anchorDir !== undefined;

/** Says once on stderr why the anchors do not run, when they do not. */
export function explainAnchors(): void {
  if (!anchorDir) {
    console.error(
      "anchors: PGD_ANCHOR_DIR is not set, so the PyTorch runs are skipped (ratios read -)",
    );
  }
}

/** Runs `anchor` once where anchors are enabled, adding its median to `runs`; failures go to stderr. */
export function runAnchor(anchor: Anchor): void {
  if (!anchorsEnabled) return;
  const python = Deno.env.get("PGD_ANCHOR_PYTHON") ?? "/usr/bin/python3";
  try {
    const { success, stdout, stderr } = new Deno.Command(python, {
      args: [anchorDir!.replace(/\/?$/, "/") + anchor.script, ...anchor.args],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const match = /median=([\d.]+)/.exec(new TextDecoder().decode(stdout));
    if (success && match) anchor.runs.push(Number(match[1]));
    else {
      const message = new TextDecoder().decode(stderr).trim().slice(-300);
      console.error(`anchor ${anchor.script}: ${message}`);
    }
  } catch (error) {
    console.error(`anchor ${anchor.script} did not run: ${(error as Error).message}`);
  }
}

/** The anchor's fastest run in milliseconds, or `undefined` when it has not run. */
export function anchorMs(anchor: Anchor): number | undefined {
  return anchor.runs.length > 0 ? Math.min(...anchor.runs) : undefined;
}
