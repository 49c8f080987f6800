import assert from "node:assert/strict";
import type { D4rlDataset } from "../core/types.ts";
import {
  cacheKey,
  datasetFingerprint,
  decodeDenoiser,
  encodeDenoiser,
  loadDenoiser,
  produceOnce,
  saveDenoiser,
  type StoredDenoiser,
} from "../diffusion/cache.ts";

const model: StoredDenoiser = {
  config: { rowWidth: 3, features: 8, numBlocks: 1, trajectoryLength: 4 },
  stats: { mean: Float32Array.from([1, 2, 3]), std: Float32Array.from([1, 0.5, 2]) },
  history: [{ step: 0, trainLoss: NaN, validationLoss: 1.5 }, {
    step: 10,
    trainLoss: 0.9,
    validationLoss: 0.8,
  }],
  params: {
    "a.w": { shape: [2, 3], values: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    "a.b": { shape: [3], values: Float32Array.from([-1, 0.5, 7]) },
  },
};

Deno.test("a stored denoiser reads back exactly", async () => {
  const folder = await Deno.makeTempDir();
  const path = `${folder}/models/m.bin`;
  await saveDenoiser(path, model);
  const back = await loadDenoiser(path);
  assert.ok(back);
  assert.deepEqual(back.config, model.config);
  assert.deepEqual(back.stats, model.stats);
  assert.deepEqual(back.params, model.params);
  assert.ok(Number.isNaN(back.history[0].trainLoss));
  assert.equal(back.history[1].validationLoss, 0.8);
  // The atomic write leaves only the final file behind.
  assert.deepEqual([...Deno.readDirSync(`${folder}/models`)].map((e) => e.name), ["m.bin"]);
  assert.equal(await loadDenoiser(`${folder}/absent.bin`), undefined);
  await Deno.remove(folder, { recursive: true });
});

Deno.test("a damaged cache file gives an error naming the file", () => {
  const bytes = encodeDenoiser(model);
  assert.throws(
    () => decodeDenoiser(bytes.subarray(0, bytes.length - 4), "m.bin"),
    /m\.bin: parameter 'a\.b' runs past/,
  );
  assert.throws(() => decodeDenoiser(bytes.subarray(0, 2), "x.bin"), /x\.bin: file too short/);
});

Deno.test("cache keys ignore key order and change with content", async () => {
  assert.equal(
    await cacheKey({ a: 1, b: { c: 2, d: 3 } }),
    await cacheKey({ b: { d: 3, c: 2 }, a: 1 }),
  );
  assert.notEqual(await cacheKey({ a: 1 }), await cacheKey({ a: 2 }));
  const dataset: D4rlDataset = {
    size: 2,
    observationDim: 1,
    actionDim: 1,
    observations: Float32Array.from([0, 1]),
    actions: Float32Array.from([0, 0]),
    rewards: Float32Array.from([0, 0]),
    terminals: Uint8Array.from([0, 0]),
    timeouts: Uint8Array.from([0, 1]),
    infos: {},
    metadata: {},
  };
  const first = await datasetFingerprint(dataset);
  dataset.rewards[1] = 1;
  assert.notEqual(await datasetFingerprint(dataset), first);
});

Deno.test("concurrent makers of one artefact make it once; a stale lock is taken over", async () => {
  const folder = await Deno.makeTempDir();
  const path = `${folder}/model.bin`;
  let makes = 0;
  const load = async () => (await loadDenoiser(path)) ?? undefined;
  const make = async (heartbeat: () => void) => {
    makes++;
    heartbeat();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await saveDenoiser(path, model);
    return model;
  };
  const lockOptions = { staleMs: 60_000, pollMs: 10 };
  const results = await Promise.all([
    produceOnce(path, load, make, lockOptions),
    produceOnce(path, load, make, lockOptions),
    produceOnce(path, load, make, lockOptions),
  ]);
  assert.equal(makes, 1);
  for (const result of results) assert.deepEqual(result.params, model.params);
  assert.deepEqual([...Deno.readDirSync(folder)].map((e) => e.name), ["model.bin"]);

  // A lock whose holder died long ago does not block forever.
  const other = `${folder}/other.bin`;
  await Deno.writeTextFile(`${other}.lock`, "");
  const old = new Date(Date.now() - 120_000);
  await Deno.utime(`${other}.lock`, old, old);
  const made = await produceOnce(other, () => loadDenoiser(other), async () => {
    await saveDenoiser(other, model);
    return model;
  }, lockOptions);
  assert.deepEqual(made.config, model.config);
  await Deno.remove(folder, { recursive: true });
});
