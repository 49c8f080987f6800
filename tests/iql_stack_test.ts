import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { iql } from "../plugins/agents/iql.ts";
import { meanReturn, pointDataset, sampleBatch } from "./fixtures/agent_tasks.ts";
import {
  compareStackWithSingleAgents,
  pointContexts,
  testOnKernelSets,
} from "./fixtures/stack_checks.ts";

await initCompute("wasm");

const smallOptions = {
  hiddenDims: [32, 32],
  discount: 0.9,
  actorLearningRate: 1e-3,
  criticLearningRate: 1e-3,
  valueLearningRate: 1e-3,
  schedule: { trainingSteps: 20 },
};

testOnKernelSets("iql stack", (tolerance) => {
  compareStackWithSingleAgents(iql(smallOptions), [5, 6, 7], 5, tolerance);
  compareStackWithSingleAgents(iql(smallOptions), [11], 3, tolerance);
  compareStackWithSingleAgents(iql(smallOptions), [2, 3], 3, tolerance, 7);
});

Deno.test("iql stack: checks its members and batches", () => {
  const data = pointDataset(2, 1);
  const plugin = iql(smallOptions);
  assert.throws(
    () =>
      plugin.createStack!([...pointContexts([1], data), {
        ...pointContexts([2], data)[0],
        preset: "quick",
      }]),
    /members differ/,
  );
  const stack = plugin.createStack!(pointContexts([1, 2], data));
  const rng = new Rng(1);
  assert.throws(() => stack.update([sampleBatch(data, 8, rng)]), /1 batches for 2 members/);
  assert.throws(() => stack.member(-1), /member -1 does not exist/);
  stack.dispose();
});

Deno.test("iql stack: every member learns the point task, with falling critic losses and a flat tensor count", () => {
  const data = pointDataset(100, 7);
  const seeds = [1, 2];
  const stack = iql({ ...smallOptions, hiddenDims: [64, 64], schedule: { trainingSteps: 600 } })
    .createStack!(pointContexts(seeds, data));
  const rngs = seeds.map((_, k) => new Rng(5 + k));
  const losses: number[][] = seeds.map(() => []);
  let tensors = 0;
  for (let step = 0; step < stack.schedule.trainingSteps; step++) {
    const metrics = stack.update(rngs.map((rng) => sampleBatch(data, 64, rng)));
    metrics.forEach((m, k) => losses[k].push(m.criticLoss));
    if (step === 5) tensors = tf.memory().numTensors;
  }
  assert.equal(tf.memory().numTensors, tensors, "tensor count grew during training");
  const randomRng = new Rng(9);
  const random = meanReturn(() => [randomRng.range(-1, 1), randomRng.range(-1, 1)]);
  const mean = (values: number[]) => values.reduce((x, y) => x + y) / values.length;
  seeds.forEach((_, k) => {
    const [early, late] = [mean(losses[k].slice(0, 20)), mean(losses[k].slice(-50))];
    assert.ok(late < 0.5 * early, `member ${k}: critic loss fell only from ${early} to ${late}`);
    const member = stack.member(k);
    const learned = meanReturn((state) => member.act(state, 1, true));
    assert.ok(learned > random + 10, `member ${k}: learned return ${learned} vs random ${random}`);
  });
  stack.dispose();
});
