/**
 * The denoiser's training step at the `quick` preset's sizes (features 64,
 * two levels, batch 64, length 16, maze2d's rows of 8), through the
 * trainer's own code (`DenoiserTrainer.step` in diffusion/train.ts: the EDM
 * loss, its gradients, Adam and the EMA), on the two paths it has, side by
 * side in one process: `ops`, the U-Net as a composition of TF.js ops under
 * the gradient tape (the specification, and the path before the
 * whole-network kernels), and `fused`, the whole-network kernels with no
 * tape (compute/kernels_unet.ts, `edmLossAndGradients`), on each kernel set
 * that has them (`blas` where a library is found, `wasm`).
 *
 *     deno bench --allow-all benchmarks/unet_bench.ts
 *
 * Every configuration is timed in each of three passes, so that a drifting
 * load on a shared machine falls on all alike. At the end a table gives
 * each median per step in wall-clock and in the process's CPU time (which
 * other processes' load disturbs less), and the op path's time as a
 * multiple of the fused path's.
 *
 * @module
 */
import process from "node:process";
import { fusedKernelSets, initCompute, setKernelSet } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { referenceTrainOptions } from "../diffusion/settings.ts";
import { DenoiserTrainer } from "../diffusion/train.ts";
import { setUNetPath, type UNetConfig } from "../diffusion/unet1d.ts";

const info = await initCompute("wasm");
const sets = fusedKernelSets();
const paths = [["fused", "auto"], ["ops", "ops"]] as const;

const config: UNetConfig = { rowWidth: 8, features: 64, numBlocks: 2, trajectoryLength: 16 };
const batchSize = 64;
// The quick preset's schedule (its EMA moves every step); the step count only shapes the
// learning rate, which does not change a step's cost.
const options = referenceTrainOptions(16000, batchSize, {
  emaEvery: 1,
  validationPoints: 1,
  validationWindows: batchSize,
});
const stepsPerCall = 4;

/** Per-step wall-clock and CPU milliseconds of each timed call, by configuration. */
const samples = new Map<string, { wall: number[]; cpu: number[] }>();

function trainer(seed: number): DenoiserTrainer {
  const rng = new Rng(seed);
  const windowSize = config.trajectoryLength * config.rowWidth;
  const normals = (count: number) => Float32Array.from({ length: count }, () => rng.normal());
  return new DenoiserTrainer(
    config,
    normals(1024 * windowSize),
    normals(batchSize * windowSize),
    options,
    seed,
  );
}

const registrations: ((pass: number) => void)[] = [];
for (const set of sets) {
  for (const [label, path] of paths) {
    const name = `${label} [${set}]`;
    const times = { wall: [] as number[], cpu: [] as number[] };
    samples.set(name, times);
    let step: DenoiserTrainer | undefined;
    registrations.push((pass) =>
      Deno.bench({
        name: `U-Net step, quick: ${name} (pass ${pass + 1})`,
        group: `U-Net step, quick [${set}] (pass ${pass + 1})`,
        baseline: label === "fused",
        n: 10,
        warmup: 2,
        fn: () => {
          setKernelSet(set);
          setUNetPath(path);
          step ??= trainer(1);
          const cpuStart = process.cpuUsage();
          const start = performance.now();
          for (let i = 0; i < stepsPerCall; i++) step.step();
          times.wall.push((performance.now() - start) / stepsPerCall);
          const cpu = process.cpuUsage(cpuStart);
          times.cpu.push((cpu.user + cpu.system) / 1000 / stepsPerCall);
          setUNetPath("auto");
        },
      })
    );
  }
}
for (let pass = 0; pass < 3; pass++) for (const register of registrations) register(pass);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

globalThis.addEventListener("unload", () => {
  const lines = [
    `compute path: ${info.path}`,
    "set | path | median ms/step | CPU median ms/step | ops ÷ fused (wall) | ops ÷ fused (CPU)",
  ];
  for (const set of sets) {
    const fused = samples.get(`fused [${set}]`)!;
    const ops = samples.get(`ops [${set}]`)!;
    if (fused.wall.length === 0 || ops.wall.length === 0) continue;
    const [fusedWall, fusedCpu, opsWall, opsCpu] = [fused.wall, fused.cpu, ops.wall, ops.cpu].map(
      median,
    );
    const ratio = `${(opsWall / fusedWall).toFixed(2)} | ${(opsCpu / fusedCpu).toFixed(2)}`;
    lines.push(`${set} | fused | ${fusedWall.toFixed(2)} | ${fusedCpu.toFixed(2)} | ${ratio}`);
    lines.push(`${set} | ops | ${opsWall.toFixed(2)} | ${opsCpu.toFixed(2)} | 1 | 1`);
  }
  console.log(lines.join("\n"));
});
