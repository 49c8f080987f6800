/**
 * Finds the headless browser the report's browser test drives, before any
 * test runs, so that a machine without one reports that test as ignored with
 * the reason, never failed and never passed unchecked. `chromium` is looked up
 * on the PATH; where it does not run, scripts/install_browser.sh installs
 * Debian's package when run as root with apt-get (as CI does) and otherwise
 * refuses, saying why. {@link chromiumVariable} names another binary instead;
 * a named binary is never installed, since Debian's package would not provide
 * it (and so a test can point the lookup at a missing one safely).
 *
 * @module
 */

/** The environment variable that names the browser binary in place of `chromium`. */
export const chromiumVariable = "PGD_CHROMIUM";

/** A browser to run, or why there is none. */
export type BrowserLookup =
  | { binary: string; installed: boolean; reason?: undefined }
  | { binary?: undefined; reason: string };

/** What {@link findBrowser} asks of the machine; tests pass fakes. */
export interface BrowserProbes {
  /** Whether `binary --version` runs and succeeds. */
  runs(binary: string): Promise<boolean>;
  /** Runs the install script: whether it succeeded, and what it said. */
  install(): Promise<{ success: boolean; output: string }>;
}

/**
 * The browser to use: `named` (or `chromium`) when it runs; otherwise, for
 * `chromium` only, after the install script made it run; otherwise the reason.
 */
export async function findBrowser(
  named: string | undefined,
  probes: BrowserProbes,
): Promise<BrowserLookup> {
  const binary = named || "chromium";
  if (await probes.runs(binary)) return { binary, installed: false };
  if (named) {
    return {
      reason: `${chromiumVariable}=${named} does not run ('${named} --version' failed); ` +
        "a named browser is not installed",
    };
  }
  const { success, output } = await probes.install();
  if (!success) {
    return { reason: `chromium is missing and was not installed: ${output.trim() || "no output"}` };
  }
  if (!(await probes.runs(binary))) {
    return { reason: "scripts/install_browser.sh succeeded, yet 'chromium --version' fails" };
  }
  return { binary, installed: true };
}

const installScript = new URL("../scripts/install_browser.sh", import.meta.url);

/** Probes of this machine: runs the binary, and the install script with `sh`. */
export function systemProbes(): BrowserProbes {
  return {
    async runs(binary) {
      try {
        const { success } = await new Deno.Command(binary, {
          args: ["--version"],
          stdout: "null",
          stderr: "null",
        }).output();
        return success;
      } catch {
        // Not found, or not executable: it does not run.
        return false;
      }
    },
    async install() {
      try {
        const { success, stdout, stderr } = await new Deno.Command("sh", {
          args: [installScript.pathname],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const decoder = new TextDecoder();
        return { success, output: decoder.decode(stderr) + decoder.decode(stdout) };
      } catch (error) {
        return { success: false, output: `sh could not run the install script: ${error}` };
      }
    },
  };
}

/** The reason's first line, short enough for a test name. */
export function shortReason(reason: string, limit = 160): string {
  const line = reason.trim().split("\n")[0];
  return line.length > limit ? `${line.slice(0, limit - 1)}…` : line;
}
