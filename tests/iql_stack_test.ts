import assert from "node:assert/strict";
import { initCompute } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { iql } from "../plugins/agents/iql.ts";
import { pointDataset, sampleBatch } from "./fixtures/agent_tasks.ts";
import {
  assertStackLearnsPointTask,
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
  const options = { ...smallOptions, hiddenDims: [64, 64], schedule: { trainingSteps: 600 } };
  assertStackLearnsPointTask((contexts) => iql(options).createStack!(contexts), 600);
});
