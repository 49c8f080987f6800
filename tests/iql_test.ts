import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import type { Agent } from "../core/contracts/agent.ts";
import {
  actorLoss,
  criticLoss,
  iql,
  iqlHiddenDims,
  iqlSchedules,
  valueLoss,
} from "../plugins/agents/iql.ts";
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
  valueLearningRate: 1e-3,
};

Deno.test("iql options: paper defaults, schedules per preset, unknown keys named", () => {
  const plugin = iql();
  assert.equal(plugin.name, "iql");
  const o = plugin.options;
  assert.equal(o.hiddenDims, undefined);
  assert.deepEqual(iqlHiddenDims.paper, [256, 256]);
  assert.equal(o.actorLearningRate, 3e-4);
  assert.equal(o.adamEpsilon, 1e-5);
  assert.equal(o.discount, 0.99);
  assert.equal(o.tau, 0.005);
  assert.equal(o.expectile, 0.7);
  assert.equal(o.temperature, 3.0);
  assert.equal(o.maxAdvantageWeight, 100);
  assert.equal(o.logStdMin, -20);
  assert.equal(o.logStdMax, 2);
  assert.equal(iqlSchedules.paper.trainingSteps, 1_000_000);
  assert.equal(iqlSchedules.paper.evaluationEpisodes, 16);
  assert.throws(() => iql({ beta: 3 }), /iql options: unknown key 'beta'/);
  assert.throws(() => iql({ expectile: 1.5 }), /iql options\.expectile/);
  assert.throws(() => iql({ logStdMin: 3 }), /iql options\.logStdMin: logStdMin must be below/);
  const agent = iql({ schedule: { batchSize: 8 } }).create({
    observationDim: 3,
    actionDim: 1,
    seed: 0,
    preset: "quick",
  });
  assert.deepEqual(agent.schedule, { ...iqlSchedules.quick, batchSize: 8 });
  agent.dispose();
});

Deno.test("iql: the same seed gives the same losses and actions; dispose frees every tensor", () => {
  const data = pointDataset(10, 1);
  const before = tf.memory().numTensors;
  const run = () => {
    const agent = iql(smallOptions).create({
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

Deno.test("iql learns the point task from noisy demonstrations, with falling losses and flat tensor count", () => {
  const data = pointDataset(100, 7);
  const agent: Agent = iql({ ...smallOptions, schedule: { trainingSteps: 600 } }).create({
    observationDim: 2,
    actionDim: 2,
    seed: 1,
    preset: "smoke",
    observationStats: stats(data),
  });
  const rng = new Rng(5);
  const criticLosses: number[] = [];
  const valueLosses: number[] = [];
  let tensors = 0;
  for (let step = 0; step < agent.schedule.trainingSteps; step++) {
    const metrics = agent.update(sampleBatch(data, 64, rng));
    criticLosses.push(metrics.criticLoss);
    valueLosses.push(metrics.valueLoss);
    assert.ok(Number.isFinite(metrics.actorLoss));
    if (step === 5) tensors = tf.memory().numTensors;
  }
  assert.equal(tf.memory().numTensors, tensors, "tensor count grew during training");
  const mean = (values: number[]) => values.reduce((x, y) => x + y) / values.length;
  const [early, late] = [mean(criticLosses.slice(0, 20)), mean(criticLosses.slice(-50))];
  assert.ok(late < 0.5 * early, `critic loss fell only from ${early} to ${late}`);

  const randomRng = new Rng(9);
  const random = meanReturn(() => [randomRng.range(-1, 1), randomRng.range(-1, 1)]);
  const learned = meanReturn((state) => agent.act(state, 1, true));
  assert.ok(learned > random + 10, `learned return ${learned} vs random ${random}`);

  // Guidance view: the tanh-bounded mean and exp(log-std), the same for every state.
  const states = data.observations.subarray(0, 6);
  const distribution = agent.actionDistribution(states, 3);
  assert.deepEqual(distribution.mean, agent.act(states, 3, true));
  assert.ok(distribution.mean.every((m) => Math.abs(m) <= 1));
  const std = distribution.std;
  assert.ok(std.every((s) => s > 0 && s < 1), `std ${std} should shrink from 1 on demonstrations`);
  assert.deepEqual([...std.subarray(0, 2)], [...std.subarray(4, 6)]);
  agent.dispose();
});

Deno.test("iql beats a random policy on maze2d-umaze after brief training on a small collected dataset", async () => {
  const dataset = await maze2d().collect!({
    dataset: "maze2d-umaze",
    size: 20_000,
    seed: 0,
    preset: "smoke",
  });
  const data = toTransitions(dataset);
  const trainingSteps = 3000;
  // The actor's cosine decay spans the schedule's steps: train for exactly those.
  const options = { ...smallOptions, discount: 0.99, schedule: { trainingSteps } };
  const agent = iql(options).create({
    observationDim: 4,
    actionDim: 2,
    seed: 0,
    preset: "smoke",
    observationStats: observationStats(dataset),
  });
  const sampler = new BatchSampler(256, 4, 2, new Rng(1));
  for (let step = 0; step < agent.schedule.trainingSteps; step++) {
    agent.update(sampler.sample(data));
  }
  const rng = new Rng(3);
  const random = await mazeReturn(() => Float32Array.of(rng.range(-1, 1), rng.range(-1, 1)));
  const learned = await mazeReturn((observation) => agent.act(observation, 1, true));
  agent.dispose();
  assert.ok(learned > random + 7, `learned return ${learned} vs random ${random}`);
});

Deno.test("iql's value loss is the expectile loss: weight τ above zero, 1 − τ below", () => {
  const tau = 0.7;
  const u = [2, -1, 0.5, -3];
  const weights = [tau, 1 - tau, tau, 1 - tau];
  // The gradient is with respect to V, where u = Q̂ − V: ∂L/∂V = −2·w·u/n.
  const { loss, gradient } = valueLoss(tf.tensor2d(u, [4, 1]), tau);
  const expected = u.reduce((sum, x, i) => sum + weights[i] * x * x, 0) / 4;
  assert.ok(Math.abs(loss.dataSync()[0] - expected) < 1e-5);
  const g = gradient.dataSync();
  u.forEach((x, i) => assert.ok(Math.abs(g[i] + (2 * weights[i] * x) / 4) < 1e-5));
  tf.dispose([loss, gradient]);
});

Deno.test("iql's losses write out the gradients autodiff finds (eq. 5–7)", () => {
  const count = 6;
  const rng = new Rng(4);
  const random = (shape: number[], scale = 1) =>
    tf.tensor(
      Array.from({ length: shape.reduce((a, b) => a * b) }, () => scale * rng.normal()),
      shape,
    );
  const close = (actual: tf.Tensor, expected: tf.Tensor) => {
    const [a, e] = [actual.dataSync(), expected.dataSync()];
    assert.equal(a.length, e.length);
    a.forEach((v, i) => assert.ok(Math.abs(v - e[i]) < 1e-5, `${v} vs ${e[i]} at ${i}`));
  };
  tf.tidy(() => {
    // Value, eq. (5).
    const targetQ = random([count, 1]);
    const v = random([count, 1]);
    const value = valueLoss(tf.sub(targetQ, v), 0.7);
    // |τ − 1(u < 0)| is piecewise constant in V: taken outside the tape.
    const u0 = tf.sub(targetQ, v);
    const weight = tf.where(tf.less(u0, 0), tf.fill(u0.shape, 0.3), tf.fill(u0.shape, 0.7));
    const valueReference = tf.valueAndGrad((x: tf.Tensor) =>
      tf.mean(tf.mul(weight, tf.square(tf.sub(targetQ, x)))) as tf.Scalar
    )(v);
    close(value.loss, valueReference.value);
    close(value.gradient, valueReference.grad);
    // Critics, eq. (6): twin outputs against one target.
    const q = random([2, count, 1]);
    const target = random([count, 1]);
    const critic = criticLoss(q, target);
    const criticReference = tf.valueAndGrad((x: tf.Tensor) =>
      tf.mean(tf.square(tf.sub(x, target))) as tf.Scalar
    )(q);
    close(critic.loss, criticReference.value);
    close(critic.gradient, criticReference.grad);
    // Actor, eq. (7); the second log-std lies outside the clip range, so it gets no gradient.
    const net = random([count, 2]);
    const logStd = tf.tensor1d([-0.3, 2.5]);
    const actions = tf.clipByValue(random([count, 2], 0.5), -0.99, 0.99);
    const weights = tf.exp(random([count, 1], 0.5));
    const actor = actorLoss(net, logStd, actions, weights, [-20, 2]);
    const actorReference = tf.valueAndGrads((n: tf.Tensor, s: tf.Tensor) => {
      const std = tf.exp(tf.clipByValue(s, -20, 2));
      const z = tf.div(tf.sub(actions, tf.tanh(n)), std);
      const logProb = tf.sub(
        tf.sum(tf.mul(tf.square(z), -0.5), 1, true),
        tf.add(tf.sum(tf.log(std)), Math.log(2 * Math.PI)),
      );
      return tf.neg(tf.mean(tf.mul(weights, logProb))) as tf.Scalar;
    })([net, logStd]);
    close(actor.loss, actorReference.value);
    close(actor.netGradient, actorReference.grads[0]);
    close(actor.logStdGradient, actorReference.grads[1]);
    assert.equal(actor.logStdGradient.dataSync()[1], 0);
  });
});
