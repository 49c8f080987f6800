/**
 * Combines result folders from many shards or machines into one: every cell
 * result is copied to its place under `cells/`, a cell found twice is kept
 * once when both copies are identical and is an error naming the cell when
 * they differ, the `run.json` manifests become one that lists the whole
 * grid (so a report lists the cells nobody ran as missing), and the source
 * folders are only read. Every conflict is found before anything is
 * written, and every write is atomic, so a failed merge leaves the target
 * as it was and a reader never sees half a file.
 *
 * @module
 */
import { cellId, type CellKey, cellKeySchema, cellPath, cellResultSchema } from "./results.ts";
import { type CellMarker, cellMarkerSchema, markerPath } from "./status.ts";
import { formatZodIssues, UserError } from "./errors.ts";
import { listFilesRecursively, writeFileAtomic, writeJsonAtomic } from "./files.ts";
import { stableStringify } from "./fingerprint.ts";
import { join, relative, resolve } from "./paths.ts";
import { z } from "zod";

/** What a merge did. */
export interface MergeOutcome {
  /** The target folder. */
  target: string;
  /** Cell results in the target after the merge. */
  cells: number;
  /** Ids of the cells copied into the target by this merge. */
  copied: string[];
  /** Ids of cells found more than once with identical content (kept once). */
  duplicates: string[];
  /** Cells of the merged grid that no folder had a result for. */
  missing: CellKey[];
  /** Whether a merged `run.json` was written (some source had one). */
  manifest: boolean;
  /** Marker files of unfinished cells carried over (for `status`). */
  markers: number;
  /** Files of the sources that a merge does not know, so does not carry (reports are rebuilt). */
  skipped: string[];
}

/** Files a report writes beside the results; the merged folder gets its own. */
const reportFiles = new Set([
  "report.html",
  "summary.md",
  "results.csv",
  "summary.json",
  "quality.csv",
]);

/** Fields of the grid configs that must agree for results to share one report. */
const mustAgree = ["preset", "backend", "sourceOptions", "agentOptions"] as const;

const manifestSchema = z.looseObject({
  config: z.record(z.string(), z.unknown()),
  expectedCells: z.array(cellKeySchema),
});

interface FoundFile {
  /** Folder it came from. */
  folder: string;
  /** Full path. */
  path: string;
  /** Text as read. */
  text: string;
}

interface Collected {
  cells: Map<string, FoundFile & { canonical: string; cell: CellKey; key: string }>;
  extras: Map<string, FoundFile & { relativePath: string }>;
  markers: Map<string, CellMarker>;
  manifests: (FoundFile & { value: z.infer<typeof manifestSchema> })[];
  duplicates: Set<string>;
  conflicts: string[];
  skipped: string[];
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserError(`'${path}' is not valid JSON: ${(error as Error).message}`);
  }
}

/** Top-level fields whose values differ, for a conflict's message. */
function differingFields(a: unknown, b: unknown): string[] {
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(left), ...Object.keys(right)])];
  return keys.filter((key) => stableStringify(left[key]) !== stableStringify(right[key]));
}

async function collect(folder: string, into: Collected): Promise<void> {
  for (const path of await listFilesRecursively(folder)) {
    const relativePath = relative(folder, path).split("\\").join("/");
    // Temporary files of atomic writes, lock files, and lock folders of older releases.
    if (relativePath.endsWith(".tmp") || /\.lock(\/|$)/.test(relativePath)) continue;
    if (reportFiles.has(relativePath)) continue;
    if (relativePath === "run.json") {
      const text = await Deno.readTextFile(path);
      const parsed = manifestSchema.safeParse(parseJson(text, path));
      if (!parsed.success) {
        throw new UserError(`invalid run manifest:\n${formatZodIssues(path, parsed.error)}`);
      }
      into.manifests.push({ folder, path, text, value: parsed.data });
    } else if (relativePath.startsWith("cells/") && relativePath.endsWith(".json")) {
      const text = await Deno.readTextFile(path);
      const raw = parseJson(text, path);
      const parsed = cellResultSchema.safeParse(raw);
      if (!parsed.success) {
        throw new UserError(`invalid cell result:\n${formatZodIssues(path, parsed.error)}`);
      }
      const key = cellId(parsed.data.cell);
      const canonical = stableStringify(raw);
      const earlier = into.cells.get(key);
      if (!earlier) {
        into.cells.set(key, { folder, path, text, canonical, cell: parsed.data.cell, key });
      } else if (earlier.canonical === canonical) {
        if (earlier.path !== path) into.duplicates.add(key);
      } else {
        const fields = differingFields(JSON.parse(earlier.text), raw);
        into.conflicts.push(
          `cell ${key} differs between '${earlier.path}' and '${path}' ` +
            `(${fields.join(", ")}): keep one of the two files and merge again`,
        );
      }
    } else if (relativePath.startsWith("markers/") && relativePath.endsWith(".json")) {
      const parsed = cellMarkerSchema.safeParse(
        parseJson(await Deno.readTextFile(path), path),
      );
      if (!parsed.success) {
        into.skipped.push(path);
        continue;
      }
      const key = cellId(parsed.data.cell);
      const earlier = into.markers.get(key);
      if (!earlier || earlier.at < parsed.data.at) into.markers.set(key, parsed.data);
    } else if (relativePath.startsWith("analysis/")) {
      const text = await Deno.readTextFile(path);
      const earlier = into.extras.get(relativePath);
      if (!earlier) into.extras.set(relativePath, { folder, path, text, relativePath });
      else if (earlier.text !== text) {
        into.conflicts.push(
          `'${relativePath}' differs between '${earlier.path}' and '${path}': ` +
            "keep one of the two files and merge again",
        );
      }
    } else into.skipped.push(path);
  }
}

function union<T>(lists: T[][], key: (item: T) => string = String): T[] {
  const seen = new Map<string, T>();
  for (const list of lists) {
    for (const item of list) if (!seen.has(key(item))) seen.set(key(item), item);
  }
  return [...seen.values()];
}

/** The manifest of the merged folder: the union of the grids, with one entry per shard. */
function mergeManifests(
  manifests: Collected["manifests"],
  target: string,
  computePathOfCells: string | undefined,
): Record<string, unknown> {
  const first = manifests[0];
  for (const other of manifests.slice(1)) {
    for (const field of mustAgree) {
      const a = stableStringify(first.value.config[field]);
      const b = stableStringify(other.value.config[field]);
      if (a !== b) {
        throw new UserError(
          `cannot merge runs with different config.${field}: ${a} in '${first.path}' but ` +
            `${b} in '${other.path}'`,
        );
      }
    }
  }
  const configs = manifests.map((manifest) => manifest.value.config);
  const listOf = (field: string) =>
    union(
      configs.map((config) => (Array.isArray(config[field]) ? config[field] : []) as unknown[]),
    );
  const expectedCells = union(
    manifests.map((manifest) => manifest.value.expectedCells),
    cellId,
  );
  const shards: unknown[] = [];
  for (const manifest of manifests) {
    const value = manifest.value as Record<string, unknown>;
    if (Array.isArray(value.shards)) shards.push(...value.shards);
    else {
      shards.push({
        folder: resolve(manifest.folder),
        ...(value.shard ? { shard: value.shard } : {}),
        startedAt: value.startedAt,
        finishedAt: value.finishedAt,
        computePath: value.computePath,
      });
    }
  }
  const times = (field: string) =>
    manifests.map((manifest) => (manifest.value as Record<string, unknown>)[field]);
  const started = times("startedAt").filter((t): t is string => typeof t === "string").sort();
  const finished = times("finishedAt");
  const allFinished = finished.every((t) => typeof t === "string");
  const firstValue = first.value as Record<string, unknown>;
  const computePath = times("computePath").find((t) => typeof t === "string") ??
    computePathOfCells ?? firstValue.backend;
  // What each dataset's data were: every shard must have used the same.
  const datasetIdentities: Record<string, unknown> = {};
  for (const manifest of manifests) {
    const identities = (manifest.value as Record<string, unknown>).datasets as
      | Record<string, unknown>
      | undefined;
    for (const [dataset, identity] of Object.entries(identities ?? {})) {
      const known = datasetIdentities[dataset];
      if (known !== undefined && stableStringify(known) !== stableStringify(identity)) {
        throw new UserError(
          `${manifest.path}: datasets.${dataset}: other data than the other shards used ` +
            `(${stableStringify(identity)} against ${stableStringify(known)})`,
        );
      }
      datasetIdentities[dataset] = identity;
    }
  }
  return {
    config: {
      ...first.value.config,
      datasets: listOf("datasets"),
      sources: listOf("sources"),
      agents: listOf("agents"),
      seeds: (listOf("seeds") as number[]).sort((a, b) => a - b),
      out: target,
    },
    expectedCells,
    ...(Object.keys(datasetIdentities).length ? { datasets: datasetIdentities } : {}),
    backend: firstValue.backend ?? first.value.config.backend,
    versions: firstValue.versions ?? {},
    computePath,
    startedAt: started[0] ?? new Date().toISOString(),
    ...(allFinished ? { finishedAt: (finished as string[]).sort().at(-1) } : {}),
    shards,
    mergedAt: new Date().toISOString(),
  };
}

/**
 * Merges the result folders `sources` into `target` (which may already hold
 * results, and may be one of the sources). Throws a {@link UserError}
 * naming every conflicting cell or file, before writing anything, when two
 * folders hold different results for one cell.
 */
export async function mergeResults(sources: string[], target: string): Promise<MergeOutcome> {
  if (!sources.length) throw new UserError("merge: no source folders given");
  for (const folder of sources) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(folder);
    } catch {
      throw new UserError(`merge: source folder '${folder}' does not exist`);
    }
    if (!info.isDirectory) throw new UserError(`merge: source '${folder}' is not a folder`);
  }
  const collected: Collected = {
    cells: new Map(),
    extras: new Map(),
    markers: new Map(),
    manifests: [],
    duplicates: new Set(),
    conflicts: [],
    skipped: [],
  };
  const targetPath = resolve(target);
  // The target's own results count as one more source, so a merge never overwrites one silently.
  const folders = union([[target], sources], (folder) => resolve(folder));
  for (const folder of folders) await collect(folder, collected);
  if (collected.conflicts.length) {
    throw new UserError(
      `merge into '${target}' stopped, nothing was written:\n  ` +
        collected.conflicts.join("\n  "),
    );
  }

  const copied: string[] = [];
  for (const found of collected.cells.values()) {
    const destination = join(target, cellPath(found.cell));
    const existing = await Deno.readTextFile(destination).catch(() => undefined);
    if (existing === found.text) continue;
    await writeFileAtomic(destination, found.text);
    if (resolve(found.folder) !== targetPath) copied.push(found.key);
  }
  for (const found of collected.extras.values()) {
    const destination = join(target, found.relativePath);
    const existing = await Deno.readTextFile(destination).catch(() => undefined);
    if (existing !== found.text) await writeFileAtomic(destination, found.text);
  }
  let markers = 0;
  for (const [key, marker] of collected.markers) {
    const destination = join(target, markerPath(marker.cell));
    if (collected.cells.has(key)) {
      // The cell finished somewhere, so its marker says nothing any more.
      await Deno.remove(destination).catch(() => {});
      continue;
    }
    await writeJsonAtomic(destination, marker);
    markers += 1;
  }

  let missing: CellKey[] = [];
  let manifest = false;
  if (collected.manifests.length) {
    const firstCell = collected.cells.values().next().value;
    const computePathOfCells = firstCell
      ? (JSON.parse(firstCell.text) as { computePath?: string }).computePath
      : undefined;
    const merged = mergeManifests(collected.manifests, target, computePathOfCells);
    await writeJsonAtomic(join(target, "run.json"), merged);
    manifest = true;
    missing = (merged.expectedCells as CellKey[]).filter((cell) =>
      !collected.cells.has(cellId(cell))
    );
  }
  const ownFiles = (path: string) => resolve(path).startsWith(targetPath + "/");
  return {
    target,
    cells: collected.cells.size,
    copied: copied.sort(),
    duplicates: [...collected.duplicates].sort(),
    missing,
    manifest,
    markers,
    skipped: collected.skipped.filter((path) => !ownFiles(path)),
  };
}
