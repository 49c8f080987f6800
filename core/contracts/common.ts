/**
 * Pieces shared by the plugin contracts.
 *
 * @module
 */
import { z } from "zod";

/** A zod schema that accepts any function; contracts use it for hooks. */
export function hook(description: string): z.ZodType<(...args: never[]) => unknown> {
  return z.custom<(...args: never[]) => unknown>((value) => typeof value === "function", {
    message: `expected a function (${description})`,
  });
}

/** Names of the size presets. A preset changes sizes and counts, never the algorithm. */
export const presetNames = ["smoke", "quick", "paper"] as const;

/** One of {@link presetNames}. */
export type PresetName = (typeof presetNames)[number];

/** Receives progress and log lines from long work; the CLI draws them, tests ignore them. */
export interface Reporter {
  /** A fraction of the current phase done, in [0, 1], with the phase's name. */
  progress(phase: string, fraction: number): void;
  /** One line of information. */
  log(message: string): void;
}

/** A reporter that drops everything. */
export const silentReporter: Reporter = { progress() {}, log() {} };
