import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import type { Agent } from "../core/contracts/agent.ts";
import { lambdaScaledQ, td3bc, td3bcHiddenDims, td3bcSchedules } from "../plugins/agents/td3_bc.ts";
import { maze2d } from "../plugins/envs/maze2d.ts";
import { observationStats, toTransitions } from "../core/d4rl.ts";
import { BatchSampler } from "../core/transitions.ts";
import {
  mazeReturn,
  meanReturn,
  pointDataset,
  sampleBatch,
  stats,
} from "./fixtures/agent_tasks.ts";

await initCompute("wasm");

const smallOptions = {
  hiddenDims: [64, 64],
  discount: 0.9,
  actorLearningRate: 1e-3,
  criticLearningRate: 1e-3,
};

Deno.test("td3bc options: paper defaults, schedules per preset, unknown keys named", () => {
  const plugin = td3bc();
  assert.equal(plugin.name, "td3bc");
  const o = plugin.options;
  assert.equal(o.hiddenDims, undefined);
  assert.deepEqual(td3bcHiddenDims.paper, [256, 256]);
  assert.equal(o.actorLearningRate, 3e-4);
  assert.equal(o.adamEpsilon, 1e-5);
  assert.equal(o.discount, 0.99);
  assert.equal(o.tau, 0.005);
  assert.equal(o.alpha, 2.5);
  assert.equal(o.policyNoise, 0.2);
  assert.equal(o.noiseClip, 0.5);
  assert.equal(o.policyFrequency, 2);
  assert.equal(td3bcSchedules.paper.trainingSteps, 1_000_000);
  assert.equal(td3bcSchedules.paper.evaluationEpisodes, 16);
  assert.equal(td3bcSchedules.paper.batchSize, 256);
  assert.throws(() => td3bc({ alpah: 2 }), /td3bc options: unknown key 'alpah'/);
  assert.throws(() => td3bc({ discount: 2 }), /td3bc options\.discount/);
  assert.throws(
    () => td3bc({ schedule: { steps: 3 } }),
    /td3bc options\.schedule: unknown key 'steps'/,
  );
  const agent = td3bc({ schedule: { trainingSteps: 7 } }).create({
    observationDim: 3,
    actionDim: 1,
    seed: 0,
    preset: "smoke",
  });
  assert.deepEqual(agent.schedule, { ...td3bcSchedules.smoke, trainingSteps: 7 });
  agent.dispose();
});

Deno.test("td3bc: the same seed gives the same losses and actions; dispose frees every tensor", () => {
  const data = pointDataset(10, 1);
  const before = tf.memory().numTensors;
  const run = () => {
    const agent = td3bc(smallOptions).create({
      observationDim: 2,
      actionDim: 2,
      seed: 42,
      preset: "smoke",
    });
    const rng = new Rng(3);
    const losses = [];
    for (let i = 0; i < 5; i++) losses.push(agent.update(sampleBatch(data, 32, rng)));
    const actions = agent.act(data.observations.subarray(0, 8), 4, true);
    const noisy = agent.act(data.observations.subarray(0, 8), 4, false);
    agent.dispose();
    return { losses, actions, noisy };
  };
  const a = run();
  const b = run();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.actions, a.noisy);
  assert.equal(tf.memory().numTensors, before, "tensors left after dispose");
});

Deno.test("td3bc learns the point task from noisy demonstrations, with a falling critic loss and flat tensor count", () => {
  const data = pointDataset(100, 7);
  const agent: Agent = td3bc(smallOptions).create({
    observationDim: 2,
    actionDim: 2,
    seed: 1,
    preset: "smoke",
    observationStats: stats(data),
  });
  const rng = new Rng(5);
  const criticLosses: number[] = [];
  let tensors = 0;
  for (let step = 0; step < 600; step++) {
    const metrics = agent.update(sampleBatch(data, 64, rng));
    criticLosses.push(metrics.criticLoss);
    assert.ok(Number.isFinite(metrics.actorLoss) && Number.isFinite(metrics.bcLoss));
    if (step === 5) tensors = tf.memory().numTensors;
  }
  assert.equal(tf.memory().numTensors, tensors, "tensor count grew during training");
  const early = criticLosses.slice(0, 20).reduce((x, y) => x + y) / 20;
  const late = criticLosses.slice(-50).reduce((x, y) => x + y) / 50;
  assert.ok(late < 0.5 * early, `critic loss fell only from ${early} to ${late}`);

  const randomRng = new Rng(9);
  const random = meanReturn(() => [randomRng.range(-1, 1), randomRng.range(-1, 1)]);
  const learned = meanReturn((state) => agent.act(state, 1, true));
  assert.ok(learned > random + 10, `learned return ${learned} vs random ${random}`);

  // Guidance view: mean π(s) with unit std.
  const states = data.observations.subarray(0, 6);
  const distribution = agent.actionDistribution(states, 3);
  assert.deepEqual(distribution.mean, agent.act(states, 3, true));
  assert.deepEqual([...distribution.std], [1, 1, 1, 1, 1, 1]);
  agent.dispose();
});

Deno.test("td3bc beats a random policy on maze2d-umaze after brief training on a small collected dataset", async () => {
  const dataset = await maze2d().collect!({
    dataset: "maze2d-umaze",
    size: 20_000,
    seed: 0,
    preset: "smoke",
  });
  const data = toTransitions(dataset);
  const options = { ...smallOptions, discount: 0.99 };
  const agent = td3bc(options).create({
    observationDim: 4,
    actionDim: 2,
    seed: 0,
    preset: "smoke",
    observationStats: observationStats(dataset),
  });
  const sampler = new BatchSampler(256, 4, 2, new Rng(1));
  for (let step = 0; step < 3000; step++) agent.update(sampler.sample(data));
  const rng = new Rng(3);
  const random = await mazeReturn(() => Float32Array.of(rng.range(-1, 1), rng.range(-1, 1)));
  const learned = await mazeReturn((observation) => agent.act(observation, 1, true));
  agent.dispose();
  assert.ok(learned > random + 10, `learned return ${learned} vs random ${random}`);
});

Deno.test("td3bc's Q term: −λ·mean Q₁ with λ = α/mean|Q₁| held constant", () => {
  const q = tf.tensor2d([[1.5], [-0.5], [2.0]]);
  const meanAbs = (1.5 + 0.5 + 2.0) / 3;
  const lambda = 2.5 / meanAbs;
  const { value, grads } = tf.valueAndGrads((x: tf.Tensor) => lambdaScaledQ(x, 2.5))([q]);
  assert.ok(Math.abs(value.dataSync()[0] - -lambda * (3.0 / 3)) < 1e-5);
  // No gradient through λ: d/dQ₁ᵢ = −λ/n for every sample.
  const expected = [-lambda / 3, -lambda / 3, -lambda / 3];
  const actual = grads[0].dataSync();
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i] - e) < 1e-5, `${actual} vs ${expected}`));
  tf.dispose([q, value, ...grads]);
});

Deno.test("td3bc criticUpdatesPerStep: one step of 2 critic updates is two CORL steps on the same batch", () => {
  const data = pointDataset(10, 1);
  const batches = (() => {
    const rng = new Rng(5);
    return [0, 1, 2].map(() => sampleBatch(data, 32, rng));
  })();
  const create = (options: Record<string, unknown>) =>
    td3bc({ ...smallOptions, ...options }).create({
      observationDim: 2,
      actionDim: 2,
      seed: 11,
      preset: "smoke",
    });
  const probe = data.observations.subarray(0, 16);
  const before = tf.memory().numTensors;
  // The authors' step: 2 critic updates (fresh smoothing noise each), then the actor.
  const authors = create({ criticUpdatesPerStep: 2, policyFrequency: 1 });
  // CORL's count: every update is one critic update, the actor on every 2nd.
  const corl = create({ criticUpdatesPerStep: 1, policyFrequency: 2 });
  const once = create({ criticUpdatesPerStep: 1, policyFrequency: 1 });
  for (const batch of batches) {
    authors.update(batch);
    corl.update(batch);
    corl.update(batch);
    once.update(batch);
  }
  const authorsActions = authors.act(probe, 8, true);
  assert.deepEqual(authorsActions, corl.act(probe, 8, true));
  // The count matters: one critic update per actor update gives other parameters.
  assert.notDeepEqual(authorsActions, once.act(probe, 8, true));
  for (const agent of [authors, corl, once]) agent.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors left after dispose");
  assert.throws(() => td3bc({ criticUpdatesPerStep: 0 }), /td3bc options\.criticUpdatesPerStep/);
});
