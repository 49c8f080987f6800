import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { silentReporter } from "../core/contracts/common.ts";
import { dataSourceSchema, type SourceContext } from "../core/contracts/source.ts";
import { Rng } from "../core/rng.ts";
import { validateTransitions } from "../core/transitions.ts";
import type { D4rlDataset, PolicyView } from "../core/types.ts";
import { pets } from "../plugins/sources/pets.ts";
import { DynamicsModel } from "../worldmodel/dynamics.ts";
import { parseEnsembleOptions, ProbabilisticEnsemble } from "../worldmodel/ensemble.ts";
import { petsOptionsSchema } from "../worldmodel/pets_options.ts";
import { policySampler, rollout, rolloutTransitions } from "../worldmodel/rollout.ts";

await initCompute("wasm");

const observationDim = 3;
const actionDim = 2;

/** Episodes of a stable linear system s' = 0.9 s + 0.2 B a + noise, reward −‖s‖². */
function linearDataset(size: number, seed: number): D4rlDataset {
  const rng = new Rng(seed);
  const observations = new Float32Array(size * observationDim);
  const nextObservations = new Float32Array(size * observationDim);
  const actions = new Float32Array(size * actionDim);
  const rewards = new Float32Array(size);
  const terminals = new Uint8Array(size);
  const timeouts = new Uint8Array(size);
  let state = [rng.normal(), rng.normal(), rng.normal()];
  for (let i = 0; i < size; i++) {
    const action = [Math.tanh(rng.normal()), Math.tanh(rng.normal())];
    const next = [
      0.9 * state[0] + 0.2 * action[0] + 0.02 * rng.normal(),
      0.9 * state[1] + 0.2 * action[1] + 0.02 * rng.normal(),
      0.9 * state[2] + 0.1 * (action[0] - action[1]) + 0.02 * rng.normal(),
    ];
    observations.set(state, i * observationDim);
    nextObservations.set(next, i * observationDim);
    actions.set(action, i * actionDim);
    rewards[i] = -(state[0] ** 2 + state[1] ** 2 + state[2] ** 2);
    timeouts[i] = (i + 1) % 50 === 0 ? 1 : 0;
    state = timeouts[i] ? [rng.normal(), rng.normal(), rng.normal()] : next;
  }
  return {
    size,
    observationDim,
    actionDim,
    observations,
    actions,
    rewards,
    terminals,
    timeouts,
    nextObservations,
    infos: {},
    metadata: {},
  };
}

const dataset = linearDataset(2000, 1);
const cacheDir = await Deno.makeTempDir({ prefix: "pets-test-" });
// Teardown once every test of this file has run (the fitted models are shared between tests).
globalThis.addEventListener("unload", () => Deno.removeSync(cacheDir, { recursive: true }));

function context(seed = 0): SourceContext {
  return {
    datasetId: "linear-test",
    dataset,
    environment: {
      id: "linear-test",
      observationDim,
      actionDim,
      maxEpisodeSteps: 50,
      scoreReference: { min: 0, max: 1 },
    },
    seed,
    preset: "smoke",
    agentSteps: 100,
    cacheDir,
    reporter: silentReporter,
  };
}

/** A target policy that always pushes the first action dimension to +0.8. */
const pushingPolicy: PolicyView = {
  actionDistribution(_observations, count) {
    const mean = new Float32Array(count * actionDim);
    const std = new Float32Array(count * actionDim).fill(0.05);
    for (let i = 0; i < count; i++) mean[i * actionDim] = 0.8;
    return { mean, std };
  },
};

Deno.test("pets: generates finite transitions of the right shapes, with the real-data share", async () => {
  const source = pets({ realFraction: 0.2 });
  dataSourceSchema.parse(source);
  const ctx = context();
  await source.prepare!(ctx);
  const first = await source.generate(ctx, { generation: 0 });
  validateTransitions(first, observationDim, actionDim, "pets generation 0");
  // smoke: 256 rollouts of 5 steps (no terminations here), plus 20 % real.
  assert.equal(first.size, 256 * 5 + Math.round((256 * 5 * 0.2) / 0.8));
  assert.ok(first.dones.every((done) => done === 0), "the linear system never terminates");

  const second = await source.generate(ctx, { generation: 1, policy: pushingPolicy });
  validateTransitions(second, observationDim, actionDim, "pets generation 1");
  // The retained buffer holds two generations at smoke.
  assert.equal(second.size, 2 * 256 * 5 + Math.round((2 * 256 * 5 * 0.2) / 0.8));
  // The newest generation's actions come from the target policy.
  const newest = second.actions.subarray(256 * 5 * actionDim, 2 * 256 * 5 * actionDim);
  let firstDimension = 0;
  for (let i = 0; i < newest.length; i += actionDim) firstDimension += newest[i];
  assert.ok(Math.abs(firstDimension / (newest.length / actionDim) - 0.8) < 0.05);
  source.dispose!();
});

Deno.test("pets: model rollouts follow the true dynamics closely", async () => {
  const source = pets({ realFraction: 0, deterministic: true });
  const ctx = context(3);
  const transitions = await source.generate(ctx, { generation: 1, policy: pushingPolicy });
  let squaredError = 0;
  let squaredScale = 0;
  for (let i = 0; i < transitions.size; i++) {
    const s = transitions.observations.subarray(i * 3, i * 3 + 3);
    const a = transitions.actions.subarray(i * 2, i * 2 + 2);
    const predicted = transitions.nextObservations.subarray(i * 3, i * 3 + 3);
    const truth = [
      0.9 * s[0] + 0.2 * a[0],
      0.9 * s[1] + 0.2 * a[1],
      0.9 * s[2] + 0.1 * (a[0] - a[1]),
    ];
    for (let j = 0; j < 3; j++) {
      squaredError += (predicted[j] - truth[j]) ** 2;
      squaredScale += (truth[j] - s[j]) ** 2;
    }
  }
  // One-step error well below the size of the state change itself.
  assert.ok(squaredError < 0.2 * squaredScale, `relative error ${squaredError / squaredScale}`);
  source.dispose!();
});

Deno.test("pets: the fitted models are cached by content, and reuse is identical", async () => {
  const ctx = context(5);
  const before = tf.memory().numTensors;
  const fresh = pets({ realFraction: 0 });
  const started = performance.now();
  const a = await fresh.generate(ctx, { generation: 0 });
  const fitSeconds = performance.now() - started;
  fresh.dispose!();
  const cached = pets({ realFraction: 0 });
  const restarted = performance.now();
  const b = await cached.generate(ctx, { generation: 0 });
  const loadSeconds = performance.now() - restarted;
  cached.dispose!();
  assert.deepEqual(b.nextObservations, a.nextObservations);
  assert.ok(loadSeconds < fitSeconds, "loading skips the fit");
  assert.equal(tf.memory().numTensors, before, "disposed sources hold no tensors");
  const files = [...Deno.readDirSync(`${cacheDir}/pets`)].map((entry) => entry.name);
  assert.ok(files.every((name) => name.endsWith(".bin")), `no temporary files left: ${files}`);
});

Deno.test("pets: MOPO's penalty lowers rewards by λ times the uncertainty", async () => {
  const ctx = context(5);
  const plain = pets({ realFraction: 0 });
  const penalised = pets({ realFraction: 0, penaltyCoefficient: 1 });
  const a = await plain.generate(ctx, { generation: 0 });
  const b = await penalised.generate(ctx, { generation: 0 });
  plain.dispose!();
  penalised.dispose!();
  let lower = 0;
  for (let i = 0; i < a.size; i++) if (b.rewards[i] < a.rewards[i]) lower++;
  assert.equal(lower, a.size);
});

Deno.test("pets: rollouts end where the environment's isTerminal says", async () => {
  const source = pets({ realFraction: 0 });
  const base = context();
  // Terminal once the first coordinate is positive: roughly half the states.
  const isTerminal = (observations: Float32Array, count: number) =>
    Uint8Array.from({ length: count }, (_, i) => observations[i * observationDim] > 0 ? 1 : 0);
  const ctx = { ...base, environment: { ...base.environment, isTerminal } };
  const transitions = await source.generate(ctx, { generation: 0 });
  source.dispose!();
  assert.ok(transitions.size < 256 * 5, "some rollouts stopped early");
  for (let i = 0; i < transitions.size; i++) {
    const next = transitions.nextObservations[i * observationDim];
    assert.equal(transitions.dones[i], next > 0 ? 1 : 0);
  }
});

Deno.test("pets: bad options", () => {
  assert.throws(() => pets({ rolloutLength: 0 }), /pets options\.rolloutLength/);
  assert.throws(() => pets({ unknownKey: 1 }), /unknown key 'unknownKey'/);
  assert.ok(petsOptionsSchema.parse({}).ensembleSize === 7);
});

Deno.test("rollout: trajectories stop at a terminal state and flatten to their valid steps", () => {
  const ensemble = new ProbabilisticEnsemble(
    observationDim + actionDim,
    observationDim + 1,
    parseEnsembleOptions({ hiddenSizes: [8], weightDecays: [0, 0] }),
    1,
  );
  const model = new DynamicsModel(ensemble, observationDim, actionDim);
  const count = 50;
  const starts = Float32Array.from({ length: count * observationDim }, (_, i) => i % 7);
  // Terminal once the first coordinate leaves (−2, 8): some rollouts stop early.
  const trajectories = rollout(model, policySampler(pushingPolicy), starts, count, {
    length: 6,
    penaltyCoefficient: 0,
    isTerminal: (next, rows) =>
      Uint8Array.from({ length: rows }, (_, i) => {
        const first = next[i * observationDim];
        return first <= -2 || first >= 8 ? 1 : 0;
      }),
    rng: new Rng(2),
  });
  assert.equal(trajectories.observations.length, count * 7 * observationDim);
  let taken = 0;
  for (let i = 0; i < count; i++) {
    const steps = trajectories.steps[i];
    assert.ok(steps >= 1 && steps <= 6);
    taken += steps;
    for (let t = 0; t < steps - 1; t++) assert.equal(trajectories.dones[i * 6 + t], 0);
    if (steps < 6) assert.equal(trajectories.dones[i * 6 + steps - 1], 1);
  }
  assert.ok(taken < count * 6, "some rollouts stopped early");
  assert.ok(trajectories.steps.some((steps) => steps === 6), "some rollouts ran every step");
  const transitions = rolloutTransitions(trajectories);
  assert.equal(transitions.size, taken);
  validateTransitions(transitions, observationDim, actionDim, "rollout");
  assert.ok(transitions.observations.every(Number.isFinite));
  model.dispose();
});
