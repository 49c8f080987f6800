/**
 * Reads a result folder: every cell JSON under `cells/`, the optional
 * `run.json` written by the CLI, and the optional `analysis/*.json`. Folders
 * merged from several machines read the same way, since a cell's JSON holds
 * everything a report needs.
 *
 * @module
 */
import { listFilesRecursively } from "../core/files.ts";
import { stableStringify } from "../core/fingerprint.ts";
import { cellMarkerSchema } from "../core/status.ts";
import { z } from "zod";
import {
  cellId,
  type CellKey,
  cellKeySchema,
  cellPath,
  type CellResult,
  cellResultSchema,
} from "../core/results.ts";
import { type AnalysisResult, parseAnalysisResult } from "../core/analysis.ts";
import { formatZodIssues, UserError } from "../core/errors.ts";
import { join, relative } from "../core/paths.ts";

/** `run.json`: what the CLI records about a run (extra keys are kept). */
export const runMetadataSchema = z.looseObject({
  /** The validated grid configuration. */
  config: z.record(z.string(), z.unknown()),
  /** Every cell the run was asked for; those without a result are reported as missing. */
  expectedCells: z.array(cellKeySchema),
  /** How the compute ran (e.g. `tfjs-wasm`); recorded once a run finishes. */
  computePath: z.string().optional(),
  /** Compute backend name. */
  backend: z.string(),
  /** Versions of the harness, runtime and libraries. */
  versions: z.record(z.string(), z.string()).default({}),
  /** ISO 8601 start time. */
  startedAt: z.string().optional(),
  /** ISO 8601 end time, when the run finished. */
  finishedAt: z.string().optional(),
  /** How the grid was split over machines, if it was. */
  shards: z.unknown().optional(),
});

/** `run.json`: what the CLI records about a run. */
export type RunMetadata = z.infer<typeof runMetadataSchema>;

/** A cell result with the file it came from. */
export interface LoadedCell {
  /** The validated result. */
  result: CellResult;
  /** Its path relative to the run folder, with `/` separators (for links). */
  file: string;
}

/** An analysis result with the file it came from. */
export interface LoadedAnalysis {
  /** The validated result. */
  result: AnalysisResult;
  /** Its path relative to the run folder. */
  file: string;
}

/** Everything a report is built from. */
export interface RunResults {
  /** The run folder as given. */
  runDir: string;
  /** `run.json`, when present. */
  metadata?: RunMetadata;
  /** Cell results, sorted by cell id. */
  cells: LoadedCell[];
  /** Analysis results, sorted by file. */
  analysis: LoadedAnalysis[];
  /** Things a reader should know that did not stop the report (misplaced files). */
  warnings: string[];
  /** Cells without a result whose last attempt failed, with the failure's message. */
  failures: { cell: CellKey; message: string }[];
}

async function readJson(path: string, shownAs: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UserError(`cannot read '${shownAs}': ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserError(`'${shownAs}' is not valid JSON: ${(error as Error).message}`);
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function listJsonFiles(folder: string): Promise<string[]> {
  return listFilesRecursively(folder, (path) => path.endsWith(".json"));
}

function toLink(runDir: string, path: string): string {
  return relative(runDir, path).split("\\").join("/");
}

/**
 * Refuses a folder whose cells were made by more than one configuration (a
 * preset, a backend, one source's or one agent's options): a report would
 * blend them into one table. The error names two cells that differ.
 */
export function checkOneConfiguration(cells: LoadedCell[], runDir: string): void {
  const first = new Map<string, { value: string; file: string }>();
  for (const { result, file } of cells) {
    const settings: [string, unknown][] = [
      ["preset", result.preset],
      ["backend", result.backend],
      [`options of source '${result.cell.source}'`, result.sourceOptions],
      [`options of agent '${result.cell.agent}'`, result.agentOptions],
    ];
    for (const [setting, value] of settings) {
      const text = stableStringify(value);
      const seen = first.get(setting);
      if (!seen) first.set(setting, { value: text, file });
      else if (seen.value !== text) {
        throw new UserError(
          `'${runDir}' holds cells of more than one configuration (${setting}: ${seen.value} in ` +
            `'${seen.file}', ${text} in '${file}'); one report would blend them: keep each run ` +
            `in its own folder`,
        );
      }
    }
  }
}

/** Reads and validates a result folder; a bad file is an error naming it and the field at fault. */
export async function loadRun(runDir: string): Promise<RunResults> {
  if (!(await isDirectory(runDir))) {
    throw new UserError(`result folder '${runDir}' does not exist or is not a folder`);
  }
  const warnings: string[] = [];

  let metadata: RunMetadata | undefined;
  const runFile = join(runDir, "run.json");
  try {
    await Deno.stat(runFile);
    const parsed = runMetadataSchema.safeParse(await readJson(runFile, runFile));
    if (!parsed.success) {
      throw new UserError(`invalid run metadata:\n${formatZodIssues(runFile, parsed.error)}`);
    }
    metadata = parsed.data;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }

  const cells: LoadedCell[] = [];
  const cellsDir = join(runDir, "cells");
  const seen = new Map<string, string>();
  if (await isDirectory(cellsDir)) {
    for (const path of await listJsonFiles(cellsDir)) {
      const file = toLink(runDir, path);
      const parsed = cellResultSchema.safeParse(await readJson(path, path));
      if (!parsed.success) {
        throw new UserError(`invalid cell result:\n${formatZodIssues(path, parsed.error)}`);
      }
      const id = cellId(parsed.data.cell);
      const earlier = seen.get(id);
      if (earlier) {
        throw new UserError(
          `cell ${id} appears twice in '${runDir}': '${earlier}' and '${file}'; keep one`,
        );
      }
      seen.set(id, file);
      if (file !== cellPath(parsed.data.cell)) {
        warnings.push(`'${file}' holds cell ${id}; expected it at '${cellPath(parsed.data.cell)}'`);
      }
      cells.push({ result: parsed.data, file });
    }
  }
  cells.sort((a, b) => compareKeys(a.result.cell, b.result.cell));
  checkOneConfiguration(cells, runDir);

  const analysis: LoadedAnalysis[] = [];
  const analysisDir = join(runDir, "analysis");
  if (await isDirectory(analysisDir)) {
    for (const path of await listJsonFiles(analysisDir)) {
      const result = parseAnalysisResult(await readJson(path, path), path);
      analysis.push({ result, file: toLink(runDir, path) });
    }
  }

  // Failure markers say why a cell has no result (the grid writes one when a cell fails).
  const failures: RunResults["failures"] = [];
  const markersDir = join(runDir, "markers");
  if (await isDirectory(markersDir)) {
    for (const path of await listJsonFiles(markersDir)) {
      const marker = cellMarkerSchema.safeParse(await readJson(path, path).catch(() => undefined));
      if (!marker.success) {
        warnings.push(`'${toLink(runDir, path)}' is not a readable cell marker`);
        continue;
      }
      if (marker.data.state === "failed" && !seen.has(cellId(marker.data.cell))) {
        failures.push({ cell: marker.data.cell, message: marker.data.message ?? "failed" });
      }
    }
  }

  if (!metadata && cells.length === 0 && analysis.length === 0) {
    throw new UserError(
      `no results in '${runDir}': expected cell files under '${cellsDir}', analysis files or a run.json`,
    );
  }
  return { runDir, metadata, cells, analysis, warnings, failures };
}

function compareKeys(a: CellKey, b: CellKey): number {
  return a.dataset.localeCompare(b.dataset) || a.source.localeCompare(b.source) ||
    a.agent.localeCompare(b.agent) || a.seed - b.seed;
}
