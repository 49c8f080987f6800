import assert from "node:assert/strict";
import { File as H5File, ready as h5wasmReady } from "h5wasm/node";
import {
  DatasetError,
  observationStats,
  readD4rl,
  ShapedArray,
  toTransitions,
  validateD4rl,
  writeD4rl,
} from "../core/d4rl.ts";
import type { D4rlDataset } from "../core/types.ts";

const fixtures = new URL("./fixtures/", import.meta.url).pathname;
/** The error an async call rejects with, checked to be an instance of `type`. */
async function rejection<E extends Error>(
  run: () => Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  try {
    await run();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    return error;
  }
  throw new assert.AssertionError({ message: `expected a rejection with ${type.name}` });
}

/** The error a call throws, checked to be an instance of `type`. */
function thrown<E extends Error>(run: () => unknown, type: new (...args: never[]) => E): E {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be thrown` });
}

const maze2dFixture = `${fixtures}maze2d_tiny.hdf5`;
const locomotionFixture = `${fixtures}locomotion_tiny.hdf5`;

/** Writes a file with h5wasm from a key → [data, shape, dtype] table, for malformed-file tests. */
async function writeRaw(
  path: string,
  entries: Record<string, [ArrayLike<number>, number[], string]>,
): Promise<void> {
  await h5wasmReady;
  const file = new H5File(path, "w");
  try {
    for (const [name, [data, shape, dtype]] of Object.entries(entries)) {
      const typed = dtype === "<d"
        ? Float64Array.from(data)
        : dtype === "<b"
        ? Int8Array.from(data)
        : Float32Array.from(data);
      file.create_dataset({ name, data: typed, shape, dtype });
    }
  } finally {
    file.close();
  }
}

/** A valid raw layout of `rows` steps with 3-wide observations and 2-wide actions. */
function validEntries(rows: number): Record<string, [ArrayLike<number>, number[], string]> {
  return {
    observations: [Array.from({ length: rows * 3 }, (_, i) => i / 10), [rows, 3], "<f"],
    actions: [Array.from({ length: rows * 2 }, (_, i) => (i % 5) / 5 - 0.5), [rows, 2], "<f"],
    rewards: [Array.from({ length: rows }, (_, i) => i), [rows], "<f"],
    terminals: [new Array(rows).fill(0), [rows], "<b"],
    timeouts: [new Array(rows).fill(0), [rows], "<b"],
  };
}

async function expectDatasetError(path: string, key: string | undefined, pattern: RegExp) {
  const error = await rejection(() => readD4rl(path), DatasetError);
  assert.deepStrictEqual(error.file, path);
  assert.deepStrictEqual(error.key, key);
  assert.ok(error.message.includes(path), `message names the file: ${error.message}`);
  assert.ok(
    pattern.test(error.message),
    `message ${JSON.stringify(error.message)} matches ${pattern}`,
  );
}

Deno.test("reads an h5py-written maze2d file in D4RL's layout", async () => {
  const dataset = await readD4rl(maze2dFixture);
  assert.deepStrictEqual([dataset.size, dataset.observationDim, dataset.actionDim], [25, 4, 2]);
  assert.ok(dataset.observations instanceof Float32Array);
  assert.ok(dataset.terminals instanceof Uint8Array);
  assert.deepStrictEqual(Array.from(dataset.terminals), new Array(25).fill(0));
  assert.deepStrictEqual(dataset.timeouts.reduce((sum, flag) => sum + flag, 0), 1);
  assert.deepStrictEqual(dataset.timeouts[9], 1);
  assert.deepStrictEqual(Object.keys(dataset.infos).sort(), ["goal", "qpos", "qvel"]);
  assert.ok(dataset.infos.qpos.data instanceof Float64Array, "infos/qpos keeps float64");
  assert.deepStrictEqual(dataset.infos.qpos.width, 2);
  assert.deepStrictEqual(dataset.infos.goal.width, 2);
  // Observations are (qpos, qvel) stored as float32: the two must agree to float32 precision.
  for (let i = 0; i < dataset.size; i++) {
    const stored = dataset.observations[i * 4 + 1];
    const exact: number = Number(dataset.infos.qpos.data[i * 2 + 1]);
    assert.ok(Math.abs(stored - exact) < 1e-5, `row ${i}: ${stored} vs ${exact}`);
  }
  assert.deepStrictEqual(dataset.metadata["@env_name"], "maze2d-umaze-v1");
  assert.deepStrictEqual(dataset.metadata.algorithm, "waypoint-controller");
  assert.deepStrictEqual(dataset.metadata.iteration, 3);
  assert.deepStrictEqual(dataset.metadata.discount, 0.99);
  const policy = dataset.metadata.policy as Record<string, unknown>;
  assert.deepStrictEqual(policy.nonlinearity, "relu");
  const weight = (policy.fc0 as Record<string, unknown>).weight;
  assert.ok(weight instanceof ShapedArray);
  assert.deepStrictEqual(weight.shape, [2, 3]);
  assert.deepStrictEqual(Array.from(weight.data), [0, 1, 2, 3, 4, 5]);
});

Deno.test("reads float64 observations and next_observations (MuJoCo v2 style)", async () => {
  const dataset = await readD4rl(locomotionFixture);
  assert.deepStrictEqual([dataset.size, dataset.observationDim, dataset.actionDim], [12, 3, 2]);
  assert.ok(dataset.observations instanceof Float32Array);
  assert.ok(dataset.nextObservations instanceof Float32Array);
  assert.deepStrictEqual(dataset.metadata.algorithm, "SAC");
  const transitions = toTransitions(dataset);
  // No timeouts and a terminal last row: every row is a transition, s' from next_observations.
  assert.deepStrictEqual(transitions.size, 12);
  assert.deepStrictEqual(Array.from(transitions.dones).flatMap((d, i) => d ? [i] : []), [4, 11]);
  assert.deepStrictEqual(
    Array.from(transitions.nextObservations.subarray(5 * 3, 6 * 3)),
    Array.from(dataset.nextObservations!.subarray(5 * 3, 6 * 3)),
  );
});

Deno.test("toTransitions takes s' from the next row and drops timeouts and an open last row", async () => {
  const dataset = await readD4rl(maze2dFixture);
  const transitions = toTransitions(dataset);
  assert.deepStrictEqual(transitions.size, 23);
  assert.deepStrictEqual(Array.from(transitions.dones), new Array(23).fill(0));
  const row = (array: Float32Array, i: number) => Array.from(array.subarray(i * 4, i * 4 + 4));
  // Transitions 0..8 are rows 0..8; row 9 (timeout) is gone, so transition 9 is row 10.
  assert.deepStrictEqual(row(transitions.observations, 3), row(dataset.observations, 3));
  assert.deepStrictEqual(row(transitions.nextObservations, 3), row(dataset.observations, 4));
  assert.deepStrictEqual(row(transitions.observations, 9), row(dataset.observations, 10));
  assert.deepStrictEqual(row(transitions.nextObservations, 9), row(dataset.observations, 11));
  assert.deepStrictEqual(row(transitions.nextObservations, 22), row(dataset.observations, 24));
  assert.deepStrictEqual(transitions.rewards[9], dataset.rewards[10]);
});

Deno.test("a terminal last row is kept with done = 1; terminals and timeouts end episodes", () => {
  const dataset: D4rlDataset = {
    size: 4,
    observationDim: 1,
    actionDim: 1,
    observations: Float32Array.from([0, 1, 2, 3]),
    actions: Float32Array.from([0, 0.1, 0.2, 0.3]),
    rewards: Float32Array.from([1, 2, 3, 4]),
    terminals: Uint8Array.from([0, 1, 0, 1]),
    timeouts: Uint8Array.from([0, 0, 0, 0]),
    infos: {},
    metadata: {},
  };
  const transitions = toTransitions(dataset);
  assert.deepStrictEqual(transitions.size, 4);
  assert.deepStrictEqual(Array.from(transitions.dones), [0, 1, 0, 1]);
  assert.deepStrictEqual(Array.from(transitions.nextObservations), [1, 2, 3, 3]);
});

Deno.test("write → read round trip keeps every array, info and metadata", async () => {
  const folder = await Deno.makeTempDir();
  try {
    const original = await readD4rl(maze2dFixture);
    for (const gzipLevel of [0, 4]) {
      const path = `${folder}/roundtrip-${gzipLevel}.hdf5`;
      await writeD4rl(path, original, { gzipLevel });
      const copy = await readD4rl(path);
      assert.deepStrictEqual(copy.size, original.size);
      assert.deepStrictEqual(copy.observations, original.observations);
      assert.deepStrictEqual(copy.actions, original.actions);
      assert.deepStrictEqual(copy.rewards, original.rewards);
      assert.deepStrictEqual(copy.terminals, original.terminals);
      assert.deepStrictEqual(copy.timeouts, original.timeouts);
      assert.deepStrictEqual(copy.infos, original.infos);
      assert.deepStrictEqual(copy.metadata, original.metadata);
    }
    const locomotion = await readD4rl(locomotionFixture);
    await writeD4rl(`${folder}/locomotion.hdf5`, locomotion);
    const copy = await readD4rl(`${folder}/locomotion.hdf5`);
    assert.deepStrictEqual(copy.nextObservations, locomotion.nextObservations);
    // Only the final files remain: the temporary files were renamed into place.
    const names = [];
    for await (const entry of Deno.readDir(folder)) names.push(entry.name);
    assert.deepStrictEqual(names.sort(), [
      "locomotion.hdf5",
      "roundtrip-0.hdf5",
      "roundtrip-4.hdf5",
    ]);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("a missing file, a non-HDF5 file and a truncated file each give a DatasetError", async () => {
  const folder = await Deno.makeTempDir();
  try {
    await expectDatasetError(`${folder}/absent.hdf5`, undefined, /not found/);
    await Deno.writeTextFile(`${folder}/text.hdf5`, "observations,actions\n1,2\n");
    await expectDatasetError(`${folder}/text.hdf5`, undefined, /not an HDF5 file/);
    const bytes = await Deno.readFile(maze2dFixture);
    await Deno.writeFile(`${folder}/truncated.hdf5`, bytes.subarray(0, 1500));
    await expectDatasetError(
      `${folder}/truncated.hdf5`,
      undefined,
      /truncated: its HDF5 superblock says \d+ bytes, the file has 1500/,
    );
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("a missing key, wrong shapes, NaN/Inf and non-flag values each give a DatasetError", async () => {
  const folder = await Deno.makeTempDir();
  try {
    const cases: [string, (entries: ReturnType<typeof validEntries>) => void, string, RegExp][] = [
      [
        "missing-timeouts",
        (e) => delete (e as Record<string, unknown>).timeouts,
        "timeouts",
        /missing/,
      ],
      [
        "short-actions",
        (e) => {
          e.actions = [new Array(8).fill(0), [4, 2], "<f"];
        },
        "actions",
        /4 rows; expected 5/,
      ],
      [
        "flat-observations",
        (e) => {
          e.observations = [new Array(5).fill(0), [5], "<f"];
        },
        "observations",
        /expected 2-D/,
      ],
      [
        "nan-observation",
        (e) => {
          const values = Array.from({ length: 15 }, (_, i) => i);
          values[7] = NaN;
          e.observations = [values, [5, 3], "<f"];
        },
        "observations",
        /row 2, column 1 is NaN/,
      ],
      [
        "inf-reward",
        (e) => {
          e.rewards = [[0, 0, Infinity, 0, 0], [5], "<d"];
        },
        "rewards",
        /row 2 is Infinity/,
      ],
      [
        "two-terminal",
        (e) => {
          e.terminals = [[0, 2, 0, 0, 0], [5], "<b"];
        },
        "terminals",
        /row 1 is 2; expected 0 or 1/,
      ],
      [
        "wide-rewards",
        (e) => {
          e.rewards = [new Array(10).fill(0), [5, 2], "<f"];
        },
        "rewards",
        /expected 1-D/,
      ],
    ];
    for (const [name, corrupt, key, pattern] of cases) {
      const entries = validEntries(5);
      corrupt(entries);
      const path = `${folder}/${name}.hdf5`;
      await writeRaw(path, entries);
      await expectDatasetError(path, key, pattern);
    }
    // The untouched layout reads fine, so each case above fails for its own reason.
    await writeRaw(`${folder}/valid.hdf5`, validEntries(5));
    assert.deepStrictEqual((await readD4rl(`${folder}/valid.hdf5`)).size, 5);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("validateD4rl checks lengths, widths and flags of an in-memory dataset", async () => {
  const dataset = await readD4rl(maze2dFixture);
  validateD4rl(dataset, "memory");
  const shortRewards = { ...dataset, rewards: dataset.rewards.subarray(1) };
  const error = thrown(() => validateD4rl(shortRewards, "memory"), DatasetError);
  assert.deepStrictEqual(error.key, "rewards");
  const badInfo = { ...dataset, infos: { goal: { data: new Float32Array(7), width: 2 } } };
  assert.deepStrictEqual(
    thrown(() => validateD4rl(badInfo, "memory"), DatasetError).key,
    "infos/goal",
  );
  const badFlags = { ...dataset, timeouts: new Uint8Array(25).fill(3) };
  assert.deepStrictEqual(
    thrown(() => validateD4rl(badFlags, "memory"), DatasetError).key,
    "timeouts",
  );
  await rejection(() => writeD4rl("/nonexistent-folder/x.hdf5", dataset), DatasetError);
});

Deno.test("observationStats gives per-dimension mean and std, with constant dimensions at std 1", () => {
  const dataset: D4rlDataset = {
    size: 4,
    observationDim: 2,
    actionDim: 1,
    observations: Float32Array.from([1, 5, 3, 5, 5, 5, 7, 5]),
    actions: new Float32Array(4),
    rewards: new Float32Array(4),
    terminals: new Uint8Array(4),
    timeouts: new Uint8Array(4),
    infos: {},
    metadata: {},
  };
  const stats = observationStats(dataset);
  assert.deepStrictEqual(Array.from(stats.mean), [4, 5]);
  assert.ok(Math.abs(stats.std[0] - Math.sqrt(5)) < 1e-6);
  assert.deepStrictEqual(stats.std[1], 1);
});
