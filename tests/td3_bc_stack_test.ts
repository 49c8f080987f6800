import assert from "node:assert/strict";
import { initCompute } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { isStackRefusal } from "../core/contracts/agent.ts";
import { td3bc } from "../plugins/agents/td3_bc.ts";
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
  const options = { ...smallOptions, hiddenDims: [64, 64] };
  assertStackLearnsPointTask((contexts) => td3bc(options).createStack!(contexts), 600);
});
