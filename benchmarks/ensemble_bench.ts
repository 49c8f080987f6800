/**
 * Cost of the PETS ensemble at HalfCheetah's sizes (17 + 6 → 17 + 1) with
 * OfflineRL-Kit's network (7 members, 4 × 200 swish): one training epoch of
 * 2,048 rows (8 batched gradient steps of 256 rows per member plus the
 * held-out pass), and one rollout step's prediction for 5,000 states.
 */
import { initCompute } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { parseEnsembleOptions, ProbabilisticEnsemble } from "../worldmodel/ensemble.ts";

await initCompute("wasm");

const inputDim = 23;
const outputDim = 18;
const rng = new Rng(0);
const rows = 2560;
const inputs = Float32Array.from({ length: rows * inputDim }, () => rng.normal());
const targets = Float32Array.from({ length: rows * outputDim }, () => rng.normal());
const options = parseEnsembleOptions({ maxEpochs: 1, maxHoldout: 512 });
const model = new ProbabilisticEnsemble(inputDim, outputDim, options, 1);
const states = 5000;
const rolloutInputs = Float32Array.from({ length: states * inputDim }, () => rng.normal());

Deno.bench(
  "ensemble fit: 1 epoch, 8 steps × 7 members × 256 rows, 4×200",
  { group: "ensemble" },
  () => {
    model.fit(inputs, targets, rows, { seed: 1 });
  },
);

Deno.bench("ensemble predict: 5,000 states × 7 members", { group: "ensemble" }, () => {
  model.predict(rolloutInputs, states);
});
