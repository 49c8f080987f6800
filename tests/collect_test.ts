import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import type { EnvironmentSpec } from "../core/contracts/environment.ts";
import type { D4rlDataset } from "../core/types.ts";
import { readD4rl, validateD4rl, writeD4rl } from "../core/d4rl.ts";
import { locomotion } from "../plugins/envs/locomotion.ts";
import {
  BehaviourTraining,
  collectLevel,
  type RecordingEnvironment,
  releaseBehaviourTrainings,
  resolveSizes,
} from "../data/collect/levels.ts";
import { StepRecorder } from "../data/collect/recorder.ts";

await initCompute("wasm");

/** Checks that `next_observations` continues each episode and episodes end at 1000 steps at most. */
function assertEpisodeStructure(dataset: D4rlDataset, label: string): void {
  const { size, observationDim } = dataset;
  let episodeStep = 0;
  for (let row = 0; row < size; row++) {
    episodeStep++;
    const ends = dataset.terminals[row] === 1 || dataset.timeouts[row] === 1;
    assert.ok(episodeStep <= 1000, `${label}: an episode runs past 1000 steps at row ${row}`);
    if (ends) {
      episodeStep = 0;
      continue;
    }
    for (let i = 0; i < observationDim; i++) {
      assert.equal(
        dataset.nextObservations![row * observationDim + i],
        dataset.observations[(row + 1) * observationDim + i],
        `${label}: next_observations[${row}] is not observations[${row + 1}]`,
      );
    }
  }
  assert.ok(
    dataset.terminals[size - 1] === 1 || dataset.timeouts[size - 1] === 1,
    `${label}: the last row ends no episode`,
  );
}

Deno.test("smoke collection: every halfcheetah level validates and round-trips through HDF5", async () => {
  const plugin = locomotion();
  const folder = await Deno.makeTempDir();
  try {
    for (const level of ["random", "medium", "medium-replay", "expert"]) {
      const dataset = await plugin.collect!({
        dataset: `halfcheetah-${level}`,
        seed: 1,
        preset: "smoke",
        size: 1200,
      });
      validateD4rl(dataset, level);
      assert.equal(dataset.observationDim, 17);
      assert.equal(dataset.actionDim, 6);
      assert.equal(dataset.infos.qpos.width, 9);
      assert.equal(dataset.infos.qvel.width, 9);
      assert.equal(dataset.metadata.algorithm, "SAC");
      assert.equal(dataset.metadata.level, level);
      assertEpisodeStructure(dataset, level);
      // infos/qpos holds the state of the row's observation: qpos[1:] is the observation's head.
      for (const row of [0, 500, dataset.size - 1]) {
        for (let i = 1; i < 9; i++) {
          assert.equal(
            dataset.observations[row * 17 + i - 1],
            Math.fround(dataset.infos.qpos.data[row * 9 + i]),
          );
        }
      }
      const expectedSize = level === "medium-replay" ? resolveSizes("smoke").mediumMaxSteps : 1200;
      assert.equal(dataset.size, Math.min(1200, expectedSize));
      const path = `${folder}/halfcheetah-${level}-v2.hdf5`;
      await writeD4rl(path, dataset);
      const read = await readD4rl(path);
      assert.equal(read.size, dataset.size);
      assert.deepEqual(read.observations, dataset.observations);
      assert.deepEqual(read.actions, dataset.actions);
      assert.deepEqual(read.rewards, dataset.rewards);
      assert.deepEqual(read.nextObservations, dataset.nextObservations);
      assert.deepEqual(Array.from(read.terminals), Array.from(dataset.terminals));
      assert.deepEqual(Array.from(read.timeouts), Array.from(dataset.timeouts));
      assert.deepEqual(Array.from(read.infos.qpos.data), Array.from(dataset.infos.qpos.data));
      assert.equal(read.metadata.level, level);
    }
  } finally {
    await releaseBehaviourTrainings();
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("collection is reproducible for a seed and differs across seeds", async () => {
  const plugin = locomotion();
  const collect = (seed: number) =>
    plugin.collect!({ dataset: "hopper-random", seed, preset: "smoke", size: 500 });
  const first = await collect(4);
  const again = await collect(4);
  const other = await collect(5);
  await releaseBehaviourTrainings();
  assert.deepEqual(again.observations, first.observations);
  assert.deepEqual(again.actions, first.actions);
  assert.notDeepEqual(other.actions, first.actions);
  // Random hopper episodes fall over early: terminals end most of them.
  const terminals = first.terminals.reduce((sum, flag) => sum + flag, 0);
  assert.ok(terminals >= 5, `only ${terminals} terminal rows in 500 random hopper steps`);
});

Deno.test("collect rejects an unknown dataset and a bad size with clear errors", async () => {
  const plugin = locomotion();
  await assert.rejects(
    () => plugin.collect!({ dataset: "halfcheetah-novice", seed: 0, preset: "smoke" }),
    /unknown dataset 'halfcheetah-novice'/,
  );
  await assert.rejects(
    () => plugin.collect!({ dataset: "halfcheetah-random", seed: 0, preset: "smoke", size: 0 }),
    /size must be a positive integer/,
  );
  assert.throws(() => resolveSizes("smoke", { startSteps: -1 }), /startSteps/);
});

/**
 * A task SAC solves in a few hundred updates: the observation is a target in
 * [−1, 1], the reward −(a₀ − target)², episodes of 10 steps. A random policy
 * earns about −6.7 per episode, a perfect one 0.
 */
class TrackingTask implements RecordingEnvironment {
  readonly spec: EnvironmentSpec = {
    id: "tracking",
    observationDim: 1,
    actionDim: 1,
    maxEpisodeSteps: 10,
    scoreReference: { min: -6.7, max: 0 },
  };
  readonly nq = 1;
  readonly nv = 1;
  terminated = false;
  #target = 0;
  #rng = new Rng(0);

  resetInto(rng: Rng, observation: Float32Array): void {
    this.#rng = new Rng(rng.seed());
    this.#target = this.#rng.range(-1, 1);
    observation[0] = this.#target;
  }

  stepInto(action: Float32Array, observation: Float32Array): number {
    const reward = -((Math.min(1, Math.max(-1, action[0])) - this.#target) ** 2);
    this.#target = this.#rng.range(-1, 1);
    observation[0] = this.#target;
    return reward;
  }

  readState(qpos: Float64Array, qvel: Float64Array): void {
    qpos[0] = this.#target;
    qvel[0] = 0;
  }

  close(): void {}
}

Deno.test("online SAC: the behaviour agent's evaluation return rises", () => {
  const sizes = resolveSizes("smoke", {
    startSteps: 100,
    mediumMaxSteps: 300,
    expertSteps: 600,
    evaluateEvery: 100,
    evaluationEpisodes: 10,
    mediumFraction: 0.99,
    sac: { hiddenDims: [32, 32], batchSize: 64, learningRate: 3e-3 },
  });
  const tensorsBefore = tf.memory().numTensors;
  const training = new BehaviourTraining(new TrackingTask(), new TrackingTask(), sizes, 7);
  const medium = training.advanceTo("medium");
  assert.equal(medium.steps, 300);
  const tensorsAtMedium = tf.memory().numTensors;
  training.advanceTo("expert");
  assert.equal(tf.memory().numTensors, tensorsAtMedium, "the tensor count grows while training");
  const returns = training.curve.map(([, value]) => value);
  const first = returns[0];
  const last = returns.at(-1)!;
  assert.ok(first < -2, `the first evaluation already scores ${first}`);
  assert.ok(
    last > -1,
    `after training the return is ${last} (curve ${returns.map((r) => r.toFixed(2))})`,
  );
  assert.equal(training.buffer.size, 600);
  training.dispose();
  assert.ok(
    tf.memory().numTensors <= tensorsBefore + 3,
    `dispose leaves ${tf.memory().numTensors - tensorsBefore} tensors behind`,
  );
});

Deno.test("medium-replay is the replay buffer up to the medium checkpoint", async () => {
  const sizes = {
    startSteps: 100,
    mediumMaxSteps: 300,
    expertSteps: 400,
    evaluateEvery: 100,
    mediumFraction: 0.999,
  };
  const request = {
    dataset: "tracking-medium-replay",
    makeEnvironment: () => Promise.resolve(new TrackingTask()),
    seed: 3,
    preset: "smoke" as const,
    sizes,
  };
  const replay = await collectLevel({ ...request, level: "medium-replay" });
  const expert = await collectLevel({
    ...request,
    dataset: "tracking-expert",
    level: "expert",
    size: 50,
  });
  await releaseBehaviourTrainings();
  assert.equal(replay.size, 300);
  assert.equal(replay.metadata.policy_training_steps, 300);
  assert.equal(expert.metadata.policy_training_steps, 400);
  // Every episode of the tracking task is cut by the time limit after 10 steps.
  assert.equal(replay.timeouts.reduce((sum, flag) => sum + flag, 0), 30);
});

Deno.test("StepRecorder: capacity, export bounds and the closing timeout", () => {
  const recorder = new StepRecorder({ observationDim: 1, actionDim: 1, nq: 1, nv: 1 }, 2);
  const one = new Float32Array([1]);
  const state = new Float64Array([0]);
  recorder.push(one, state, state, one, 1, false, false, one);
  assert.equal(
    recorder.toDataset({}).timeouts[0],
    1,
    "a last row that ends nothing becomes a timeout",
  );
  recorder.push(one, state, state, one, 1, true, false, one);
  assert.throws(() => recorder.push(one, state, state, one, 1, false, false, one), /full at 2/);
  assert.throws(() => recorder.toDataset({}, 3), /cannot export 3 of 2/);
  assert.equal(recorder.toDataset({}).timeouts[1], 0, "a terminal last row stays terminal only");
});
