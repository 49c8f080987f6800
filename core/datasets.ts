/**
 * Where a grid's datasets come from: a D4RL HDF5 file in one of the data
 * folders, or else a dataset collected once per machine by the environment
 * plugin and cached under a key of (dataset, preset, seed, plugin, version).
 *
 * @module
 */
import type { EnvironmentPlugin, EnvironmentSpec } from "./contracts/environment.ts";
import { normalizedScore } from "./contracts/environment.ts";
import type { PresetName } from "./contracts/common.ts";
import type { D4rlDataset } from "./types.ts";
import { exists, readJsonIfExists, writeJsonAtomic } from "./files.ts";
import { describeHolder, type LockRecord, withLock } from "./lock.ts";
import { join, resolve } from "./paths.ts";
import { harnessVersion } from "./version.ts";
import { UserError } from "./errors.ts";
import { DatasetError, readD4rl, writeD4rl } from "./d4rl.ts";
import { fileSha256 } from "./fingerprint.ts";

/** How a cached dataset was made, stored beside its HDF5 file. */
export interface DatasetRecord {
  /** Dataset id. */
  dataset: string;
  /** `d4rl-file` or `collected`. */
  origin: "d4rl-file" | "collected";
  /** The HDF5 file. */
  path: string;
  /** Preset it was collected at (collected datasets only). */
  preset?: string;
  /** Collection seed. */
  seed?: number;
  /** Environment plugin that collected it. */
  plugin?: string;
  /** Harness version that collected it. */
  version?: string;
  /** Steps (rows). */
  size: number;
  /** Episodes (runs of rows ending in a terminal or a timeout). */
  episodes: number;
  /** Mean undiscounted episode return. */
  meanReturn: number;
  /** Mean D4RL normalised score ×100 of the episodes. */
  normalizedScore: number;
  /** Seconds the collection took. */
  seconds?: number;
  /** When it was made. */
  createdAt?: string;
}

/** Undiscounted returns of the dataset's complete episodes (ended by a terminal or a timeout). */
export function episodeReturns(dataset: D4rlDataset): number[] {
  const returns: number[] = [];
  let total = 0;
  for (let i = 0; i < dataset.size; i++) {
    total += dataset.rewards[i];
    if (dataset.terminals[i] || dataset.timeouts[i]) {
      returns.push(total);
      total = 0;
    }
  }
  return returns;
}

/** Describes a dataset: size, episodes, mean return and normalised score. */
export function describeDataset(
  dataset: D4rlDataset,
  plugin: EnvironmentPlugin,
  id: string,
): Pick<DatasetRecord, "size" | "episodes" | "meanReturn" | "normalizedScore"> {
  const returns = episodeReturns(dataset);
  const meanReturn = returns.length ? returns.reduce((a, b) => a + b, 0) / returns.length : 0;
  return {
    size: dataset.size,
    episodes: returns.length,
    meanReturn,
    normalizedScore: normalizedScore(meanReturn, plugin.spec(id).scoreReference),
  };
}

/** A dataset whose rows are not the environment's observations and actions is an error naming both. */
export function assertFitsEnvironment(
  dataset: D4rlDataset,
  spec: EnvironmentSpec,
  file: string,
): void {
  for (
    const [key, has, wants] of [
      ["observations", dataset.observationDim, spec.observationDim],
      ["actions", dataset.actionDim, spec.actionDim],
    ] as const
  ) {
    if (has !== wants) {
      throw new DatasetError(
        file,
        key,
        `has ${has} columns; ${spec.id}'s ${key} have ${wants}`,
      );
    }
  }
}

/** What {@link resolveDataset} needs to know. */
export interface DatasetOptions {
  /** Folders searched for D4RL files. */
  dataDirs: string[];
  /** Cache folder; collected datasets go to `<cacheDir>/datasets/`. */
  cacheDir: string;
  /** Preset the dataset is collected at when none is found. */
  preset: PresetName;
  /** Collection seed. */
  seed?: number;
  /** Progress of a collection, as a fraction. */
  onProgress?: (fraction: number) => void;
  /** A line of information (found a file, collecting, …). */
  log?: (message: string) => void;
}

/** The cache key of a collected dataset. */
export function collectedKey(plugin: EnvironmentPlugin, id: string, preset: string, seed: number) {
  return `${id}__${preset}__seed-${seed}__${plugin.name}-${harnessVersion}`;
}

/**
 * What a cell's data are, known before any collection: the content hash of
 * the D4RL file found, or the key of the collected dataset. Part of a cell's
 * identity, so a changed dataset reruns the cell.
 */
export interface DatasetIdentity {
  /** `d4rl-file` (read from a folder) or `collected` (made by the environment plugin). */
  origin: "d4rl-file" | "collected";
  /** The D4RL file (files only). */
  path?: string;
  /** SHA-256 of the file's bytes (files only). */
  sha256?: string;
  /** The cache key of the collected dataset (collected only). */
  key?: string;
  /** The D4RL file name looked for, where the plugin names one (collected only). */
  lookedFor?: string;
  /** The folders searched for it (collected only). */
  searched?: string;
}

/** The part of a {@link DatasetIdentity} that names the content (not where it lies). */
export function identityKey(identity: DatasetIdentity): string {
  return identity.origin === "d4rl-file"
    ? `d4rl-file:${identity.sha256}`
    : `collected:${identity.key}`;
}

/** The first D4RL file of a dataset in `dataDirs`, if any. */
async function findD4rlFile(
  plugin: EnvironmentPlugin,
  id: string,
  dataDirs: readonly string[],
): Promise<string | undefined> {
  const fileName = plugin.d4rlFileName?.(id);
  if (!fileName) return undefined;
  for (const folder of dataDirs) {
    const path = resolve(folder, fileName);
    if (await exists(path)) return path;
  }
  return undefined;
}

/** The identity of a dataset's data (hashing the D4RL file, once per file version and process). */
export async function identifyDataset(
  plugin: EnvironmentPlugin,
  id: string,
  options: Pick<DatasetOptions, "dataDirs" | "preset" | "seed">,
): Promise<DatasetIdentity> {
  const path = await findD4rlFile(plugin, id, options.dataDirs);
  if (path === undefined) {
    const fileName = plugin.d4rlFileName?.(id);
    return {
      ...(fileName ? { lookedFor: fileName, searched: options.dataDirs.join(", ") } : {}),
      origin: "collected",
      key: collectedKey(plugin, id, options.preset, options.seed ?? 0),
    };
  }
  return { origin: "d4rl-file", path, sha256: await fileSha256(path) };
}

/** One line saying which data a dataset id stands for. */
export function describeIdentity(id: string, identity: DatasetIdentity): string {
  return identity.origin === "d4rl-file"
    ? `${id}: D4RL file ${identity.path} (sha256 ${identity.sha256!.slice(0, 12)}…)`
    : `${id}: collected dataset ${identity.key} (${
      identity.lookedFor ? `no ${identity.lookedFor} in ${identity.searched}` : "no D4RL file known"
    })`;
}

/**
 * The HDF5 file of a dataset: a D4RL file found in `dataDirs`, or a
 * collected one (collected now, under a lock, if the cache lacks it).
 */
export async function resolveDataset(
  plugin: EnvironmentPlugin,
  id: string,
  options: DatasetOptions,
): Promise<DatasetRecord> {
  const fileName = plugin.d4rlFileName?.(id);
  const found = await findD4rlFile(plugin, id, options.dataDirs);
  if (found !== undefined) {
    options.log?.(`${id}: using D4RL file ${found}`);
    const dataset = await readD4rl(found);
    assertFitsEnvironment(dataset, plugin.spec(id), found);
    return {
      dataset: id,
      origin: "d4rl-file",
      path: found,
      ...describeDataset(dataset, plugin, id),
    };
  }
  if (!plugin.collect) {
    throw new UserError(
      `dataset '${id}': no file ${fileName ?? ""} in ${options.dataDirs.join(", ")} ` +
        `and environment plugin '${plugin.name}' cannot collect one`,
    );
  }
  const seed = options.seed ?? 0;
  const base = resolve(
    options.cacheDir,
    "datasets",
    collectedKey(plugin, id, options.preset, seed),
  );
  const path = `${base}.hdf5`;
  const recordPath = `${base}.json`;
  const onWait = (holder: LockRecord | undefined) =>
    options.log?.(describeHolder(`${base}.lock`, holder));
  return await withLock(base, async () => {
    const cached = (await readJsonIfExists(recordPath)) as DatasetRecord | undefined;
    // The file is the one beside the record: a cache folder moved or copied (to a
    // cluster's shared disk, say) still finds its data, whatever path was written.
    if (cached && (await exists(path))) return { ...cached, path };
    options.log?.(`${id}: collecting a ${options.preset} dataset with ${plugin.name}`);
    const started = performance.now();
    const dataset = await plugin.collect!({
      dataset: id,
      seed,
      preset: options.preset,
      onProgress: options.onProgress,
    });
    await writeD4rl(path, dataset);
    const record: DatasetRecord = {
      dataset: id,
      origin: "collected",
      path,
      preset: options.preset,
      seed,
      plugin: plugin.name,
      version: harnessVersion,
      ...describeDataset(dataset, plugin, id),
      seconds: (performance.now() - started) / 1000,
      createdAt: new Date().toISOString(),
    };
    await writeJsonAtomic(recordPath, record);
    return record;
  }, { onWait });
}

/** Every collected dataset record in a cache folder. */
export async function listCachedDatasets(cacheDir: string): Promise<DatasetRecord[]> {
  const folder = join(cacheDir, "datasets");
  const records: DatasetRecord[] = [];
  try {
    for await (const entry of Deno.readDir(folder)) {
      if (entry.isFile && entry.name.endsWith(".json")) {
        const record = (await readJsonIfExists(join(folder, entry.name))) as DatasetRecord;
        records.push({ ...record, path: join(folder, entry.name.replace(/\.json$/, ".hdf5")) });
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return records.sort((a, b) => a.dataset.localeCompare(b.dataset));
}

/** Reads a resolved dataset's HDF5 file. */
export function loadDataset(record: DatasetRecord): Promise<D4rlDataset> {
  return readD4rl(record.path);
}
