/**
 * Versions recorded with every result.
 *
 * @module
 */
import projectConfig from "../deno.json" with { type: "json" };

/** The harness version; part of every cache key, so a new version never reuses stale artefacts. */
export const harnessVersion: string = projectConfig.version;

/** Versions of the harness, Deno, V8 and TypeScript (TF.js is added by the caller that loaded it). */
export function runtimeVersions(): Record<string, string> {
  return {
    "pgd-bench": harnessVersion,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
  };
}
