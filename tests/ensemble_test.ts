import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { parseEnsembleOptions, ProbabilisticEnsemble } from "../worldmodel/ensemble.ts";

await initCompute("wasm");

/** y = A·x + noise with a known per-dimension noise std. */
function linearSystem(count: number, seed: number) {
  const rng = new Rng(seed);
  const inputDim = 3;
  const outputDim = 2;
  const matrix = [[1.5, -0.5, 0.2], [0.3, 0.8, -1.0]];
  const noiseStd = [0.1, 0.3];
  const inputs = new Float32Array(count * inputDim);
  const targets = new Float32Array(count * outputDim);
  const means = new Float32Array(count * outputDim);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < inputDim; j++) inputs[i * inputDim + j] = rng.normal();
    for (let o = 0; o < outputDim; o++) {
      let mean = 0;
      for (let j = 0; j < inputDim; j++) mean += matrix[o][j] * inputs[i * inputDim + j];
      means[i * outputDim + o] = mean;
      targets[i * outputDim + o] = mean + noiseStd[o] * rng.normal();
    }
  }
  return { inputs, targets, means, inputDim, outputDim, noiseStd, count };
}

const smallOptions = parseEnsembleOptions({
  hiddenSizes: [32, 32],
  weightDecays: [2.5e-5, 5e-5, 1e-4],
  batchSize: 64,
  maxEpochs: 40,
  patience: 40,
  learningRate: 3e-3,
});

Deno.test("ensemble fits a linear system: means close, variances near the true noise", () => {
  const train = linearSystem(3000, 1);
  const test = linearSystem(500, 2);
  const model = new ProbabilisticEnsemble(train.inputDim, train.outputDim, smallOptions, 7);
  const report = model.fit(train.inputs, train.targets, train.count, { seed: 3 });
  assert.ok(report.trainLoss.at(-1)! < report.trainLoss[0], "training loss falls");

  const tensorsBefore = tf.memory().numTensors;
  const prediction = model.predict(test.inputs, test.count);
  model.predict(test.inputs, test.count);
  assert.equal(tf.memory().numTensors, tensorsBefore, "predict leaks no tensors");

  for (const k of model.elites) {
    for (let o = 0; o < test.outputDim; o++) {
      let squaredError = 0;
      let variance = 0;
      for (let i = 0; i < test.count; i++) {
        const at = (k * test.count + i) * test.outputDim + o;
        squaredError += (prediction.mean[at] - test.means[i * test.outputDim + o]) ** 2;
        variance += prediction.variance[at];
      }
      const meanError = squaredError / test.count;
      const trueVariance = test.noiseStd[o] ** 2;
      const meanVariance = variance / test.count;
      // The mean's error is a small fraction of the noise; the variance is within a factor of 1.6.
      assert.ok(meanError < 0.25 * trueVariance, `member ${k} dim ${o}: mean MSE ${meanError}`);
      assert.ok(
        meanVariance > trueVariance / 1.6 && meanVariance < trueVariance * 1.6,
        `member ${k} dim ${o}: predicted variance ${meanVariance}, true ${trueVariance}`,
      );
    }
  }
  model.dispose();
});

Deno.test("elites are the members with the lowest held-out error", () => {
  const data = linearSystem(600, 4);
  const model = new ProbabilisticEnsemble(
    data.inputDim,
    data.outputDim,
    { ...smallOptions, maxEpochs: 3 },
    11,
  );
  const report = model.fit(data.inputs, data.targets, data.count, { seed: 5 });
  assert.equal(report.elites.length, smallOptions.eliteCount);
  const worstElite = Math.max(...report.elites.map((k) => report.holdoutMse[k]));
  for (let k = 0; k < model.size; k++) {
    if (!report.elites.includes(k)) assert.ok(report.holdoutMse[k] >= worstElite);
  }
  model.dispose();
});

Deno.test("snapshot and restore give identical predictions; training leaks no tensors", () => {
  const data = linearSystem(400, 6);
  const before = tf.memory().numTensors;
  const model = new ProbabilisticEnsemble(
    data.inputDim,
    data.outputDim,
    { ...smallOptions, maxEpochs: 2 },
    12,
  );
  const afterCreate = tf.memory().numTensors;
  model.fit(data.inputs, data.targets, data.count, { seed: 1 });
  assert.equal(tf.memory().numTensors, afterCreate, "fit leaks no tensors");
  const restored = ProbabilisticEnsemble.restore(model.snapshot());
  assert.deepEqual(restored.elites, model.elites);
  assert.deepEqual(
    restored.predict(data.inputs.subarray(0, 30), 10).mean,
    model.predict(data.inputs.subarray(0, 30), 10).mean,
  );
  model.dispose();
  restored.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("bad options and inputs give clear errors", () => {
  assert.throws(() => parseEnsembleOptions({ eliteCount: 9 }), /ensemble\.eliteCount/);
  assert.throws(() => parseEnsembleOptions({ hiddenSizes: [8] }), /ensemble\.weightDecays/);
  const model = new ProbabilisticEnsemble(2, 1, smallOptions, 0);
  assert.throws(() => model.predict(new Float32Array(3), 2), /expected 2 × 2/);
  model.dispose();
});
