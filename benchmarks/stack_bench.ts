/**
 * Seeds as a batch dimension: the per-seed cost of a TD3+BC and an IQL update
 * when K seeds train as one stack (`createStack`, K = 1, 2, 4, 8), against
 * the single agent's update, on each kernel set that runs the fused networks
 * (`blas` where a library is found, `wasm`), beside the PyTorch TD3+BC anchor
 * (one seed, one thread; benchmarks/anchors.ts) timed in the same sitting.
 *
 * Sizes are the anchor's: observation 17, action 6, batch 256 per seed,
 * 256-256 networks. One timed call runs two updates of every member (for
 * TD3+BC one critic-only, one with the actor and targets, as the anchor
 * alternates), so a call's time divided by 2K is one seed's update.
 *
 *     PGD_ANCHOR_DIR=path/to/anchors deno bench --allow-all benchmarks/stack_bench.ts
 *
 * Environment: `PGD_STACK_SIZES` (default `1,2,4,8`); the anchor variables of
 * benchmarks/anchors.ts. At the end a table gives each per-seed median, its
 * ratio to the single agent on the same kernel set and to PyTorch, and the
 * same from the process's CPU time, which a shared machine's load disturbs
 * less than wall-clock time.
 *
 * @module
 */
import { fusedKernelSets, initCompute, type KernelSet, setKernelSet } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { randomAgentBatch } from "./random_batch.ts";
import type { AgentContext } from "../core/contracts/agent.ts";
import type { TransitionBatch } from "../core/types.ts";
import type { AgentPlugin } from "../core/contracts/agent.ts";
import { iql } from "../plugins/agents/iql.ts";
import { td3bc } from "../plugins/agents/td3_bc.ts";
import { type Anchor, anchorMs, explainAnchors, runAnchor } from "./anchors.ts";

const info = await initCompute("wasm");
const paths = fusedKernelSets();
const sizes = (Deno.env.get("PGD_STACK_SIZES") ?? "1,2,4,8").split(",").map(Number);
const [observationDim, actionDim, batchSize] = [17, 6, 256];

const anchor: Anchor = { script: "torch_td3bc_step.py", args: ["1"], runs: [] };
explainAnchors();
runAnchor(anchor);

function randomBatch(seed: number): TransitionBatch {
  return randomAgentBatch(new Rng(seed), batchSize, observationDim, actionDim);
}

const context = (seed: number): AgentContext => ({
  observationDim,
  actionDim,
  seed,
  preset: "paper",
});

/** Per-seed wall-clock and CPU milliseconds of each timed call, by bench name. */
const samples = new Map<string, { wall: number[]; cpu: number[] }>();
/** Bench names in table order, with their agent, kernel set and work. */
const rows: { agent: string; path: KernelSet; work: string; name: string }[] = [];

/**
 * Benches of `make`'s step, which updates `seeds` seeds twice per call: one
 * per pass, so that every configuration is timed early, midway and late in
 * the run, and a drifting load on a shared machine falls on all alike.
 */
function bench(
  agent: string,
  path: KernelSet,
  work: string,
  seeds: number,
  make: () => () => void,
): (pass: number) => void {
  const name = `${agent} ${work} [${path}]`;
  const times = { wall: [] as number[], cpu: [] as number[] };
  samples.set(name, times);
  rows.push({ agent, path, work, name });
  let step: (() => void) | undefined;
  return (pass: number) =>
    Deno.bench({
      name: `${name} (pass ${pass + 1})`,
      group: `${agent} per seed [${path}] (pass ${pass + 1})`,
      baseline: work === "single agent",
      n: Math.max(4, Math.ceil(24 / seeds)),
      warmup: 2,
      fn: () => {
        setKernelSet(path);
        step ??= make();
        // The process's CPU time beside the wall clock: on a shared machine
        // other processes' load stretches the second far more than the first.
        const cpuStart = process.cpuUsage();
        const start = performance.now();
        step();
        times.wall.push((performance.now() - start) / (2 * seeds));
        const cpu = process.cpuUsage(cpuStart);
        times.cpu.push((cpu.user + cpu.system) / 1000 / (2 * seeds));
      },
    });
}

const agents: [string, () => AgentPlugin][] = [["TD3+BC", () => td3bc()], ["IQL", () => iql()]];
const passes = 3;
const registrations: ((pass: number) => void)[] = [];
for (const [agent, plugin] of agents) {
  for (const path of paths) {
    registrations.push(bench(agent, path, "single agent", 1, () => {
      const single = plugin().create(context(1));
      const batch = randomBatch(1);
      return () => {
        single.update(batch);
        single.update(batch);
      };
    }));
    for (const k of sizes) {
      registrations.push(bench(agent, path, `stack of ${k}`, k, () => {
        const seeds = Array.from({ length: k }, (_, i) => i + 1);
        const stack = plugin().createStack!(seeds.map(context));
        const batches = seeds.map(randomBatch);
        return () => {
          stack.update(batches);
          stack.update(batches);
        };
      }));
    }
  }
}
for (let pass = 0; pass < passes; pass++) for (const register of registrations) register(pass);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const ratio = (value: number, reference: number | undefined) =>
  reference ? (value / reference).toFixed(2) : "-";

globalThis.addEventListener("unload", () => {
  runAnchor(anchor);
  const torch = anchorMs(anchor);
  const runs = anchor.runs.map((ms) => ms.toFixed(2)).join(", ") || "not run";
  const lines = [
    `compute path: ${info.path}`,
    `PyTorch TD3+BC update, one seed, one thread (runs: ${runs}): ${torch?.toFixed(2) ?? "-"} ms`,
    "agent | path | work | per-seed median ms | × single agent | × PyTorch TD3+BC | " +
    "per-seed CPU median ms | CPU × single agent",
  ];
  for (const row of rows) {
    const times = samples.get(row.name)!;
    const single = samples.get(`${row.agent} single agent [${row.path}]`)!;
    if (times.wall.length === 0 || single.wall.length === 0) continue;
    const [wall, cpu] = [median(times.wall), median(times.cpu)];
    const [singleWall, singleCpu] = [median(single.wall), median(single.cpu)];
    const versusTorch = row.agent === "TD3+BC" ? ratio(wall, torch) : "-";
    lines.push(
      `${row.agent} | ${row.path} | ${row.work} | ${wall.toFixed(2)} | ${
        ratio(wall, singleWall)
      } | ` +
        `${versusTorch} | ${cpu.toFixed(2)} | ${ratio(cpu, singleCpu)}`,
    );
  }
  console.log(lines.join("\n"));
});
