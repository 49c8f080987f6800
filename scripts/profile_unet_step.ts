/**
 * Where a denoiser training step's time goes, at the `quick` preset's sizes
 * (features 64, two levels, batch 64, length 16, rows of 8), through the
 * trainer's own code: every TF.js kernel of the wasm backend is wrapped with
 * a timer (exclusive of the kernels it calls), and `cblas_sgemm` too (by
 * wrapping `Deno.dlopen` before the compute layer opens the library), so one
 * run prints each kernel's count and time per step, the products by shape,
 * and the step's time outside any kernel (engine, tape, optimiser, EMA,
 * batch drawing). Timers add a little to every call; the wall-clock figures
 * are for proportions, not for comparing runs (benchmarks/unet_bench.ts
 * times the step).
 *
 *     deno run --allow-all scripts/profile_unet_step.ts [fused|ops] [steps]
 *
 * For self time inside kernels (which loop, which engine function), run the
 * same with Deno's `--cpu-prof` and read the profile.
 *
 * @module
 */
import { initCompute, setKernelSet, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { referenceTrainOptions } from "../diffusion/settings.ts";
import { DenoiserTrainer } from "../diffusion/train.ts";
import { setUNetPath, type UNetConfig } from "../diffusion/unet1d.ts";

const path = Deno.args[0] === "ops" ? "ops" : "auto";
const steps = Number(Deno.args[1] ?? 100);
let timing = false;

/** Milliseconds and calls by name. */
class Tally {
  readonly entries = new Map<string, { calls: number; ms: number }>();
  add(name: string, ms: number): void {
    const entry = this.entries.get(name) ?? { calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += ms;
    this.entries.set(name, entry);
  }
  total(): number {
    return [...this.entries.values()].reduce((sum, entry) => sum + entry.ms, 0);
  }
}
const kernels = new Tally();
const products = new Tally();

// Products: the compute layer opens the BLAS through Deno.dlopen; its cblas_sgemm is timed.
const dlopen = Deno.dlopen;
Object.assign(Deno, {
  dlopen(file: string | URL, symbols: Deno.ForeignLibraryInterface) {
    const library = dlopen(file, symbols);
    const sgemm = (library.symbols as Record<string, (...args: unknown[]) => unknown>).cblas_sgemm;
    if (!sgemm) return library;
    const timed = (...args: unknown[]) => {
      if (!timing) return sgemm(...args);
      const start = performance.now();
      const result = sgemm(...args);
      const [transA, transB, m, n, k] = (args as number[]).slice(1, 6);
      products.add(
        `${transA === 112 ? "T" : "N"}${transB === 112 ? "T" : "N"} ${m}×${n}×${k}`,
        performance.now() - start,
      );
      return result;
    };
    return { ...library, symbols: { ...library.symbols, cblas_sgemm: timed } };
  },
});

await initCompute("wasm");
setKernelSet("blas");
setUNetPath(path);

// Kernels: each registered wasm kernel, timed exclusive of the kernels it runs inside it.
const open: number[] = [];
for (const kernel of tf.getKernelsForBackend("wasm")) {
  const inner = kernel.kernelFunc;
  tf.unregisterKernel(kernel.kernelName, "wasm");
  tf.registerKernel({
    ...kernel,
    kernelFunc: (args) => {
      if (!timing) return inner(args);
      open.push(0);
      const start = performance.now();
      const out = inner(args);
      const ms = performance.now() - start;
      const nested = open.pop()!;
      if (open.length) open[open.length - 1] += ms;
      kernels.add(kernel.kernelName, ms - nested);
      return out;
    },
  });
}

const config: UNetConfig = { rowWidth: 8, features: 64, numBlocks: 2, trajectoryLength: 16 };
const rng = new Rng(1);
const normals = (count: number) => Float32Array.from({ length: count }, () => rng.normal());
const windowFloats = config.trajectoryLength * config.rowWidth;
const trainer = new DenoiserTrainer(
  config,
  normals(1024 * windowFloats),
  normals(64 * windowFloats),
  referenceTrainOptions(16000, 64, { emaEvery: 1, validationPoints: 1, validationWindows: 64 }),
  1,
);
for (let i = 0; i < 20; i++) trainer.step();
timing = true;
const start = performance.now();
for (let i = 0; i < steps; i++) trainer.step();
const step = (performance.now() - start) / steps;
timing = false;

const perStep = (ms: number) => (ms / steps).toFixed(3);
const rows = (tally: Tally) =>
  [...tally.entries].sort((a, b) => b[1].ms - a[1].ms).map(([name, { calls, ms }]) =>
    `${name} | ${calls / steps} | ${perStep(ms)}`
  );
const kernelCount = [...kernels.entries.values()].reduce((sum, e) => sum + e.calls, 0) / steps;
console.log(
  [
    `path: ${path === "auto" ? "fused" : "ops"}; ${steps} steps; ${step.toFixed(2)} ms a step`,
    `kernels: ${kernelCount} a step, ${perStep(kernels.total())} ms; ` +
    `outside kernels: ${(step - kernels.total() / steps).toFixed(3)} ms`,
    `products (cblas_sgemm, inside kernels): ${perStep(products.total())} ms`,
    "",
    "kernel | calls a step | ms a step (exclusive)",
    ...rows(kernels),
    "",
    "product | calls a step | ms a step",
    ...rows(products),
  ].join("\n"),
);
