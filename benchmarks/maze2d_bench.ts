/**
 * Maze2d steps per second. One bench iteration is one environment step (or
 * one recorded dataset row), so the `iter/s` column reads as steps/s:
 * - `maze2d-* step`: the evaluation environment (clipping, MuJoCo step,
 *   observation, reward) under uniform random actions, episodes of the
 *   dataset's length;
 * - `bare mj_step`: the simulator alone with the controls set, which shows
 *   what the environment logic adds;
 * - `collect row`: the waypoint controller's dataset generation, per row.
 *
 * @module
 */
import { Rng } from "../core/rng.ts";
import { makeMaze2d, maze2d, maze2dVariants, maze2dXml } from "../plugins/envs/maze2d.ts";
import { loadModel } from "../plugins/envs/mujoco.ts";

/** Uniform random actions, precomputed so the bench times stepping alone. */
function actionTable(rows: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: rows }, () => Float32Array.of(rng.range(-1, 1), rng.range(-1, 1)));
}

const actions = actionTable(1024, 1);

for (const id of Object.keys(maze2dVariants)) {
  const environment = await makeMaze2d(id);
  const episodeLength = environment.spec.maxEpisodeSteps;
  let step = 0;
  let episode = 0;
  environment.reset(episode);
  Deno.bench({
    name: `${id} step`,
    group: "maze2d step",
    baseline: id === "maze2d-umaze",
    fn() {
      environment.step(actions[step & 1023]);
      if (++step % episodeLength === 0) environment.reset(++episode);
    },
  });
}

const umaze = maze2dVariants["maze2d-umaze"];
const simulation = await loadModel("maze2d-bare", maze2dXml("maze2d-bare", umaze.layout));
let bareStep = 0;
Deno.bench({
  name: "maze2d-umaze bare mj_step",
  group: "maze2d step",
  fn() {
    simulation.writeCtrl(actions[bareStep++ & 1023]);
    simulation.step(1);
    if (bareStep % umaze.maxEpisodeSteps === 0) simulation.reset();
  },
});

const collectRows = 20_000;
const plugin = maze2d();
Deno.bench({
  name: `maze2d-umaze collect (${collectRows} rows per iteration)`,
  group: "maze2d collect",
  n: 5,
  warmup: 1,
  async fn() {
    await plugin.collect!({ dataset: "maze2d-umaze", size: collectRows, seed: 0, preset: "quick" });
  },
});
