import assert from "node:assert/strict";
import { Rng } from "../core/rng.ts";
import { environmentPluginSchema } from "../core/contracts/environment.ts";
import {
  locomotion,
  type LocomotionEnvironment,
  type LocomotionTask,
  locomotionTasks,
  makeLocomotionEnvironment,
  replayActions,
  taskSpecs,
} from "../plugins/envs/locomotion.ts";

/** Mean return and mean length of uniform-random-action episodes. */
function randomEpisodes(
  environment: LocomotionEnvironment,
  episodes: number,
  seed: number,
): { meanReturn: number; meanLength: number } {
  const rng = new Rng(seed);
  const observation = new Float32Array(environment.spec.observationDim);
  const action = new Float32Array(environment.spec.actionDim);
  let totalReturn = 0;
  let totalLength = 0;
  for (let episode = 0; episode < episodes; episode++) {
    environment.resetInto(rng, observation);
    for (let t = 0; t < environment.spec.maxEpisodeSteps; t++) {
      for (let i = 0; i < action.length; i++) action[i] = rng.range(-1, 1);
      totalReturn += environment.stepInto(action, observation);
      totalLength++;
      if (environment.terminated) break;
    }
  }
  return { meanReturn: totalReturn / episodes, meanLength: totalLength / episodes };
}

function randomActions(count: number, actionDim: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: count * actionDim }, () => rng.range(-1, 1));
}

Deno.test("plugin: datasets, specs, D4RL file names and id errors", () => {
  const plugin = locomotion();
  environmentPluginSchema.parse(plugin);
  assert.equal(plugin.name, "locomotion");
  assert.equal(plugin.datasets.length, 12);
  assert.ok(plugin.datasets.includes("halfcheetah-medium-replay"));
  assert.equal(plugin.d4rlFileName!("walker2d-expert"), "walker2d-expert-v2.hdf5");
  const spec = plugin.spec("hopper-medium");
  assert.deepEqual(
    [spec.id, spec.observationDim, spec.actionDim, spec.maxEpisodeSteps],
    ["hopper-medium", 11, 3, 1000],
  );
  assert.deepEqual(plugin.spec("halfcheetah-random").scoreReference, {
    min: -280.178953,
    max: 12135.0,
  });
  assert.throws(
    () => plugin.spec("ant-medium"),
    /unknown dataset 'ant-medium'.*halfcheetah-random/,
  );
});

Deno.test("isTerminal: Hopper and Walker2d's health checks on observations, HalfCheetah never", () => {
  const plugin = locomotion();
  const terminal = (dataset: string, observation: number[]) =>
    plugin.spec(dataset).isTerminal!(Float32Array.from(observation), 1)[0] === 1;
  assert.equal(terminal("hopper-medium", [1.2, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), false);
  assert.equal(terminal("hopper-medium", [0.5, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), true);
  assert.equal(terminal("hopper-medium", [1.2, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, NaN]), true);
  assert.equal(terminal("hopper-medium", [1.2, 0.0, 0, 0, 100, 0, 0, 0, 0, 0, 0]), true);
  assert.equal(terminal("hopper-medium", [1.2, 0.3, 0, 0, 0, 0, 0, 0, 0, 0, 0]), true);
  assert.equal(terminal("walker2d-medium", [1.0, 1.5, ...new Array(15).fill(0)]), true);
  assert.equal(terminal("walker2d-medium", [1.0, 0.5, ...new Array(15).fill(0)]), false);
  assert.equal(terminal("walker2d-medium", [2.1, 0.5, ...new Array(15).fill(0)]), true);
  assert.equal(terminal("halfcheetah-medium", new Array(17).fill(1e3)), false);
  // A batch: one flag per row, in order.
  const hopper = plugin.spec("hopper-expert");
  const rows = Float32Array.from([
    ...[1.2, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ...[0.5, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ...[1.3, 0.1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  ]);
  assert.deepEqual(hopper.isTerminal!(rows, 3), Uint8Array.from([0, 1, 0]));
  assert.throws(() => hopper.isTerminal!(rows, 2), /isTerminal got 33 values, expected 2 × 11/);
});

Deno.test("isTerminal: on the simulator's observations it agrees with the simulator", async () => {
  for (const task of ["hopper", "walker2d"] as const) {
    const environment = await makeLocomotionEnvironment(task);
    try {
      const rng = new Rng(4);
      const observation = new Float32Array(environment.spec.observationDim);
      const action = new Float32Array(environment.spec.actionDim);
      let terminations = 0;
      for (let episode = 0; episode < 3; episode++) {
        environment.resetInto(rng, observation);
        for (let t = 0; t < 300; t++) {
          for (let i = 0; i < action.length; i++) action[i] = rng.range(-1, 1);
          environment.stepInto(action, observation);
          const flagged = environment.spec.isTerminal!(observation, 1)[0] === 1;
          assert.equal(flagged, environment.terminated, `${task}, episode ${episode}, step ${t}`);
          if (environment.terminated) {
            terminations++;
            break;
          }
        }
      }
      assert.ok(terminations > 0, `${task}: random actions fall over`);
    } finally {
      environment.close();
    }
  }
});

for (const task of locomotionTasks) {
  Deno.test(`${task}: the same seed and actions give the same states; another seed does not`, async () => {
    const first = await makeLocomotionEnvironment(task);
    const second = await makeLocomotionEnvironment(task);
    try {
      const actions = randomActions(50, first.spec.actionDim, 11);
      const run = (environment: LocomotionEnvironment, seed: number) => {
        const observations = [environment.reset(seed)];
        for (let t = 0; t < 50; t++) {
          const action = actions.subarray(t * first.spec.actionDim, (t + 1) * first.spec.actionDim);
          const result = environment.step(action);
          observations.push(result.observation);
          if (result.terminated) break;
        }
        return observations;
      };
      const a = run(first, 3);
      assert.deepEqual(run(second, 3), a);
      assert.deepEqual(run(first, 3), a, "a second episode with the same seed repeats the first");
      assert.notDeepEqual(run(second, 4)[0], a[0]);
    } finally {
      first.close();
      second.close();
    }
  });
}

Deno.test("random-policy returns sit at D4RL's random references", async () => {
  // D4RL's random references: halfcheetah −280.2, hopper −20.3, walker2d 1.6 (v2).
  const cheetah = await makeLocomotionEnvironment("halfcheetah");
  const cheetahRandom = randomEpisodes(cheetah, 4, 1);
  cheetah.close();
  assert.equal(cheetahRandom.meanLength, 1000, "halfcheetah never terminates");
  assert.ok(
    cheetahRandom.meanReturn > -420 && cheetahRandom.meanReturn < -150,
    `halfcheetah random return ${cheetahRandom.meanReturn}, expected about −280`,
  );
  for (const task of ["hopper", "walker2d"] as const) {
    const environment = await makeLocomotionEnvironment(task);
    const random = randomEpisodes(environment, 20, 2);
    environment.close();
    assert.ok(random.meanLength < 100, `${task} random episodes last ${random.meanLength} steps`);
    assert.ok(
      Math.abs(random.meanReturn) < 60,
      `${task} random return ${random.meanReturn}, expected small`,
    );
  }
});

Deno.test("observation is qpos[1:] and (clipped) qvel; reward is Δx/dt + healthy − cost·Σa²", async () => {
  for (const task of locomotionTasks) {
    const environment = await makeLocomotionEnvironment(task);
    const spec = taskSpecs[task];
    const qposBefore = new Float64Array(environment.nq);
    const qvelBefore = new Float64Array(environment.nv);
    const qpos = new Float64Array(environment.nq);
    const qvel = new Float64Array(environment.nv);
    environment.reset(5);
    environment.readState(qposBefore, qvelBefore);
    // An action beyond the range is clipped to [−1, 1] for the simulator and the cost.
    const action = Float32Array.from({ length: spec.actionDim }, (_, i) => (i % 2 ? 3 : -0.5));
    const { observation, reward } = environment.step(action);
    environment.readState(qpos, qvel);
    for (let i = 1; i < environment.nq; i++) {
      assert.equal(observation[i - 1], Math.fround(qpos[i]), `${task} observation ${i - 1}`);
    }
    for (let i = 0; i < environment.nv; i++) {
      const clipped = Math.min(spec.velocityClip, Math.max(-spec.velocityClip, qvel[i]));
      assert.equal(
        observation[environment.nq - 1 + i],
        Math.fround(clipped),
        `${task} velocity ${i}`,
      );
    }
    const cost = action.reduce((sum, a) => sum + Math.min(1, Math.max(-1, a)) ** 2, 0);
    const expected = (qpos[0] - qposBefore[0]) / environment.dt + spec.healthyReward -
      spec.controlCostWeight * cost;
    assert.ok(Math.abs(reward - expected) < 1e-9, `${task} reward ${reward} vs ${expected}`);
    assert.ok(
      Math.abs(environment.dt - (task === "halfcheetah" ? 0.05 : 0.008)) < 1e-12,
      `${task} dt ${environment.dt}`,
    );
    environment.close();
  }
});

/** Sets a state from the initial pose with some entries changed, returns whether it is terminal. */
async function terminalAfter(
  task: LocomotionTask,
  changes: Record<number, number>,
  velocity = 0,
): Promise<boolean> {
  const environment = await makeLocomotionEnvironment(task);
  environment.reset(0);
  const qpos = new Float64Array(environment.nq);
  const qvel = new Float64Array(environment.nv);
  environment.readState(qpos, qvel);
  for (const [index, value] of Object.entries(changes)) qpos[Number(index)] = value;
  qvel[3] = velocity;
  environment.setState(qpos, qvel);
  const terminated = environment.terminated;
  environment.close();
  return terminated;
}

Deno.test("termination: hopper and walker2d end when unhealthy, halfcheetah never", async () => {
  assert.equal(await terminalAfter("hopper", {}), false);
  assert.equal(await terminalAfter("hopper", { 1: 0.69 }), true, "hopper height ≤ 0.7");
  assert.equal(await terminalAfter("hopper", { 2: 0.21 }), true, "hopper |angle| ≥ 0.2");
  assert.equal(await terminalAfter("hopper", { 2: -0.21 }), true, "hopper |angle| ≥ 0.2");
  assert.equal(await terminalAfter("hopper", {}, 101), true, "hopper velocity beyond 100");
  assert.equal(await terminalAfter("walker2d", {}), false);
  assert.equal(await terminalAfter("walker2d", { 1: 0.79 }), true, "walker height ≤ 0.8");
  assert.equal(await terminalAfter("walker2d", { 1: 2.01 }), true, "walker height ≥ 2");
  assert.equal(await terminalAfter("walker2d", { 2: 1.01 }), true, "walker |angle| ≥ 1");
  assert.equal(await terminalAfter("walker2d", { 2: 0.9 }), false);
  assert.equal(await terminalAfter("halfcheetah", { 1: -5, 2: 3 }, 500), false);

  // A hopper with no control falls over and the step that makes it unhealthy is terminal.
  const hopper = await makeLocomotionEnvironment("hopper");
  hopper.reset(1);
  let steps = 0;
  while (!hopper.step(new Float32Array(3)).terminated && steps < 1000) steps++;
  hopper.close();
  assert.ok(steps < 1000, "a hopper without control falls within an episode");
});

for (const task of locomotionTasks) {
  Deno.test(`${task}: resetToObservation and replaying actions reproduces a direct rollout`, async () => {
    const environment = await makeLocomotionEnvironment(task);
    const { actionDim, observationDim } = environment.spec;
    environment.reset(9);
    // Start from a state reached by a few gentle actions, so the replay starts mid-motion.
    const warmup = randomActions(5, actionDim, 21).map((a) => 0.3 * a);
    let start: Float32Array = new Float32Array(observationDim);
    for (let t = 0; t < 5; t++) {
      start = environment.step(warmup.subarray(t * actionDim, (t + 1) * actionDim)).observation;
    }
    const horizon = 8;
    const actions = randomActions(horizon, actionDim, 22).map((a) => 0.3 * a);
    const direct: Float32Array[] = [];
    for (let t = 0; t < horizon; t++) {
      const result = environment.step(actions.subarray(t * actionDim, (t + 1) * actionDim));
      direct.push(result.observation);
      if (result.terminated) break;
    }
    const replay = replayActions(environment, start, actions);
    environment.close();
    assert.equal(replay.steps, direct.length);
    let worst = 0;
    for (let t = 0; t < replay.steps; t++) {
      for (let i = 0; i < observationDim; i++) {
        worst = Math.max(
          worst,
          Math.abs(replay.observations[t * observationDim + i] - direct[t][i]),
        );
      }
    }
    // The start state passes through float32, so the replay differs by rounding only.
    assert.ok(worst < 1e-3, `${task}: replay differs from the direct rollout by ${worst}`);
    // A replay from another observation goes elsewhere: the check above can fail.
    const shifted = start.slice();
    shifted[environment.nq - 1] += 1;
    const otherEnvironment = await makeLocomotionEnvironment(task);
    const other = replayActions(otherEnvironment, shifted, actions);
    otherEnvironment.close();
    assert.ok(
      Math.abs(other.observations[environment.nq - 1] - direct[0][environment.nq - 1]) > 1e-2,
    );
  });
}

Deno.test("resetToObservation rejects an observation of the wrong width", async () => {
  const environment = await makeLocomotionEnvironment("hopper");
  assert.throws(() => environment.resetToObservation(new Float32Array(17)), /11/);
  assert.throws(() => environment.step(new Float32Array(6)), /expected 3/);
  environment.close();
});
