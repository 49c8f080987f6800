/**
 * Times the compute bench's two training steps on one backend, for a machine
 * with a GPU (scripts/gpu_check.sh runs it): a TD3+BC update at the anchor's
 * sizes (observation 17, action 6, batch 256, 256-256 networks, the actor and
 * targets every second update) and one denoiser training step at the
 * paper's U-Net size (features 1024, batch 16, length 16, 25 channels).
 *
 *     deno run --allow-all scripts/gpu_check.ts webgpu [--features 1024] [--batch 16] [--steps 20]
 *       [--stacks 4,16]
 *
 * Also a stack of K seeds' TD3+BC updates (`createStack`, K from `--stacks`):
 * on a CPU stacking saves little (docs/measurements.md), on a GPU each kernel
 * does K seeds' work for one launch. `--hidden` and `--agent-batch` shrink the
 * agent (for a functional run on a software adapter). Prints the path in use,
 * then one line per step: median and minimum milliseconds over the timed
 * steps (after three warm-up steps, which include shader compilation). Exits
 * with 3 when the backend does not start, saying why, so that the shell
 * script can go on to the next backend.
 *
 * Deno's WebGPU has no synchronous read: TF.js's `dataSync` on `webgpu` copies
 * through an OffscreenCanvas, which Deno lacks, so the agents' `update` and
 * the denoiser's `step` (which read their losses back) fail there as they
 * are. On `webgpu` this check therefore defers each such read: `dataSync`
 * keeps the tensor and returns zeros, and every timed step ends by awaiting
 * the kept tensors, which waits for the GPU to finish the step's work. The
 * losses are not used by the arithmetic timed, so the work is the same.
 *
 * @module
 */
import { type BackendName, backendSchema, initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { randomAgentBatch } from "../benchmarks/random_batch.ts";
import { td3bc } from "../plugins/agents/td3_bc.ts";
import { referenceTrainOptions } from "../diffusion/settings.ts";
import { DenoiserTrainer } from "../diffusion/train.ts";
import type { UNetConfig } from "../diffusion/unet1d.ts";
import { rowLayout } from "../diffusion/windows.ts";

const args = [...Deno.args];
const backend = backendSchema.parse(args.shift() ?? "webgpu") as BackendName;
function flag(name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(args[at + 1]);
}
const features = flag("features", 1024);
const unetBatch = flag("batch", 16);
const steps = flag("steps", 20);
const hidden = flag("hidden", 256);
const agentBatch = flag("agent-batch", 256);
const stacksAt = args.indexOf("--stacks");
const stacks = (stacksAt < 0 ? "4,16" : args[stacksAt + 1] ?? "").split(",").filter(Boolean)
  .map(Number);
const trajectoryLength = 16;

let path: string;
try {
  path = (await initCompute(backend)).path;
} catch (error) {
  console.log(`${backend}: did not start: ${(error as Error).message}`);
  Deno.exit(3);
}
console.log(`${backend}: ${path}`);
// A software adapter (llvmpipe, where the GPU's Vulkan driver was not found) runs, but slowly, and
// its figures say nothing about a GPU.
if (path.endsWith(", software)") && !Deno.env.get("GPU_CHECK_ALLOW_SOFTWARE")) {
  console.log(
    `${backend}: a software adapter, not a GPU; set GPU_CHECK_ALLOW_SOFTWARE=1 to time it anyway`,
  );
  Deno.exit(3);
}

const normals = (rng: Rng, size: number) => Float32Array.from({ length: size }, () => rng.normal());

/** Tensors whose synchronous reads were deferred (webgpu only). */
const deferred: tf.Tensor[] = [];
if (backend === "webgpu") {
  tf.Tensor.prototype.dataSync = function (this: tf.Tensor) {
    deferred.push(tf.keep(tf.clone(this)));
    return new Float32Array(this.size);
  } as typeof tf.Tensor.prototype.dataSync;
}

/** Awaits every deferred read: the device has then finished the work they depend on. */
async function settle(): Promise<void> {
  const pending = deferred.splice(0);
  await Promise.all(pending.map((tensor) => tensor.data()));
  for (const tensor of pending) tensor.dispose();
}

/**
 * Runs `step` three times untimed, then `steps` times timed; the step must
 * finish its work (read a value back, or leave a deferred read to settle).
 */
async function time(name: string, step: () => void): Promise<void> {
  for (let i = 0; i < 3; i++) {
    step();
    await settle();
  }
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    step();
    await settle();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `${backend} | ${name} | median ${median.toFixed(2)} ms | min ${times[0].toFixed(2)} ms | ` +
      `${steps} steps | tensors ${tf.memory().numTensors}`,
  );
}

// TD3+BC: two updates per timed call (critic-only, then with actor and targets), halved.
{
  const batch = randomAgentBatch(new Rng(1), agentBatch);
  const { observationDim, actionDim } = batch;
  const context = (seed: number) => ({ observationDim, actionDim, seed, preset: "paper" as const });
  const plugin = td3bc({ hiddenDims: [hidden, hidden] });
  const agent = plugin.create(context(1));
  // update() reads its losses back, so each call waits for the device.
  await time("TD3+BC update (2 updates per step)", () => {
    agent.update(batch);
    agent.update(batch);
  });
  agent.dispose();
  // Seeds as a batch dimension: K seeds per kernel, where a GPU should gain most.
  for (const k of stacks) {
    const stack = plugin.createStack!(Array.from({ length: k }, (_, i) => context(i + 1)));
    const batches = Array.from({ length: k }, () => batch);
    await time(
      `TD3+BC stack of ${k} (2 updates of ${k} seeds per step; divide by ${k} per seed)`,
      () => {
        stack.update(batches);
        stack.update(batches);
      },
    );
    stack.dispose();
  }
}

// The denoiser's training step (EDM loss, backward, Adam, EMA); step() reads its loss back.
{
  const layout = rowLayout(17, 6);
  const windowSize = trajectoryLength * layout.rowWidth;
  const rng = new Rng(3);
  const config: UNetConfig = {
    rowWidth: layout.rowWidth,
    features,
    numBlocks: 3,
    trajectoryLength,
  };
  const trainer = new DenoiserTrainer(
    config,
    normals(rng, 4 * unetBatch * windowSize),
    normals(rng, unetBatch * windowSize),
    referenceTrainOptions(1_000_000, unetBatch, {
      validationPoints: 1,
      validationWindows: unetBatch,
    }),
    3,
  );
  await time(`U-Net step F=${features} batch ${unetBatch} length ${trajectoryLength}`, () => {
    trainer.step();
  });
}
