/**
 * Environment steps per second. One bench iteration is one environment step,
 * so the `iter/s` column reads as steps/s. Compare the `halfcheetah step`
 * line with native MuJoCo's speed on the same machine (docs/measurements.md
 * has one such figure) and with the raw `mj_step × 5` line, measured in the
 * same sitting, which shows what the environment logic adds.
 *
 * V8 first runs MuJoCo's wasm through its baseline compiler and swaps in
 * optimised code for hot functions in the background; on a busy machine
 * that takes seconds, so each simulator is stepped until its speed settles
 * before the benches start (otherwise the first bench measures baseline code).
 */
import { Rng } from "../core/rng.ts";
import {
  type LocomotionEnvironment,
  type LocomotionTask,
  makeLocomotionEnvironment,
} from "../plugins/envs/locomotion.ts";
import { loadModel } from "../plugins/envs/mujoco.ts";
import { halfCheetahXml } from "../plugins/envs/assets/half_cheetah.ts";

/** Uniform random actions, precomputed so the bench times stepping alone. */
function actionTable(actionDim: number, rows: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from(
    { length: rows },
    () => Float32Array.from({ length: actionDim }, () => rng.range(-1, 1)),
  );
}

/**
 * Runs `steps` (1000 steps a call) until the fastest batch has not improved
 * by 3 % over the last five batches, yielding between batches so background
 * compilation can run; at most `limitSeconds`.
 */
async function warmUp(steps: () => void, limitSeconds = 30): Promise<void> {
  const began = performance.now();
  let best = Infinity;
  let sinceImprovement = 0;
  while (sinceImprovement < 5 && performance.now() - began < limitSeconds * 1000) {
    const start = performance.now();
    steps();
    const elapsed = performance.now() - start;
    if (elapsed < 0.97 * best) sinceImprovement = 0;
    else sinceImprovement++;
    best = Math.min(best, elapsed);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function benchTask(task: LocomotionTask): Promise<void> {
  const environment: LocomotionEnvironment = await makeLocomotionEnvironment(task);
  const actions = actionTable(environment.spec.actionDim, 1024, 1);
  const observation = new Float32Array(environment.spec.observationDim);
  const resetRng = new Rng(2);
  let step = 0;
  environment.resetInto(resetRng, observation);
  await warmUp(() => {
    for (let i = 0; i < 1000; i++) environment.stepInto(actions[i & 1023], observation);
    environment.resetInto(resetRng, observation);
  });
  Deno.bench({
    name: `${task} step (frame skip ${environment.task.frameSkip})`,
    group: "environment step",
    baseline: task === "halfcheetah",
    fn() {
      environment.stepInto(actions[step & 1023], observation);
      // Episodes of 1000 steps (or to termination), as in collection.
      if (++step % 1000 === 0 || environment.terminated) {
        environment.resetInto(resetRng, observation);
      }
    },
  });
}

await benchTask("halfcheetah");
await benchTask("hopper");
await benchTask("walker2d");

// The bare simulator: five mj_step calls with the controls set, no observation or reward.
const simulation = await loadModel("halfcheetah-bare", halfCheetahXml);
const bareActions = actionTable(simulation.nu, 1024, 3);
let bareStep = 0;
Deno.bench({
  name: "halfcheetah bare mj_step × 5",
  group: "environment step",
  fn() {
    const ctrl = simulation.data.ctrl as Float64Array;
    const action = bareActions[bareStep & 1023];
    for (let i = 0; i < action.length; i++) ctrl[i] = action[i];
    for (let i = 0; i < 5; i++) simulation.mujoco.mj_step(simulation.model, simulation.data);
    if (++bareStep % 1000 === 0) simulation.reset();
  },
});
