import assert from "node:assert/strict";
import {
  initCompute,
  type KernelSet,
  kernelSet,
  nativeKernelsAvailable,
  setKernelSet,
  tf,
} from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import type { AgentContext } from "../core/contracts/agent.ts";
import type { Transitions } from "../core/types.ts";
import { td3bc } from "../plugins/agents/td3_bc.ts";
import { meanReturn, pointDataset, sampleBatch, stats } from "./fixtures/agent_tasks.ts";

await initCompute("wasm");

const smallOptions = {
  hiddenDims: [32, 32],
  discount: 0.9,
  actorLearningRate: 1e-3,
  criticLearningRate: 1e-3,
};

function contextsOf(seeds: number[], data: Transitions): AgentContext[] {
  return seeds.map((seed) => ({
    observationDim: 2,
    actionDim: 2,
    seed,
    preset: "smoke",
    observationStats: stats(data),
  }));
}

/**
 * Member k of a stack against the single agent of seed k, on the same
 * batches: every step's losses and, after training, deterministic and noisy
 * actions, compared bit for bit.
 */
function compareWithSingleAgents(seeds: number[], steps: number, tolerance = 0): void {
  const data = pointDataset(20, 4);
  const plugin = td3bc(smallOptions);
  const contexts = contextsOf(seeds, data);
  const batchesOf = (k: number) => {
    const rng = new Rng(100 + k);
    return Array.from({ length: steps }, () => sampleBatch(data, 32, rng));
  };
  const batches = seeds.map((_, k) => batchesOf(k));
  const probe = data.observations.subarray(0, 2 * 16);

  const stack = plugin.createStack!(contexts);
  const stackLosses = Array.from(
    { length: steps },
    (_, step) => stack.update(batches.map((list) => list[step])),
  );
  const stackActions = seeds.map((_, k) => stack.member(k).act(probe, 16, true));
  const stackNoisy = seeds.map((_, k) => stack.member(k).act(probe, 16, false));
  stack.dispose();

  seeds.forEach((_, k) => {
    const agent = plugin.create(contexts[k]);
    const losses = batches[k].map((batch) => agent.update(batch));
    const actions = agent.act(probe, 16, true);
    const noisy = agent.act(probe, 16, false);
    agent.dispose();
    const same = (actual: unknown, expected: unknown, what: string) => {
      if (tolerance === 0) return assert.deepEqual(actual, expected, what);
      const [a, b] = [Object.values(actual as object), Object.values(expected as object)];
      assert.equal(a.length, b.length, what);
      a.forEach((value: number, i) =>
        assert.ok(
          Math.abs(value - b[i]) <= tolerance * Math.max(1, Math.abs(b[i])),
          `${what}: ${value} against ${b[i]}`,
        )
      );
    };
    losses.forEach((metrics, step) =>
      same(stackLosses[step][k], metrics, `member ${k}, step ${step + 1}: losses`)
    );
    same(stackActions[k], actions, `member ${k}: actions after ${steps} steps`);
    same(stackNoisy[k], noisy, `member ${k}: noisy actions (its own noise stream)`);
  });
}

// The fused network kernels (blas and wasm sets) run every member's products
// and reductions as the single agent does: bit-identical. TF.js's own kernels
// (the shipped set, as on the cpu and webgpu backends) fuse a single network's
// bias into its product but add a stack's separately: equal up to rounding.
const sets: [KernelSet, number][] = [
  ...(nativeKernelsAvailable() ? [["blas", 0] as [KernelSet, number]] : []),
  ["wasm", 0],
  ["shipped", 1e-5],
];

for (const [set, tolerance] of sets) {
  const property = tolerance === 0 ? "bit-identical to" : `within ${tolerance} (relative) of`;
  Deno.test(`td3bc stack [${set} kernels]: each member is ${property} its seed's agent alone`, () => {
    const active = kernelSet()!;
    setKernelSet(set);
    try {
      const before = tf.memory().numTensors;
      compareWithSingleAgents([5, 6, 7], 6, tolerance);
      compareWithSingleAgents([11], 4, tolerance);
      assert.equal(tf.memory().numTensors, before, "tensors left after dispose");
    } finally {
      setKernelSet(active);
    }
  });
}

Deno.test("td3bc stack: checks its members and batches", () => {
  const data = pointDataset(2, 1);
  const plugin = td3bc(smallOptions);
  assert.throws(
    () =>
      plugin.createStack!([...contextsOf([1], data), {
        ...contextsOf([2], data)[0],
        actionDim: 3,
      }]),
    /members differ/,
  );
  const stack = plugin.createStack!(contextsOf([1, 2], data));
  const rng = new Rng(1);
  assert.throws(() => stack.update([sampleBatch(data, 8, rng)]), /1 batches for 2 members/);
  assert.throws(
    () => stack.update([sampleBatch(data, 8, rng), sampleBatch(data, 4, rng)]),
    /differ in size/,
  );
  assert.throws(() => stack.member(2), /member 2 does not exist/);
  stack.dispose();
});

Deno.test("td3bc stack: every member learns the point task, with falling critic losses and a flat tensor count", () => {
  const data = pointDataset(100, 7);
  const seeds = [1, 2];
  const stack = td3bc({ ...smallOptions, hiddenDims: [64, 64] }).createStack!(
    contextsOf(seeds, data),
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
