import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { isStackRefusal } from "../core/contracts/agent.ts";
import { td3bc } from "../plugins/agents/td3_bc.ts";
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
};

testOnKernelSets("td3bc stack", (tolerance) => {
  compareStackWithSingleAgents(td3bc(smallOptions), [5, 6, 7], 6, tolerance);
  compareStackWithSingleAgents(td3bc(smallOptions), [11], 4, tolerance);
  compareStackWithSingleAgents(td3bc(smallOptions), [2, 3], 4, tolerance, 7);
});

Deno.test("td3bc stack: checks its members and batches", () => {
  const data = pointDataset(2, 1);
  const plugin = td3bc(smallOptions);
  assert.throws(
    () =>
      plugin.createStack!([...pointContexts([1], data), {
        ...pointContexts([2], data)[0],
        actionDim: 3,
      }]),
    /members differ/,
  );
  const stack = plugin.createStack!(pointContexts([1, 2], data));
  const rng = new Rng(1);
  assert.throws(() => stack.update([sampleBatch(data, 8, rng)]), /1 batches for 2 members/);
  assert.throws(
    () => stack.update([sampleBatch(data, 8, rng), sampleBatch(data, 4, rng)]),
    /differ in size/,
  );
  assert.throws(() => stack.member(2), /member 2 does not exist/);
  stack.dispose();
  // A refusal the grid recognises, so it runs the seeds one at a time instead of failing them.
  assert.throws(
    () =>
      td3bc({ ...smallOptions, criticUpdatesPerStep: 2 }).createStack!(
        pointContexts([1, 2], data),
      ),
    (error) =>
      isStackRefusal(error) &&
      /criticUpdatesPerStep other than 1 runs unstacked only/.test(error.message),
  );
});

Deno.test("td3bc stack: every member learns the point task, with falling critic losses and a flat tensor count", () => {
  const data = pointDataset(100, 7);
  const seeds = [1, 2];
  const stack = td3bc({ ...smallOptions, hiddenDims: [64, 64] }).createStack!(
    pointContexts(seeds, data),
  );
  const rngs = seeds.map((_, k) => new Rng(5 + k));
  const losses: number[][] = seeds.map(() => []);
  let tensors = 0;
  for (let step = 0; step < 600; step++) {
    const metrics = stack.update(rngs.map((rng) => sampleBatch(data, 64, rng)));
    metrics.forEach((m, k) => losses[k].push(m.criticLoss));
    if (step === 5) tensors = tf.memory().numTensors;
  }
  assert.equal(tf.memory().numTensors, tensors, "tensor count grew during training");
  const randomRng = new Rng(9);
  const random = meanReturn(() => [randomRng.range(-1, 1), randomRng.range(-1, 1)]);
  seeds.forEach((_, k) => {
    const mean = (values: number[]) => values.reduce((x, y) => x + y) / values.length;
    const [early, late] = [mean(losses[k].slice(0, 20)), mean(losses[k].slice(-50))];
    assert.ok(late < 0.5 * early, `member ${k}: critic loss fell only from ${early} to ${late}`);
    const member = stack.member(k);
    const learned = meanReturn((state) => member.act(state, 1, true));
    assert.ok(learned > random + 10, `member ${k}: learned return ${learned} vs random ${random}`);
  });
  stack.dispose();
});
