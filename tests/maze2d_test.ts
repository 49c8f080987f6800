import assert from "node:assert/strict";
import { environmentPluginSchema } from "../core/contracts/environment.ts";
import { Rng } from "../core/rng.ts";
import { readD4rl, toTransitions, validateD4rl, writeD4rl } from "../core/d4rl.ts";
import {
  makeMaze2d,
  maze2d,
  Maze2dEnvironment,
  maze2dVariants,
  maze2dXml,
  mazeCells,
} from "../plugins/envs/maze2d.ts";
import { WaypointController } from "../plugins/envs/maze2d_controller.ts";
import { loadModel, type MujocoSimulation } from "../plugins/envs/mujoco.ts";

const umaze = maze2dVariants["maze2d-umaze"];

/** Runs `episodes` evaluation episodes and returns the mean undiscounted return. */
function meanReturn(
  environment: Maze2dEnvironment,
  episodes: number,
  seed: number,
  policy: (observation: Float32Array) => Float32Array,
  startEpisode: () => void = () => {},
): number {
  let total = 0;
  for (let episode = 0; episode < episodes; episode++) {
    let observation = environment.reset(seed + episode);
    startEpisode();
    for (let t = 0; t < environment.spec.maxEpisodeSteps; t++) {
      const result = environment.step(policy(observation));
      total += result.reward;
      observation = result.observation;
    }
  }
  return total / episodes;
}

Deno.test("the plugin has the contract's shape, D4RL's file names, limits and references", () => {
  const plugin = maze2d();
  environmentPluginSchema.parse(plugin);
  assert.equal(plugin.name, "maze2d");
  assert.deepEqual(plugin.datasets, ["maze2d-umaze", "maze2d-medium", "maze2d-large"]);
  assert.equal(plugin.d4rlFileName!("maze2d-large"), "maze2d-large-v1.hdf5");
  const { isTerminal, ...spec } = plugin.spec("maze2d-medium");
  assert.equal(typeof isTerminal, "function");
  assert.deepEqual(spec, {
    id: "maze2d-medium",
    observationDim: 4,
    actionDim: 2,
    maxEpisodeSteps: 600,
    scoreReference: { min: 13.13, max: 277.39 },
    positionDims: 2,
  });
  assert.equal(plugin.spec("maze2d-umaze").maxEpisodeSteps, 300);
  assert.equal(plugin.spec("maze2d-large").maxEpisodeSteps, 800);
  assert.throws(() => plugin.spec("maze2d-open"), /unknown dataset "maze2d-open"/);
  const cells = mazeCells(umaze.layout);
  assert.deepEqual(cells.goal, [1, 1]);
  assert.equal(cells.emptyAndGoal.length, 7);
  assert.equal(cells.walls.length, 25 - 7);
});

Deno.test("isTerminal: Maze2d never terminates, and the contract checks the hook", () => {
  const plugin = maze2d();
  const observations = Float32Array.from([1, 1, 0, 0, 3, 1, 0, 0, 1e3, -1e3, NaN, 0]);
  assert.deepEqual(plugin.spec("maze2d-umaze").isTerminal!(observations, 3), new Uint8Array(3));
  const broken = {
    ...plugin,
    spec: (dataset: string) => ({ ...plugin.spec(dataset), isTerminal: "never" }),
  };
  const parsed = environmentPluginSchema.safeParse(broken);
  assert.ok(!parsed.success);
  assert.match(parsed.error.issues[0].message, /spec\("maze2d-umaze"\): expected a function/);
  assert.deepEqual(parsed.error.issues[0].path, ["spec", "isTerminal"]);
});

Deno.test("stepping is deterministic for a seed", async () => {
  const first = await makeMaze2d("maze2d-medium");
  const second = await makeMaze2d("maze2d-medium");
  try {
    const run = (environment: Maze2dEnvironment) => {
      const rng = new Rng(5);
      const trace = [...environment.reset(42)];
      for (let t = 0; t < 200; t++) {
        trace.push(
          ...environment.step(Float32Array.of(rng.range(-1, 1), rng.range(-1, 1)))
            .observation,
        );
      }
      return trace;
    };
    const trace = run(first);
    assert.deepEqual(run(second), trace);
    assert.deepEqual(run(first), trace, "a reset with the same seed restarts the same episode");
    assert.notDeepEqual([...second.reset(43)], trace.slice(0, 4));
  } finally {
    first.close();
    second.close();
  }
});

Deno.test("walls stop the ball where the layout puts them (0.2 below the cell index)", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const push = (start: number[], action: number[], steps: number) => {
      environment.resetToObservation(Float32Array.from(start));
      let observation: Float32Array = Float32Array.from(start);
      for (let t = 0; t < steps; t++) {
        observation = environment.step(Float32Array.from(action)).observation;
      }
      return observation;
    };
    // The wall of cell (2, 1) spans rows 1.3…2.3 in observation coordinates; the ball has radius 0.1.
    const down = push([1, 1, 0, 0], [1, 0], 200);
    assert.ok(down[0] > 1.1 && down[0] < 1.25, `pushed into the wall below: row ${down[0]}`);
    const up = push([1, 1, 0, 0], [-1, 0], 200);
    assert.ok(up[0] < 0.5 && up[0] > 0.35, `pushed into the wall above: row ${up[0]}`);
    // Along the corridor (1, 1) → (1, 3) is free until the wall of cell (1, 4) at column 3.3.
    const right = push([1, 1, 0, 0], [0, 1], 200);
    assert.ok(right[1] > 3.1 && right[1] < 3.25, `ran along the corridor to column ${right[1]}`);
    assert.ok(Math.abs(right[0] - 1) < 0.05, "a push along the corridor does not change the row");
  } finally {
    environment.close();
  }
});

Deno.test("reward is 1 only within 0.5 of the goal, and speeds are clipped to 5", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    environment.reset(0);
    assert.deepEqual(environment.target, [1, 1]);
    const rewardAt = (row: number, column: number) => {
      environment.resetToObservation(Float32Array.of(row, column, 0, 0));
      return environment.step(Float32Array.of(0, 0)).reward;
    };
    assert.equal(rewardAt(1, 1), 1);
    assert.equal(rewardAt(1, 1.45), 1);
    assert.equal(rewardAt(1.3, 1.35), 1);
    assert.equal(rewardAt(1, 1.55), 0);
    assert.equal(rewardAt(1, 3), 0);
    environment.resetToObservation(Float32Array.of(1, 1.5, 0, 40));
    const fast = environment.step(Float32Array.of(0, 0)).observation;
    assert.ok(fast[3] <= 5 && fast[3] > 4.5, `speed ${fast[3]} clipped to 5 before the step`);
  } finally {
    environment.close();
  }
});

Deno.test("the waypoint controller reaches the goal; a random policy scores near D4RL's ref_min", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const rng = new Rng(3);
    const random = meanReturn(
      environment,
      200,
      1000,
      () => Float32Array.of(rng.range(-1, 1), rng.range(-1, 1)),
    );
    // A fresh controller per episode plans from that episode's start.
    let episode = 0;
    let controller = new WaypointController(umaze.layout, new Rng(episode));
    const planned = meanReturn(
      environment,
      30,
      2000,
      (observation) =>
        controller.act(observation.subarray(0, 2), observation.subarray(2, 4), environment.target)
          .action,
      () => controller = new WaypointController(umaze.layout, new Rng(++episode)),
    );
    console.log(
      `maze2d-umaze mean return: controller ${planned.toFixed(1)}, random ${random.toFixed(1)} ` +
        `(D4RL ref_min ${umaze.scoreReference.min}, ref_max ${umaze.scoreReference.max})`,
    );
    assert.ok(random > 10 && random < 45, `random return ${random} is near ref_min 23.85`);
    assert.ok(planned > 150, `controller return ${planned} is near or above ref_max 161.86`);
    assert.ok(planned > 4 * random, `controller ${planned} ≫ random ${random}`);
  } finally {
    environment.close();
  }
});

Deno.test("collect records D4RL's layout, validates, replays in the simulator and round-trips", async () => {
  const plugin = maze2d();
  const fractions: number[] = [];
  const dataset = await plugin.collect!({
    dataset: "maze2d-umaze",
    seed: 7,
    preset: "smoke",
    onProgress: (fraction) => fractions.push(fraction),
  });
  assert.equal(dataset.size, umaze.collectSize.smoke);
  validateD4rl(dataset, "collected");
  assert.ok(fractions.length > 10 && fractions.at(-1) === 1, "progress is reported up to 1");
  assert.ok(fractions.every((value, i) => i === 0 || value >= fractions[i - 1]));
  assert.equal(dataset.terminals.reduce((sum, flag) => sum + flag, 0), 0);
  assert.deepEqual(Object.keys(dataset.infos).sort(), ["goal", "qpos", "qvel"]);
  assert.equal(dataset.metadata["@env_name"], "maze2d-umaze-v1");
  assert.equal(dataset.metadata.algorithm, "waypoint-controller");

  // Episodes end when the target is reached or after 300 steps; the controller reaches most.
  let episodeLength = 0;
  const lengths: number[] = [];
  for (let i = 0; i < dataset.size; i++) {
    episodeLength += 1;
    if (dataset.timeouts[i]) {
      lengths.push(episodeLength);
      episodeLength = 0;
    }
  }
  assert.ok(lengths.length >= 20, `${lengths.length} episodes in ${dataset.size} steps`);
  assert.ok(Math.max(...lengths) <= umaze.maxEpisodeSteps + 1);
  assert.ok(
    lengths.filter((length) => length <= umaze.maxEpisodeSteps).length > lengths.length / 2,
  );
  // Rewards are the sparse relabelling against the fixed goal (1, 1).
  for (let i = 0; i < dataset.size; i++) {
    const distance = Math.hypot(
      dataset.observations[i * 4] - 1,
      dataset.observations[i * 4 + 1] - 1,
    );
    assert.equal(dataset.rewards[i], distance <= 0.5 ? 1 : 0, `reward of row ${i}`);
  }
  const rewardRate = dataset.rewards.reduce((sum, reward) => sum + reward, 0) / dataset.size;
  assert.ok(rewardRate > 0.01, `the stream visits the goal (reward rate ${rewardRate})`);

  // Every transition replays in the simulator: s' = step(s, a).
  const transitions = toTransitions(dataset);
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    let worst = 0;
    for (let k = 0; k < transitions.size; k += 37) {
      environment.resetToObservation(transitions.observations.subarray(k * 4, k * 4 + 4));
      const next = environment.step(transitions.actions.subarray(k * 2, k * 2 + 2)).observation;
      for (let j = 0; j < 4; j++) {
        worst = Math.max(worst, Math.abs(next[j] - transitions.nextObservations[k * 4 + j]));
      }
    }
    assert.ok(worst < 1e-3, `replayed next observations differ by up to ${worst}`);
  } finally {
    environment.close();
  }

  const again = await plugin.collect!({
    dataset: "maze2d-umaze",
    seed: 7,
    preset: "smoke",
    size: 500,
  });
  assert.deepEqual(
    again.observations,
    dataset.observations.subarray(0, 500 * 4),
    "same seed, same data",
  );

  const folder = await Deno.makeTempDir();
  try {
    await writeD4rl(`${folder}/maze2d-umaze.hdf5`, dataset);
    const copy = await readD4rl(`${folder}/maze2d-umaze.hdf5`);
    assert.deepEqual(copy.observations, dataset.observations);
    assert.deepEqual(copy.actions, dataset.actions);
    assert.deepEqual(copy.timeouts, dataset.timeouts);
    assert.deepEqual(copy.infos, dataset.infos);
    assert.deepEqual(copy.metadata, dataset.metadata);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("the simulator state stays readable and writable after wasm memory grows", async () => {
  const simulation = await loadModel("growth", maze2dXml("growth", umaze.layout));
  const others: MujocoSimulation[] = [];
  try {
    simulation.writeQpos([1, 2]);
    simulation.writeQvel([0.5, -0.5]);
    const rawView = simulation.data.qpos as Float64Array;
    // Each model takes megabytes of wasm memory: more of them force the memory to grow,
    // which detaches every view taken before.
    while (rawView.length > 0 && others.length < 60) {
      others.push(await loadModel("filler", maze2dXml("filler", umaze.layout)));
    }
    assert.equal(rawView.length, 0, "the memory grew and detached the old view");
    assert.deepEqual([...simulation.readQpos(), ...simulation.readQvel()], [1, 2, 0.5, -0.5]);
    simulation.writeCtrl([0, 0]);
    simulation.step(1);
    const qpos = simulation.readQpos();
    assert.ok(Math.abs(qpos[0] - 1.005) < 1e-3 && Math.abs(qpos[1] - 1.995) < 1e-3, `${qpos}`);
  } finally {
    simulation.free();
    for (const other of others) other.free();
  }
});

Deno.test("the controller plans the maze path by value iteration and jitters inner waypoints", () => {
  const controller = new WaypointController(umaze.layout, new Rng(1));
  // From the bottom-left cell (3, 1) to the goal (1, 1), around the U.
  controller.act([3, 1], [0, 0], [1, 1]);
  const waypoints = controller.waypoints;
  const cells = waypoints.map(([row, column]) => [Math.ceil(row), Math.ceil(column)]);
  assert.deepEqual(cells, [[3, 2], [3, 3], [2, 3], [1, 3], [1, 2], [1, 1]]);
  assert.deepEqual(waypoints.at(-1), [1, 1], "the last waypoint is the target cell itself");
  for (const [row, column] of waypoints.slice(0, -1)) {
    const [jitterRow, jitterColumn] = [Math.ceil(row) - row, Math.ceil(column) - column];
    assert.ok(jitterRow > 0 && jitterRow < 0.2 && jitterColumn > 0 && jitterColumn < 0.2);
  }
  // The first action pushes along the corridor towards (3, 2) at full force.
  const { action, reached } = controller.act([3, 1], [0, 0], [1, 1]);
  assert.equal(reached, false);
  assert.equal(action[1], 1);
});

Deno.test("with resetTarget, every reset draws a new target near a free cell", async () => {
  const simulation = await loadModel("reset-target", maze2dXml("reset-target", umaze.layout));
  const environment = new Maze2dEnvironment({ ...umaze, resetTarget: true }, simulation);
  try {
    const free = mazeCells(umaze.layout).emptyAndGoal;
    const targets = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      environment.reset(seed);
      const [row, column] = environment.target;
      assert.ok(
        free.some(([r, c]) => Math.abs(row - r) <= 0.1 && Math.abs(column - c) <= 0.1),
        `target ${row}, ${column} lies within 0.1 of a free cell`,
      );
      targets.add(`${Math.round(row)},${Math.round(column)}`);
    }
    assert.ok(targets.size >= 4, `targets spread over ${targets.size} cells`);
    environment.reset(3);
    const first = environment.target;
    environment.reset(3);
    assert.deepEqual(environment.target, first, "the same seed draws the same target");
  } finally {
    environment.close();
  }
});
