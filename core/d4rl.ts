/**
 * D4RL-layout HDF5 files: read, write and validate them, and turn a dataset
 * into the `(s, a, r, s', done)` transitions agents train on.
 *
 * Files are read and written with h5wasm (`h5wasm/node` works on disk files
 * directly). h5py writes booleans (`terminals`, `timeouts`) as an HDF5 enum
 * over int8, which h5wasm reports with dtype "unknown"; those, and any numeric
 * dtype (float32, float64, integers), are accepted and converted.
 *
 * Layout: `observations`, `actions`, `rewards`, `terminals`, `timeouts` at the
 * top level (one row per step), optional `next_observations`, per-step arrays
 * under `infos/`, and free-form `metadata/` (strings, scalars, arrays, nested
 * groups). Root attributes of the file appear in {@link D4rlDataset.metadata}
 * under their name prefixed with `@` (e.g. `@env_name`), and are written back
 * as root attributes.
 *
 * @module
 */
import {
  Dataset as H5Dataset,
  File as H5File,
  Group as H5Group,
  ready as h5wasmReady,
} from "h5wasm/node";
import type { D4rlDataset, InfoArray, Transitions, VectorStats } from "./types.ts";
import { replaceAtomically } from "./files.ts";
import { UserError } from "./errors.ts";
import { allocateTransitions } from "./transitions.ts";

/** A dataset file or object that is missing, unreadable or not in D4RL's layout. */
export class DatasetError extends UserError {
  /** The file (or label) the dataset came from. */
  readonly file: string;
  /** The HDF5 key at fault (`observations`, `infos/goal`, …), when one is. */
  readonly key?: string;

  /** `problem` says what is wrong and what was expected. */
  constructor(file: string, key: string | undefined, problem: string) {
    super(`${file}${key === undefined ? "" : `: key "${key}"`}: ${problem}`);
    this.name = "DatasetError";
    this.file = file;
    this.key = key;
  }
}

/**
 * A multi-dimensional numeric array of `metadata/` (policy weights, …), kept
 * with its shape so that it is written back as it was read. One-dimensional
 * arrays are plain typed arrays.
 */
export class ShapedArray {
  /** Values, row-major. */
  readonly data: InfoArray;
  /** Dimensions; their product is `data.length`. */
  readonly shape: readonly number[];

  /** Wraps `data` with its `shape`. */
  constructor(data: InfoArray, shape: readonly number[]) {
    this.data = data;
    this.shape = shape;
  }
}

/** The per-step keys every D4RL file holds. */
const requiredKeys = ["observations", "actions", "rewards", "terminals", "timeouts"] as const;

let h5Ready: Promise<unknown> | undefined;

function ensureH5(): Promise<unknown> {
  h5Ready ??= h5wasmReady;
  return h5Ready;
}

/** The HDF5 format signature, found at byte 0 or at a power of two from 512 on (a user block). */
const hdf5Signature = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

async function assertHdf5File(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new DatasetError(path, undefined, "file not found; expected a D4RL HDF5 file");
    }
    throw new DatasetError(path, undefined, `cannot be read: ${messageOf(error)}`);
  }
  if (!info.isFile) throw new DatasetError(path, undefined, "is not a file; expected an HDF5 file");
  const file = await Deno.open(path, { read: true });
  try {
    const header = new Uint8Array(hdf5Signature.length);
    for (let offset = 0; offset + header.length <= info.size; offset = offset ? offset * 2 : 512) {
      const filled = await readAt(file, offset, header);
      if (filled === header.length && hdf5Signature.every((byte, i) => header[i] === byte)) {
        await assertWhole(file, offset, info.size, path);
        return;
      }
    }
  } finally {
    file.close();
  }
  throw new DatasetError(
    path,
    undefined,
    `is not an HDF5 file (no HDF5 signature in its ${info.size} bytes); expected a D4RL HDF5 file`,
  );
}

/** Fills `into` from `offset` as far as the file goes; returns the bytes read. */
async function readAt(file: Deno.FsFile, offset: number, into: Uint8Array): Promise<number> {
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < into.length) {
    const read = await file.read(into.subarray(filled));
    if (read === null) break;
    filled += read;
  }
  return filled;
}

/**
 * Checks that an HDF5 file is as long as its superblock says (the end-of-file
 * address, from the base address), so a truncated download is named as such
 * rather than failing deep inside the HDF5 library.
 */
async function assertWhole(
  file: Deno.FsFile,
  signatureAt: number,
  size: number,
  path: string,
): Promise<void> {
  const head = new Uint8Array(96);
  const filled = await readAt(file, signatureAt, head);
  const view = new DataView(head.buffer, 0, filled);
  const version = filled > 8 ? head[8] : -1;
  // Superblock layouts (HDF5 file format specification, "Superblock").
  const offsetSize = version === 0 || version === 1 ? head[13] : head[9];
  if (offsetSize !== 8 && offsetSize !== 4) return;
  const addressesAt = version === 0
    ? 24
    : version === 1
    ? 28
    : version === 2 || version === 3
    ? 12
    : -1;
  if (addressesAt < 0 || addressesAt + 3 * offsetSize > filled) return;
  const address = (at: number) =>
    offsetSize === 8 ? Number(view.getBigUint64(at, true)) : view.getUint32(at, true);
  const base = address(addressesAt);
  // v0/v1: base, free-space, end of file; v2/v3: base, extension, end of file.
  const endOfFile = address(addressesAt + 2 * offsetSize);
  if (base + endOfFile > size) {
    throw new DatasetError(
      path,
      undefined,
      `truncated: its HDF5 superblock says ${base + endOfFile} bytes, the file has ${size}`,
    );
  }
}

/**
 * Reads a D4RL-layout HDF5 file and validates it ({@link validateD4rl}).
 * Throws {@link DatasetError} naming the file and key on any problem.
 */
export async function readD4rl(path: string): Promise<D4rlDataset> {
  await assertHdf5File(path);
  await ensureH5();
  let file: H5File;
  try {
    file = new H5File(path, "r");
  } catch (error) {
    throw new DatasetError(path, undefined, `HDF5 open failed (corrupted?): ${messageOf(error)}`);
  }
  try {
    const dataset = readLayout(file, path);
    validateD4rl(dataset, path);
    return dataset;
  } finally {
    try {
      file.close();
    } catch {
      // A file that failed to open fully has nothing to close.
    }
  }
}

function readLayout(file: H5File, path: string): D4rlDataset {
  let topKeys: string[];
  try {
    topKeys = file.keys();
  } catch (error) {
    throw new DatasetError(
      path,
      undefined,
      `HDF5 file unreadable (corrupted?): ${messageOf(error)}`,
    );
  }
  for (const key of requiredKeys) {
    if (!topKeys.includes(key)) {
      throw new DatasetError(
        path,
        key,
        `missing; a D4RL file holds ${requiredKeys.join(", ")} (found: ${
          topKeys.join(", ") || "nothing"
        })`,
      );
    }
  }

  const observations = readNumeric(file, path, "observations");
  if (observations.shape.length !== 2 || observations.shape[1] < 1) {
    throw new DatasetError(
      path,
      "observations",
      `has shape [${observations.shape}]; expected 2-D [steps, observationDim]`,
    );
  }
  const [size, observationDim] = observations.shape;
  const actions = readNumeric(file, path, "actions");
  if (actions.shape.length !== 2 || actions.shape[1] < 1) {
    throw new DatasetError(
      path,
      "actions",
      `has shape [${actions.shape}]; expected 2-D [steps, actionDim]`,
    );
  }
  assertRows(path, "actions", actions.shape, size);
  const actionDim = actions.shape[1];

  const rewards = readNumeric(file, path, "rewards");
  assertPerStep(path, "rewards", rewards.shape, size);
  const terminals = readNumeric(file, path, "terminals");
  assertPerStep(path, "terminals", terminals.shape, size);
  const timeouts = readNumeric(file, path, "timeouts");
  assertPerStep(path, "timeouts", timeouts.shape, size);

  let nextObservations: Float32Array | undefined;
  if (topKeys.includes("next_observations")) {
    const next = readNumeric(file, path, "next_observations");
    if (next.shape.length !== 2 || next.shape[0] !== size || next.shape[1] !== observationDim) {
      throw new DatasetError(
        path,
        "next_observations",
        `has shape [${next.shape}]; expected [${size}, ${observationDim}] like observations`,
      );
    }
    nextObservations = toFloat32(next.data);
  }

  const infos: D4rlDataset["infos"] = {};
  if (topKeys.includes("infos")) readInfos(file, path, "infos", size, infos);

  const metadata: Record<string, unknown> = {};
  if (topKeys.includes("metadata")) {
    const group = file.get("metadata");
    if (!(group instanceof H5Group)) {
      throw new DatasetError(path, "metadata", "is not a group; expected a metadata/ group");
    }
    Object.assign(metadata, readMetadataGroup(group, path, "metadata"));
  }
  for (const [name, attribute] of Object.entries(file.attrs)) {
    metadata[`@${name}`] = metadataValue(attribute.value, attribute.shape ?? []);
  }

  return {
    size,
    observationDim,
    actionDim,
    observations: toFloat32(observations.data),
    actions: toFloat32(actions.data),
    rewards: toFloat32(rewards.data),
    terminals: toFlags(terminals.data, path, "terminals"),
    timeouts: toFlags(timeouts.data, path, "timeouts"),
    nextObservations,
    infos,
    metadata,
  };
}

interface NumericArray {
  data: NumericTypedArray;
  shape: number[];
}

type NumericTypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

function readNumeric(file: H5Group, path: string, key: string): NumericArray {
  let entity: ReturnType<H5Group["get"]>;
  try {
    entity = file.get(key);
  } catch (error) {
    throw new DatasetError(path, key, `unreadable (corrupted file?): ${messageOf(error)}`);
  }
  if (!(entity instanceof H5Dataset)) {
    throw new DatasetError(path, key, "is not an HDF5 dataset; expected a numeric array");
  }
  let value: unknown;
  let shape: number[];
  try {
    shape = entity.shape ?? [];
    value = entity.value;
  } catch (error) {
    throw new DatasetError(path, key, `unreadable (corrupted file?): ${messageOf(error)}`);
  }
  if (!isNumericTypedArray(value)) {
    throw new DatasetError(
      path,
      key,
      `has dtype ${JSON.stringify(entity.dtype)}; expected numbers (float32, float64, int or bool)`,
    );
  }
  return { data: value, shape };
}

function isNumericTypedArray(value: unknown): value is NumericTypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView) &&
    !(value instanceof Uint8ClampedArray);
}

function assertRows(path: string, key: string, shape: number[], size: number): void {
  if (shape[0] !== size) {
    throw new DatasetError(
      path,
      key,
      `has ${shape[0]} rows; expected ${size}, one per row of observations`,
    );
  }
}

function assertPerStep(path: string, key: string, shape: number[], size: number): void {
  const perStep = shape.length === 1 || (shape.length === 2 && shape[1] === 1);
  if (!perStep) {
    throw new DatasetError(path, key, `has shape [${shape}]; expected 1-D [${size}]`);
  }
  assertRows(path, key, shape, size);
}

function readInfos(
  file: H5File,
  path: string,
  prefix: string,
  size: number,
  infos: D4rlDataset["infos"],
): void {
  const group = file.get(prefix);
  if (!(group instanceof H5Group)) {
    throw new DatasetError(path, prefix, "is not a group; expected per-step arrays under it");
  }
  for (const name of group.keys()) {
    const key = `${prefix}/${name}`;
    const entity = file.get(key);
    if (entity instanceof H5Group) {
      readInfos(file, path, key, size, infos);
      continue;
    }
    const array = readNumeric(file, path, key);
    if (array.shape.length < 1) {
      throw new DatasetError(path, key, `is a scalar; expected one row per step (${size} rows)`);
    }
    assertRows(path, key, array.shape, size);
    const width = array.shape.slice(1).reduce((product, dim) => product * dim, 1);
    infos[key.slice("infos/".length)] = { data: toInfoArray(array.data), width };
  }
}

function readMetadataGroup(group: H5Group, path: string, prefix: string): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (const name of group.keys()) {
    const key = `${prefix}/${name}`;
    let entity: ReturnType<H5Group["get"]>;
    try {
      entity = group.get(name);
    } catch (error) {
      throw new DatasetError(path, key, `unreadable (corrupted file?): ${messageOf(error)}`);
    }
    if (entity instanceof H5Group) {
      record[name] = readMetadataGroup(entity, path, key);
    } else if (entity instanceof H5Dataset) {
      try {
        record[name] = metadataValue(entity.value, entity.shape ?? []);
      } catch (error) {
        throw new DatasetError(path, key, `unreadable: ${messageOf(error)}`);
      }
    }
  }
  return record;
}

function metadataValue(value: unknown, shape: readonly number[]): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof BigInt64Array || value instanceof BigUint64Array) {
    return wrapShape(Float64Array.from(value, Number), shape);
  }
  if (isNumericTypedArray(value)) return wrapShape(toInfoArray(value), shape);
  if (Array.isArray(value)) return value.map((item) => metadataValue(item, []));
  return value;
}

function wrapShape(data: InfoArray, shape: readonly number[]): InfoArray | ShapedArray {
  return shape.length > 1 ? new ShapedArray(data, [...shape]) : data;
}

function toInfoArray(data: NumericTypedArray): InfoArray {
  if (
    data instanceof Float32Array || data instanceof Float64Array || data instanceof Int32Array ||
    data instanceof Int8Array || data instanceof Uint8Array
  ) {
    return data;
  }
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    return Float64Array.from(data, Number);
  }
  return Float64Array.from(data);
}

function toFloat32(data: NumericTypedArray): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    return Float32Array.from(data, Number);
  }
  return Float32Array.from(data);
}

function toFlags(data: NumericTypedArray, path: string, key: string): Uint8Array {
  const flags = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const value = Number(data[i]);
    if (value !== 0 && value !== 1) {
      throw new DatasetError(path, key, `row ${i} is ${value}; expected 0 or 1 (a boolean flag)`);
    }
    flags[i] = value;
  }
  return flags;
}

/**
 * Checks a dataset in memory: sizes positive, every array's length agreeing
 * with `size` and the widths, numbers finite, flags 0 or 1. Throws
 * {@link DatasetError} naming `file` and the D4RL key at fault.
 */
export function validateD4rl(dataset: D4rlDataset, file: string): void {
  const { size, observationDim, actionDim } = dataset;
  if (!Number.isInteger(size) || size < 1) {
    throw new DatasetError(file, "observations", `has ${size} rows; expected at least one step`);
  }
  if (!Number.isInteger(observationDim) || observationDim < 1) {
    throw new DatasetError(file, "observations", `has width ${observationDim}; expected ≥ 1`);
  }
  if (!Number.isInteger(actionDim) || actionDim < 1) {
    throw new DatasetError(file, "actions", `has width ${actionDim}; expected ≥ 1`);
  }
  checkFinite(file, "observations", dataset.observations, size, observationDim);
  checkFinite(file, "actions", dataset.actions, size, actionDim);
  checkFinite(file, "rewards", dataset.rewards, size, 1);
  if (dataset.nextObservations !== undefined) {
    checkFinite(file, "next_observations", dataset.nextObservations, size, observationDim);
  }
  checkFlags(file, "terminals", dataset.terminals, size);
  checkFlags(file, "timeouts", dataset.timeouts, size);
  for (const [name, info] of Object.entries(dataset.infos)) {
    const key = `infos/${name}`;
    if (!Number.isInteger(info.width) || info.width < 1 || info.data.length !== size * info.width) {
      throw new DatasetError(
        file,
        key,
        `has ${info.data.length} values of width ${info.width}; expected ${size} rows`,
      );
    }
  }
}

function checkFinite(
  file: string,
  key: string,
  values: Float32Array,
  size: number,
  width: number,
): void {
  if (!(values instanceof Float32Array)) {
    throw new DatasetError(file, key, "is not a Float32Array");
  }
  if (values.length !== size * width) {
    throw new DatasetError(
      file,
      key,
      `has ${values.length} values; expected ${size} rows × ${width} = ${size * width}`,
    );
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      const place = width === 1 ? `row ${i}` : `row ${Math.floor(i / width)}, column ${i % width}`;
      throw new DatasetError(file, key, `${place} is ${values[i]}; expected finite numbers`);
    }
  }
}

function checkFlags(file: string, key: string, flags: Uint8Array, size: number): void {
  if (flags.length !== size) {
    throw new DatasetError(file, key, `has ${flags.length} values; expected ${size}, one per step`);
  }
  for (let i = 0; i < size; i++) {
    if (flags[i] > 1) {
      throw new DatasetError(file, key, `row ${i} is ${flags[i]}; expected 0 or 1`);
    }
  }
}

/** Options of {@link writeD4rl}. */
export interface WriteD4rlOptions {
  /** gzip level 1–9 for the per-step arrays (D4RL's files use gzip); 0 or absent: none. */
  gzipLevel?: number;
}

/**
 * Writes a dataset as a D4RL-layout HDF5 file. The file appears atomically:
 * it is written next to `path` under a temporary name and renamed.
 * Flags are written as int8 (h5wasm cannot write h5py's bool enum).
 */
export async function writeD4rl(
  path: string,
  dataset: D4rlDataset,
  options: WriteD4rlOptions = {},
): Promise<void> {
  validateD4rl(dataset, path);
  await ensureH5();
  const folder = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  const folderInfo = await Deno.stat(folder).catch(() => undefined);
  if (!folderInfo?.isDirectory) {
    throw new DatasetError(path, undefined, `cannot be written: folder ${folder} does not exist`);
  }
  try {
    await replaceAtomically(path, (temporary) => {
      const file = new H5File(temporary, "w");
      try {
        writeLayout(file, dataset, options.gzipLevel ?? 0);
      } finally {
        file.close();
      }
      return Promise.resolve();
    });
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    throw new DatasetError(path, undefined, `writing failed: ${messageOf(error)}`);
  }
}

function writeLayout(file: H5File, dataset: D4rlDataset, gzipLevel: number): void {
  const { size, observationDim, actionDim } = dataset;
  const perStep = (
    group: H5Group,
    name: string,
    data: InfoArray,
    shape: number[],
    dtype: string,
  ) => {
    const compressed = gzipLevel > 0 && size > 0;
    group.create_dataset({
      name,
      data,
      shape,
      dtype,
      ...(compressed
        ? {
          chunks: [Math.min(size, 16384), ...shape.slice(1)],
          compression: "gzip" as const,
          compression_opts: gzipLevel,
        }
        : {}),
    });
  };
  perStep(file, "observations", dataset.observations, [size, observationDim], "<f");
  perStep(file, "actions", dataset.actions, [size, actionDim], "<f");
  perStep(file, "rewards", dataset.rewards, [size], "<f");
  perStep(file, "terminals", toInt8(dataset.terminals), [size], "<b");
  perStep(file, "timeouts", toInt8(dataset.timeouts), [size], "<b");
  if (dataset.nextObservations !== undefined) {
    perStep(file, "next_observations", dataset.nextObservations, [size, observationDim], "<f");
  }
  const infoNames = Object.keys(dataset.infos);
  if (infoNames.length > 0) {
    file.create_group("infos");
    for (const name of infoNames) {
      const info = dataset.infos[name];
      const group = ensureGroups(file, `infos/${name}`);
      const leaf = name.split("/").at(-1)!;
      const shape = info.width === 1 ? [size] : [size, info.width];
      perStep(group, leaf, info.data, shape, dtypeOf(info.data));
    }
  }
  const groupEntries = Object.entries(dataset.metadata).filter(([name]) => !name.startsWith("@"));
  if (groupEntries.length > 0) {
    writeMetadataGroup(file.create_group("metadata"), Object.fromEntries(groupEntries));
  }
  for (const [name, value] of Object.entries(dataset.metadata)) {
    if (!name.startsWith("@")) continue;
    const attribute = toStorable(value, `@${name.slice(1)}`);
    if (attribute === undefined) continue;
    file.create_attribute(name.slice(1), attribute.data, attribute.shape, attribute.dtype);
  }
}

function ensureGroups(root: H5Group, path: string): H5Group {
  let group = root;
  for (const part of path.split("/").slice(0, -1)) {
    const existing = group.keys().includes(part) ? group.get(part) : null;
    group = existing instanceof H5Group ? existing : group.create_group(part);
  }
  return group;
}

function writeMetadataGroup(group: H5Group, record: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(record)) {
    if (isPlainRecord(value)) {
      writeMetadataGroup(group.create_group(name), value);
      continue;
    }
    const storable = toStorable(value, `metadata/${name}`);
    if (storable === undefined) continue;
    group.create_dataset({
      name,
      data: storable.data,
      shape: storable.shape,
      dtype: storable.dtype,
    });
  }
}

interface Storable {
  data: InfoArray | string | string[] | number;
  shape: number[] | null;
  dtype: string | null;
}

/** How one metadata value is stored in HDF5; `undefined` and `null` are skipped. */
function toStorable(value: unknown, key: string): Storable | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return { data: value, shape: null, dtype: null };
  if (typeof value === "number") return { data: new Float64Array([value]), shape: [], dtype: "<d" };
  if (typeof value === "boolean") {
    return { data: new Int8Array([value ? 1 : 0]), shape: [], dtype: "<b" };
  }
  if (value instanceof ShapedArray) {
    return { data: value.data, shape: [...value.shape], dtype: dtypeOf(value.data) };
  }
  if (isNumericTypedArray(value)) {
    const data = toInfoArray(value);
    return { data, shape: [data.length], dtype: dtypeOf(data) };
  }
  if (Array.isArray(value) && value.every((item) => typeof item === "string")) {
    return { data: value as string[], shape: [value.length], dtype: null };
  }
  if (Array.isArray(value) && value.every((item) => typeof item === "number")) {
    return { data: Float64Array.from(value), shape: [value.length], dtype: "<d" };
  }
  throw new DatasetError(
    key,
    undefined,
    `metadata value ${
      JSON.stringify(value)?.slice(0, 80)
    } cannot be stored; expected a string, number, boolean, numeric array or record`,
  );
}

function dtypeOf(data: InfoArray): string {
  if (data instanceof Float32Array) return "<f";
  if (data instanceof Float64Array) return "<d";
  if (data instanceof Int32Array) return "<i";
  if (data instanceof Int8Array) return "<b";
  return "<B";
}

function toInt8(flags: Uint8Array): Int8Array {
  return new Int8Array(flags.buffer, flags.byteOffset, flags.length);
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !ArrayBuffer.isView(value) && !(value instanceof ShapedArray);
}

/**
 * The transitions of a dataset with D4RL's `qlearning_dataset` semantics:
 * s' is the next row (or `next_observations` when the file has them), done is
 * the terminal flag, the transition at a timeout is dropped (its next row
 * starts another episode), and so is the last row unless it is terminal.
 */
export function toTransitions(dataset: D4rlDataset): Transitions {
  const { size, observationDim, actionDim, terminals, timeouts } = dataset;
  const next = dataset.nextObservations;
  const kept = new Int32Array(size);
  let count = 0;
  for (let i = 0; i < size; i++) {
    if (timeouts[i]) continue;
    if (i === size - 1 && !terminals[i]) continue;
    kept[count++] = i;
  }
  const out = allocateTransitions(count, observationDim, actionDim);
  const { observations, actions, rewards, nextObservations, dones } = out;
  const source = next ?? dataset.observations;
  // Plain index loops: millions of rows, and a subarray per row would allocate each time.
  for (let k = 0; k < count; k++) {
    const i = kept[k];
    for (let j = 0; j < observationDim; j++) {
      observations[k * observationDim + j] = dataset.observations[i * observationDim + j];
    }
    for (let j = 0; j < actionDim; j++) {
      actions[k * actionDim + j] = dataset.actions[i * actionDim + j];
    }
    rewards[k] = dataset.rewards[i];
    dones[k] = terminals[i];
    // The last row is kept only when terminal; its s' is masked by done, so the row itself serves.
    const row = next !== undefined ? i : Math.min(i + 1, size - 1);
    for (let j = 0; j < observationDim; j++) {
      nextObservations[k * observationDim + j] = source[row * observationDim + j];
    }
  }
  return out;
}

/** Per-dimension mean and standard deviation of a dataset's observations (zero deviations become 1). */
export function observationStats(dataset: D4rlDataset): VectorStats {
  const { size, observationDim, observations } = dataset;
  const sum = new Float64Array(observationDim);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < observationDim; j++) sum[j] += observations[i * observationDim + j];
  }
  const mean = sum.map((total) => total / size);
  const squares = new Float64Array(observationDim);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < observationDim; j++) {
      const deviation = observations[i * observationDim + j] - mean[j];
      squares[j] += deviation * deviation;
    }
  }
  const std = squares.map((total) => {
    const deviation = Math.sqrt(total / size);
    return deviation > 1e-12 ? deviation : 1;
  });
  return { mean: Float32Array.from(mean), std: Float32Array.from(std) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
