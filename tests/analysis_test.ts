import assert from "node:assert/strict";
import { initCompute } from "../core/compute.ts";
import { parseAnalysisResult } from "../core/analysis.ts";
import type { Environment, EnvironmentSpec } from "../core/contracts/environment.ts";
import { Rng } from "../core/rng.ts";
import type { D4rlDataset, PolicyView } from "../core/types.ts";
import { makeLocomotionEnvironment } from "../plugins/envs/locomotion.ts";
import { type AnalysisProviders, analyze, type TrajectoryModel } from "../analysis/analyze.ts";
import { petsTrajectoryModel } from "../analysis/pets_model.ts";
import { windowsToTrajectories } from "../analysis/diffusion_model.ts";
import { rowLayout } from "../diffusion/windows.ts";
import {
  meanActionLogLikelihood,
  replayDynamicsError,
  type SyntheticTrajectories,
} from "../analysis/trajectories.ts";

await initCompute("wasm");

/** Records `steps` steps of `environment` under random actions as one synthetic trajectory. */
function recordTrajectory(
  environment: Environment,
  steps: number,
  seed: number,
): SyntheticTrajectories {
  const { observationDim: od, actionDim: ad } = environment.spec;
  const rng = new Rng(seed);
  const length = steps + 1;
  const observations = new Float32Array(length * od);
  const actions = new Float32Array(length * ad);
  observations.set(environment.reset(seed), 0);
  for (let t = 0; t < steps; t++) {
    const action = Float32Array.from({ length: ad }, () => rng.range(-1, 1));
    actions.set(action, t * ad);
    observations.set(environment.step(action).observation, (t + 1) * od);
  }
  return { count: 1, length, observationDim: od, actionDim: ad, observations, actions };
}

Deno.test("replaying a HalfCheetah action sequence from its first state matches the direct rollout", async () => {
  const environment = await makeLocomotionEnvironment("halfcheetah", "halfcheetah-medium");
  const trajectory = recordTrajectory(environment, 16, 3);
  const errors = replayDynamicsError(trajectory, environment);
  assert.equal(errors.length, 16);
  // MuJoCo is deterministic and x (absent from the observation) does not change the dynamics.
  for (const error of errors) assert.ok(error < 1e-8, `replay error ${error}`);

  // A synthetic state off by 0.1 in every dimension shows up at its step alone.
  const shifted = { ...trajectory, observations: trajectory.observations.slice() };
  const od = trajectory.observationDim;
  for (let j = 0; j < od; j++) shifted.observations[5 * od + j] += 0.1;
  const shiftedErrors = replayDynamicsError(shifted, environment);
  assert.ok(Math.abs(shiftedErrors[4] - 0.01) < 1e-6, `step 5 error ${shiftedErrors[4]}`);
  assert.ok(shiftedErrors[5] < 1e-8 && shiftedErrors[3] < 1e-8);
  environment.close();
});

Deno.test("diffusion windows (observation, atanh action, reward, done) replay as trajectories", async () => {
  const environment = await makeLocomotionEnvironment("halfcheetah", "halfcheetah-medium");
  const recorded = recordTrajectory(environment, 15, 8);
  const { observationDim: od, actionDim: ad, length } = recorded;
  const rowWidth = od + ad + 2;
  const windows = new Float32Array(length * rowWidth);
  for (let t = 0; t < length; t++) {
    windows.set(recorded.observations.subarray(t * od, (t + 1) * od), t * rowWidth);
    for (let j = 0; j < ad; j++) {
      windows[t * rowWidth + od + j] = Math.atanh(recorded.actions[t * ad + j]);
    }
  }
  const trajectories = windowsToTrajectories(windows, 1, length, rowLayout(od, ad));
  assert.equal(trajectories.length, 16);
  const errors = replayDynamicsError(trajectories, environment, 16);
  assert.equal(errors.length, 15, "a window of 16 states gives 15 steps");
  for (const error of errors) assert.ok(error < 1e-6, `replay error ${error}`);
  environment.close();
});

Deno.test("mean action log-likelihood is the Gaussian log-density summed over action dimensions", () => {
  const policy: PolicyView = {
    actionDistribution: (_observations, count) => ({
      mean: new Float32Array(count * 2).fill(0.5),
      std: new Float32Array(count * 2).fill(0.2),
    }),
  };
  const trajectories: SyntheticTrajectories = {
    count: 2,
    length: 3,
    observationDim: 1,
    actionDim: 2,
    observations: new Float32Array(6),
    actions: Float32Array.from([0.5, 0.5, 0.7, 0.5, 0.5, 0.5, 0.3, 0.5, 0.5, 0.5, 0.5, 0.5]),
  };
  const density = -Math.log(0.2) - 0.5 * Math.log(2 * Math.PI);
  // Two actions sit one std away from the mean: −0.5 each, over 6 steps.
  const expected = 2 * density - (2 * 0.5) / 6;
  assert.ok(Math.abs(meanActionLogLikelihood(trajectories, policy) - expected) < 1e-5);
});

// ---- An end-to-end run on a small linear system with stub diffusion -------------------------

const observationDim = 2;
const actionDim = 1;

function linearNext(state: ArrayLike<number>, action: ArrayLike<number>): number[] {
  return [0.9 * state[0] + 0.3 * action[0], 0.8 * state[1] - 0.2 * action[0]];
}

class LinearEnvironment implements Environment {
  readonly spec: EnvironmentSpec = {
    id: "linear",
    observationDim,
    actionDim,
    maxEpisodeSteps: 50,
    scoreReference: { min: 0, max: 1 },
  };
  #state = [0, 0];
  reset(seed: number): Float32Array {
    const rng = new Rng(seed);
    this.#state = [rng.normal(), rng.normal()];
    return Float32Array.from(this.#state);
  }
  resetToObservation(observation: Float32Array): void {
    this.#state = [observation[0], observation[1]];
  }
  step(action: Float32Array) {
    const clipped = [Math.min(1, Math.max(-1, action[0]))];
    this.#state = linearNext(this.#state, clipped);
    return { observation: Float32Array.from(this.#state), reward: 0, terminated: false };
  }
  close(): void {}
}

function linearDataset(size: number, seed: number): D4rlDataset {
  const environment = new LinearEnvironment();
  const rng = new Rng(seed);
  const observations = new Float32Array(size * observationDim);
  const nextObservations = new Float32Array(size * observationDim);
  const actions = new Float32Array(size * actionDim);
  const timeouts = new Uint8Array(size);
  let state = environment.reset(seed);
  for (let i = 0; i < size; i++) {
    const action = Float32Array.of(Math.max(-1, Math.min(1, 0.5 * rng.normal())));
    const next = environment.step(action).observation;
    observations.set(state, i * observationDim);
    actions.set(action, i * actionDim);
    nextObservations.set(next, i * observationDim);
    timeouts[i] = (i + 1) % 50 === 0 ? 1 : 0;
    state = timeouts[i] ? environment.reset(seed + i) : next;
  }
  return {
    size,
    observationDim,
    actionDim,
    observations,
    actions,
    rewards: new Float32Array(size),
    terminals: new Uint8Array(size),
    timeouts,
    nextObservations,
    infos: {},
    metadata: {},
  };
}

/** A constant-mean Gaussian target policy. */
function constantPolicy(mean: number): PolicyView {
  return {
    actionDistribution: (_observations, count) => ({
      mean: new Float32Array(count * actionDim).fill(mean),
      std: new Float32Array(count * actionDim).fill(0.2),
    }),
  };
}

/**
 * A stand-in for guided diffusion with exact dynamics: actions move from the
 * behaviour's N(0, 0.5²) toward the policy's mean as λ grows, states follow
 * the true system plus a small model error.
 */
function stubDiffusion(dataset: D4rlDataset): TrajectoryModel {
  return {
    sample({ policy, guidance, count, seed }) {
      const rng = new Rng(seed);
      const length = 8;
      const observations = new Float32Array(count * length * observationDim);
      const actions = new Float32Array(count * length * actionDim);
      const weight = guidance / (1 + guidance);
      for (let i = 0; i < count; i++) {
        const start = rng.int(dataset.size);
        let state = [dataset.observations[start * 2], dataset.observations[start * 2 + 1]];
        for (let t = 0; t < length; t++) {
          const at = i * length + t;
          observations.set(state, at * observationDim);
          const target = policy.actionDistribution(Float32Array.from(state), 1).mean[0];
          const action = (1 - weight) * 0.5 * rng.normal() + weight * target;
          actions[at] = Math.max(-1, Math.min(1, action));
          state = linearNext(state, [actions[at]]).map((value) => value + 0.01 * rng.normal());
        }
      }
      return Promise.resolve({ count, length, observationDim, actionDim, observations, actions });
    },
  };
}

// The stub's likelihood rises with λ by construction, so the ordering below
// checks analyze's plumbing (each λ reaches the model, points stay in λ
// order), not that guidance raises likelihood, which
// tests/diffusion_guidance_test.ts checks on a trained denoiser.
Deno.test("analyze hands each λ to the model in order and writes both figures with standard errors over seeds (stub diffusion)", async () => {
  const resultDir = await Deno.makeTempDir({ prefix: "analysis-test-" });
  const datasets: Record<string, D4rlDataset> = {
    "linear-medium": linearDataset(2000, 1),
    "linear-low": linearDataset(500, 2),
    "linear-high": linearDataset(500, 3),
  };
  const providers: AnalysisProviders = {
    dataset: (id) => Promise.resolve(datasets[id]),
    environment: () => Promise.resolve(new LinearEnvironment()),
    targetPolicy: (id) => Promise.resolve(constantPolicy(id === "linear-low" ? -0.6 : 0.6)),
    diffusion: (context) => Promise.resolve(stubDiffusion(context.dataset)),
    pets: (context, steps) => petsTrajectoryModel(context, steps),
  };
  const output = await analyze(
    {
      resultDir,
      cacheDir: `${resultDir}/cache`,
      preset: "smoke",
      dataset: "linear-medium",
      targets: ["linear-low", "linear-high"],
      guidances: [0, 0.5, 2],
      steps: 7,
    },
    providers,
  );
  for (const path of output.paths) {
    parseAnalysisResult(JSON.parse(await Deno.readTextFile(path)), path);
  }
  assert.equal(output.likelihood.trajectoriesPerSeed, 16);
  for (const series of output.likelihood.series) {
    if (series.model !== "diffusion") {
      assert.ok(series.standardError !== null && Number.isFinite(series.mean));
      continue;
    }
    const means = series.points.map((point) => point.mean);
    assert.ok(
      means[0] < means[1] && means[1] < means[2],
      `points out of λ order (the stub rises with λ): ${means}`,
    );
    assert.ok(series.points.every((point) => point.standardError !== null));
  }
  for (const series of output.dynamics.series) {
    assert.equal(series.mean.length, 7);
    assert.equal(series.seedCount, 2);
    assert.ok(series.mean.every((value) => Number.isFinite(value) && value >= 0));
  }
  // The PETS model is learned from data, so it errs more than the near-exact stub.
  const pets = output.dynamics.series.find((s) => s.source === "pets")!;
  const guided = output.dynamics.series.find((s) => s.source === "policy-guided")!;
  assert.equal(guided.guidance, 1);
  assert.ok(pets.mean[6] > guided.mean[6]);
  await Deno.remove(resultDir, { recursive: true });
});
