/**
 * One agent update at the shape of the PyTorch TD3+BC anchor
 * (`torch_td3bc_step.py`; benchmarks/compute_bench.ts says how to run it):
 * observation 17, action 6, batch 256, 256-256 networks. The TD3+BC bench
 * alternates actor steps like the anchor (critics every step, actor and
 * targets every second step), so its mean is comparable with the anchor's.
 *
 * With `AGENTS_BENCH_ANCHOR=1` it first times updates the anchor's way
 * (50 warm-up updates, then the median over 5 repetitions of the mean of
 * 200 updates) and prints those medians, for a side-by-side ratio.
 */
import { initCompute } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { randomAgentBatch } from "./random_batch.ts";
import type { AgentPlugin } from "../core/contracts/agent.ts";
import type { TransitionBatch } from "../core/types.ts";
import { td3bc } from "../plugins/agents/td3_bc.ts";
import { iql } from "../plugins/agents/iql.ts";

const backend = (Deno.env.get("PGD_BACKEND") ?? "wasm") as "wasm" | "cpu";
await initCompute(backend);

const observationDim = 17;
const actionDim = 6;
const batchSize = 256;

function randomBatch(seed: number): TransitionBatch {
  return randomAgentBatch(new Rng(seed), batchSize, observationDim, actionDim);
}

function agentFor(plugin: AgentPlugin) {
  const agent = plugin.create({ observationDim, actionDim, seed: 0, preset: "paper" });
  const batch = randomBatch(1);
  for (let i = 0; i < 20; i++) agent.update(batch);
  return { agent, batch };
}

const td3 = agentFor(td3bc());
const iq = agentFor(iql());

/** The anchor's measure: median over 5 repetitions of the mean ms of 200 updates. */
function anchorMedian(agent: { update(batch: TransitionBatch): unknown }, batch: TransitionBatch) {
  for (let i = 0; i < 50; i++) agent.update(batch);
  const means: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const start = performance.now();
    for (let i = 0; i < 200; i++) agent.update(batch);
    means.push((performance.now() - start) / 200);
  }
  return means.sort((a, b) => a - b)[2];
}

if (Deno.env.get("AGENTS_BENCH_ANCHOR") === "1") {
  console.log(`td3bc_update_ms median=${anchorMedian(td3.agent, td3.batch).toFixed(3)}`);
  console.log(`iql_update_ms median=${anchorMedian(iq.agent, iq.batch).toFixed(3)}`);
}

Deno.bench("td3bc update (obs 17, act 6, batch 256; actor every 2nd step)", () => {
  td3.agent.update(td3.batch);
});

Deno.bench("iql update (obs 17, act 6, batch 256)", () => {
  iq.agent.update(iq.batch);
});

Deno.bench("td3bc act (16 observations, deterministic)", () => {
  td3.agent.act(td3.batch.observations.subarray(0, 16 * observationDim), 16, true);
});
