import assert from "node:assert/strict";
import { initCompute, tf } from "../core/compute.ts";
import { type PresetName, silentReporter } from "../core/contracts/common.ts";
import { type Artefact, dataSourceSchema, type SourceContext } from "../core/contracts/source.ts";
import { Rng } from "../core/rng.ts";
import type { D4rlDataset, PolicyView, Transitions } from "../core/types.ts";
import { loadDenoiser } from "../diffusion/cache.ts";
import { diffusionPresets } from "../diffusion/presets.ts";
import {
  type DiffusionOptions,
  parseDiffusionOptions,
  resolveSizes,
} from "../diffusion/options.ts";
import { guidanceOptionsOf, referenceTrainOptions, trainOptionsOf } from "../diffusion/settings.ts";
import { toTransitions } from "../core/d4rl.ts";
import { BehaviorPolicy } from "../worldmodel/behavior.ts";
import {
  behaviorEnsembleOptions,
  parsePetsOptions,
  resolvePetsOptions,
} from "../worldmodel/pets_options.ts";
import { policyGuided } from "../plugins/sources/policy_guided.ts";
import { unguided } from "../plugins/sources/unguided.ts";
import { setUNetPath } from "../diffusion/unet1d.ts";

await initCompute("wasm");

/** A 2-D point steered toward the origin with noisy actions, cut into timed-out episodes. */
function pointDataset(episodes: number, length: number, seed: number): D4rlDataset {
  const rng = new Rng(seed);
  const size = episodes * length;
  const dataset: D4rlDataset = {
    size,
    observationDim: 2,
    actionDim: 2,
    observations: new Float32Array(size * 2),
    actions: new Float32Array(size * 2),
    rewards: new Float32Array(size),
    terminals: new Uint8Array(size),
    timeouts: new Uint8Array(size),
    infos: {},
    metadata: {},
  };
  for (let e = 0; e < episodes; e++) {
    let x = rng.range(-1, 1);
    let y = rng.range(-1, 1);
    for (let t = 0; t < length; t++) {
      const row = e * length + t;
      const ax = Math.max(-1, Math.min(1, -2 * x + 0.3 * rng.normal()));
      const ay = Math.max(-1, Math.min(1, -2 * y + 0.3 * rng.normal()));
      dataset.observations.set([x, y], row * 2);
      dataset.actions.set([ax, ay], row * 2);
      x += 0.1 * ax;
      y += 0.1 * ay;
      dataset.rewards[row] = -Math.hypot(x, y);
      dataset.timeouts[row] = t === length - 1 ? 1 : 0;
    }
  }
  return dataset;
}

const dataset = pointDataset(40, 30, 1);
const cacheDir = await Deno.makeTempDir({ prefix: "pgd-diffusion-cache-" });

function context(seed: number): SourceContext {
  return {
    datasetId: "point-toy",
    dataset,
    environment: {
      id: "point-toy",
      observationDim: 2,
      actionDim: 2,
      maxEpisodeSteps: 30,
      scoreReference: { min: -30, max: 0 },
    },
    seed,
    preset: "smoke",
    agentSteps: 1000,
    cacheDir,
    reporter: silentReporter,
  };
}

/** A fixed Gaussian target policy that counts its calls. */
function countingPolicy(): PolicyView & { calls: number } {
  return {
    calls: 0,
    actionDistribution(_observations, count) {
      this.calls++;
      return {
        mean: new Float32Array(count * 2).fill(0.5),
        std: new Float32Array(count * 2).fill(0.3),
      };
    },
  };
}

function assertWellFormed(t: Transitions, size: number) {
  assert.equal(t.size, size);
  assert.equal(t.observations.length, size * 2);
  assert.equal(t.nextObservations.length, size * 2);
  assert.equal(t.actions.length, size * 2);
  assert.equal(t.rewards.length, size);
  assert.equal(t.dones.length, size);
  for (const array of [t.observations, t.nextObservations, t.actions, t.rewards, t.dones]) {
    assert.ok(array.every(Number.isFinite), "every value is finite");
  }
  assert.ok(t.actions.every((a) => a >= -1 && a <= 1), "actions lie in [−1, 1]");
  assert.ok(t.dones.every((d) => d === 0 || d === 1), "dones are 0 or 1");
}

const smoke = diffusionPresets.smoke;
const perGeneration = smoke.windowsPerGeneration * (smoke.trajectoryLength - 1);

Deno.test("factories: names, the contract's shape, paper defaults, and clear option errors", () => {
  const guided = policyGuided();
  const plain = unguided();
  dataSourceSchema.parse(guided);
  dataSourceSchema.parse(plain);
  assert.equal(guided.name, "policy-guided");
  assert.equal(plain.name, "unguided");
  assert.equal(guided.options.guidanceStrength, 1);
  assert.equal(plain.options.guidanceStrength, 0);
  assert.equal(guided.options.cosineWeight, 0.3);
  assert.equal(guided.options.guideDenoisedEstimate, true);
  assert.equal(guided.options.normalizeGuidance, true);
  assert.equal(guided.options.generationMode, "periodic");
  assert.throws(() => policyGuided({ guidanceStrength: -1 }), /policy-guided.*guidanceStrength/);
  assert.throws(() => policyGuided({ samplerStep: 3 }), /policy-guided.*samplerStep/);
  assert.throws(() => unguided({ guidanceStrength: 1 }), /unguided.*guidanceStrength/);
});

Deno.test("training noise spread: the paper's 1.2 by default, an option reaches the trainer", () => {
  const spread = (options: DiffusionOptions, preset: PresetName) =>
    trainOptionsOf(options, resolveSizes(options, preset), 1).logSigmaStd;
  for (const preset of ["smoke", "quick", "paper"] as const) {
    assert.equal(spread(parseDiffusionOptions("unguided", {}), preset), 1.2);
    assert.equal(spread(parseDiffusionOptions("unguided", { logSigmaStd: 1.6 }), preset), 1.6);
  }
  assert.equal(referenceTrainOptions(10, 16).logSigmaStd, 1.2);
  assert.throws(
    () => parseDiffusionOptions("unguided", { logSigmaStd: 0 }),
    /unguided options\.logSigmaStd/,
  );
});

Deno.test("regeneration schedule: periodic generations per preset, continuous generations", () => {
  const ctx = context(1);
  assert.equal(policyGuided().regenerateEvery!(ctx), 1000 / smoke.periodicGenerations);
  assert.equal(
    policyGuided().regenerateEvery!({ ...ctx, preset: "paper", agentSteps: 1_000_000 }),
    250_000,
  );
  assert.equal(
    policyGuided({ generationMode: "continuous" }).regenerateEvery!({
      ...ctx,
      preset: "paper",
      agentSteps: 1_000_000,
    }),
    10_000,
  );
});

Deno.test("prepare trains and caches a denoiser; both sources yield finite, well-shaped transitions", async () => {
  const before = tf.memory().numTensors;
  const guided = policyGuided();
  const guidedArtefacts: Artefact[] = [];
  const ctx = { ...context(1), recordArtefact: (a: Artefact) => guidedArtefacts.push(a) };
  await guided.prepare!(ctx);
  const files = [...Deno.readDirSync(cacheDir)].map((e) => e.name).filter((n) =>
    n.endsWith(".bin")
  );
  assert.equal(files.length, 1, "one cached model");
  const stored = await loadDenoiser(`${cacheDir}/${files[0]}`);
  const history = stored!.history;
  assert.ok(
    history[history.length - 1].validationLoss < history[0].validationLoss,
    "validation loss falls",
  );

  const policy = countingPolicy();
  const first = await guided.generate(ctx, { generation: 0, policy });
  assertWellFormed(first, perGeneration);
  assert.equal(policy.calls, 0, "the first generation is unguided");
  const second = await guided.generate(ctx, { generation: 1, policy });
  assertWellFormed(second, perGeneration);
  assert.ok(
    policy.calls >= smoke.samplerSteps - 1,
    "later generations are guided at every step but the last",
  );

  // The unguided source shares the cached model and never asks the policy.
  const plain = unguided();
  const watched = countingPolicy();
  // It records the model it used like the cell that trained it, though it found it in this
  // process: a cell's result must not depend on which cells shared a process.
  const plainArtefacts: Artefact[] = [];
  await plain.prepare!({ ...ctx, recordArtefact: (a: Artefact) => plainArtefacts.push(a) });
  // The guided cell used the model and its unguided generation 0, kept beside it.
  assert.deepEqual(guidedArtefacts.map((a) => a.kind), ["denoiser", "unguided-windows"]);
  assert.equal(guidedArtefacts[0].path, `${cacheDir}/${files[0]}`);
  assert.deepEqual(plainArtefacts, guidedArtefacts.slice(0, 1));
  assertWellFormed(await plain.generate(ctx, { generation: 1, policy: watched }), perGeneration);
  assert.equal(watched.calls, 0);
  assert.equal([...Deno.readDirSync(cacheDir)].filter((e) => e.name.endsWith(".bin")).length, 1);

  guided.dispose!();
  plain.dispose!();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("guidance moves synthetic actions toward the target policy", async () => {
  const ctx = context(1);
  const meanAction = (t: Transitions) => t.actions.reduce((s, a) => s + a, 0) / t.actions.length;
  const guided = policyGuided({ guidanceStrength: 2 });
  const plain = unguided();
  const policy = countingPolicy();
  const pushed = meanAction(await guided.generate(ctx, { generation: 1, policy }));
  const baseline = meanAction(await plain.generate(ctx, { generation: 1, policy }));
  assert.ok(
    pushed > baseline + 0.1,
    `mean action ${pushed} (guided toward 0.5) vs ${baseline} (unguided)`,
  );
  guided.dispose!();
  plain.dispose!();
});

Deno.test("both sources start from the same unguided first generation", async () => {
  const ctx = context(1);
  const guided = policyGuided();
  const plain = unguided();
  const fromGuided = await guided.generate(ctx, { generation: 0, policy: countingPolicy() });
  const fromPlain = await plain.generate(ctx, { generation: 0 });
  assert.deepEqual(fromGuided.observations, fromPlain.observations);
  assert.deepEqual(fromGuided.actions, fromPlain.actions);
  const later = await plain.generate(ctx, { generation: 1 });
  assert.notDeepEqual(later.observations, fromPlain.observations, "a new generation, new samples");
  guided.dispose!();
  plain.dispose!();
});

Deno.test("an unguided generation is kept in the cache folder and read from it, whoever asks", async () => {
  const ctx = context(1);
  const recorded: Artefact[] = [];
  const plain = unguided();
  const first = await plain.generate(
    { ...ctx, recordArtefact: (a: Artefact) => recorded.push(a) },
    { generation: 0 },
  );
  assert.deepEqual(recorded.map((a) => a.kind), ["denoiser", "unguided-windows"]);
  const file = recorded[1].path;
  assert.ok(file.startsWith(`${cacheDir}/unguided-`), file);
  plain.dispose!();
  // Another source's generation 0 in a fresh generator reads that file: shift every value
  // in it, and the next reader's observations shift alike.
  const bytes = await Deno.readFile(file);
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset));
  await Deno.writeFile(file, new Uint8Array(values.map((v) => v + 0.25).buffer));
  const guided = policyGuided();
  const again = await guided.generate(ctx, { generation: 0, policy: countingPolicy() });
  assert.equal(again.size, first.size);
  for (const i of [0, 1, 7, first.observations.length - 1]) {
    assert.ok(
      Math.abs(again.observations[i] - first.observations[i] - 0.25) < 1e-5,
      `observation ${i}: ${again.observations[i]} against ${first.observations[i]} + 0.25`,
    );
  }
  // A file of the wrong length is an error naming it, not a silent resample.
  await Deno.writeFile(file, bytes.subarray(0, bytes.length - 4));
  await assert.rejects(
    () => guided.generate(ctx, { generation: 0, policy: countingPolicy() }),
    (error: Error) => error.message.includes(file) && error.message.includes("expected"),
  );
  await Deno.remove(file);
  const resampled = await guided.generate(ctx, { generation: 0, policy: countingPolicy() });
  assert.deepEqual(resampled.observations, first.observations, "the same seed samples the same");
  guided.dispose!();
});

Deno.test("behaviorGuidance guides generation 0 toward the dataset's behaviour-cloned policy", async () => {
  const ctx = context(1);
  const guided = policyGuided({ behaviorGuidance: 4 });
  const plain = unguided();
  const toward = await guided.generate(ctx, { generation: 0 });
  const baseline = await plain.generate(ctx, { generation: 0 });
  assert.notDeepEqual(toward.actions, baseline.actions, "generation 0 is guided");
  // Under a behaviour policy fitted the same way, the guided actions are likelier.
  const { policy } = BehaviorPolicy.fit(
    toTransitions(ctx.dataset),
    behaviorEnsembleOptions(resolvePetsOptions(parsePetsOptions({}), "smoke")),
    5,
  );
  const likelihood = (t: Transitions) => {
    const { mean, std } = policy.actionDistribution(t.observations, t.size);
    let total = 0;
    for (let i = 0; i < t.actions.length; i++) {
      total += -0.5 * ((t.actions[i] - mean[i]) / std[i]) ** 2 - Math.log(std[i]);
    }
    return total / t.size;
  };
  assert.ok(
    likelihood(toward) > likelihood(baseline),
    `${likelihood(toward)} (behaviour-guided) vs ${likelihood(baseline)} (unguided)`,
  );
  // Later generations follow the agent's policy as before.
  const later = await guided.generate(ctx, { generation: 1, policy: countingPolicy() });
  assert.equal(later.size, baseline.size);
  policy.dispose();
  guided.dispose!();
  plain.dispose!();
});

Deno.test("nextStates 'dynamics-ensemble' takes s′ from PETS's ensemble, with MOPO's penalty if asked", async () => {
  const before = tf.memory().numTensors;
  // The toy's own rule, s′ = s + 0.1 a, and a termination rule to see the flags follow s′.
  const isTerminal = (observations: Float32Array, count: number) =>
    Uint8Array.from({ length: count }, (_, i) => observations[i * 2] > 0.3 ? 1 : 0);
  const artefacts: Artefact[] = [];
  const ctx = {
    ...context(1),
    environment: { ...context(1).environment, isTerminal },
    recordArtefact: (a: Artefact) => artefacts.push(a),
  };
  const modelled = unguided({ nextStates: "dynamics-ensemble" });
  const plain = unguided();
  const relabelled = await modelled.generate(ctx, { generation: 0 });
  const sampled = await plain.generate(ctx, { generation: 0 });
  assertWellFormed(relabelled, perGeneration);
  assert.deepEqual(relabelled.observations, sampled.observations, "the same windows");
  assert.deepEqual(relabelled.actions, sampled.actions);
  assert.deepEqual(relabelled.rewards, sampled.rewards, "rewards stay the denoiser's");
  assert.ok(artefacts.some((a) => a.kind === "pets-ensemble"), "the ensemble is recorded");
  const error = (t: Transitions) => {
    let total = 0;
    for (let i = 0; i < t.observations.length; i++) {
      total += Math.abs(t.nextObservations[i] - t.observations[i] - 0.1 * t.actions[i]);
    }
    return total / t.observations.length;
  };
  assert.ok(
    error(relabelled) < error(sampled) / 2,
    `one-step error ${error(relabelled)} (ensemble) vs ${error(sampled)} (denoiser)`,
  );
  assert.deepEqual(
    relabelled.dones,
    Float32Array.from(isTerminal(relabelled.nextObservations, perGeneration)),
  );
  assert.ok(relabelled.dones.some((d) => d === 1), "some next states end the episode");
  // MOPO's penalty lowers every reward by λ times the ensemble's uncertainty, nothing else.
  const penalised = unguided({ nextStates: "dynamics-ensemble", nextStatePenalty: 2 });
  const lowered = await penalised.generate(ctx, { generation: 0 });
  assert.deepEqual(lowered.nextObservations, relabelled.nextObservations);
  const drops = relabelled.rewards.map((r, i) => r - lowered.rewards[i]);
  assert.ok(drops.every((d) => d > 0), "every reward is lowered");
  assert.ok(new Set(drops).size > 1, "by each transition's own uncertainty");
  modelled.dispose!();
  plain.dispose!();
  penalised.dispose!();
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => unguided({ nextStates: "simulator" }), /nextStates/);
  assert.throws(
    () => unguided({ nextStatePenalty: 1 }),
    /unguided options\.nextStatePenalty: applies only with nextStates "dynamics-ensemble"/,
  );
});

Deno.test("continuous generation keeps the last generations; real data mixes in by ratio", async () => {
  const ctx = context(1);
  const continuous = policyGuided({ generationMode: "continuous", replayGenerations: 2 });
  const share = Math.round(
    (smoke.windowsPerGeneration * smoke.periodicGenerations) / smoke.continuousGenerations,
  );
  const unit = share * (smoke.trajectoryLength - 1);
  const policy = countingPolicy();
  const sizes = [];
  for (let generation = 0; generation < 3; generation++) {
    sizes.push((await continuous.generate(ctx, { generation, policy })).size);
  }
  assert.deepEqual(sizes, [unit, 2 * unit, 2 * unit]);
  continuous.dispose!();

  const mixed = unguided({ realFraction: 0.25 });
  const data = await mixed.generate(ctx, { generation: 0 });
  assertWellFormed(data, perGeneration + Math.round(perGeneration / 3));
  mixed.dispose!();
});

Deno.test("a new seed trains its own model", async () => {
  const source = unguided();
  await source.prepare!(context(2));
  assert.equal([...Deno.readDirSync(cacheDir)].filter((e) => e.name.endsWith(".bin")).length, 2);
  source.dispose!();
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("the whole-network U-Net kernels train models of their own: the op path's stay apart", async () => {
  const folder = await Deno.makeTempDir({ prefix: "pgd-diffusion-paths-" });
  const models = () => [...Deno.readDirSync(folder)].filter((e) => e.name.endsWith(".bin")).length;
  try {
    for (const [path, expected] of [["ops", 1], ["auto", 2], ["ops", 2]] as const) {
      setUNetPath(path);
      const source = unguided();
      await source.prepare!({ ...context(3), cacheDir: folder });
      source.dispose!();
      assert.equal(models(), expected, `after preparing on the '${path}' path`);
    }
  } finally {
    setUNetPath("auto");
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("guidanceStepScaling 'table4' scales λ by 256 / sampler steps; 'none' keeps it", () => {
  const quickSteps = { samplerSteps: 64 };
  const plain = parseDiffusionOptions("policy-guided", { guidanceStrength: 1.5 });
  assert.equal(plain.guidanceStepScaling, "none");
  assert.equal(guidanceOptionsOf(plain, quickSteps).strength, 1.5);
  const scaled = parseDiffusionOptions("policy-guided", {
    guidanceStrength: 1.5,
    guidanceStepScaling: "table4",
  });
  assert.equal(guidanceOptionsOf(scaled, quickSteps).strength, 6);
  assert.equal(guidanceOptionsOf(scaled, { samplerSteps: 256 }).strength, 1.5);
  assert.equal(guidanceOptionsOf(scaled, quickSteps, 0.5).strength, 2);
  assert.throws(
    () => parseDiffusionOptions("policy-guided", { guidanceStepScaling: "double" }),
    /policy-guided options\.guidanceStepScaling/,
  );
});

Deno.test("row encodings and per-step GroupNorm train their own models and yield transitions", async () => {
  const before = tf.memory().numTensors;
  const ctx = context(0);
  const models = () => [...Deno.readDirSync(cacheDir)].filter((e) => e.name.endsWith(".bin"));
  const atanh = unguided();
  await atanh.prepare!(ctx);
  const raw = unguided({ actionTransform: "none" });
  await raw.prepare!(ctx);
  const deltas = unguided({ stateDifferences: true });
  await deltas.prepare!(ctx);
  const perStep = unguided({ groupNormPerStep: true });
  await perStep.prepare!(ctx);
  assert.equal(models().length, 4, "the row encoding and the norm are part of the cache key");
  const data = await raw.generate(ctx, { generation: 0 });
  assertWellFormed(data, perGeneration);
  // The point task's actions are not saturated: decoded raw actions are not all at the clip.
  assert.ok(data.actions.some((a) => Math.abs(a) < 0.9));
  const stepped = await deltas.generate(ctx, { generation: 0 });
  assertWellFormed(stepped, perGeneration);
  // The point moves a small step: s′ = s + Δ stays near s (the data's steps are 0.1·a).
  let largest = 0;
  for (let i = 0; i < stepped.observations.length; i++) {
    largest = Math.max(largest, Math.abs(stepped.nextObservations[i] - stepped.observations[i]));
  }
  assert.ok(largest < 1, `largest |s′ − s| ${largest}`);
  assertWellFormed(await perStep.generate(ctx, { generation: 0 }), perGeneration);
  for (const source of [atanh, raw, deltas, perStep]) source.dispose!();
  assert.equal(tf.memory().numTensors, before);
  assert.throws(
    () => parseDiffusionOptions("unguided", { actionTransform: "tanh" }),
    /unguided options\.actionTransform/,
  );
  assert.throws(() => parseDiffusionOptions("unguided", { actionClip: 1 }), /options\.actionClip/);
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("windowEpisodeTails trains its own model on each episode's last window too", async () => {
  const windowsSeen = async (options: Record<string, unknown>) => {
    const logs: string[] = [];
    const ctx = {
      ...context(3),
      reporter: { ...silentReporter, log: (m: string) => logs.push(m) },
    };
    const source = unguided(options);
    await source.prepare!(ctx);
    source.dispose!();
    const line = logs.find((m) => m.includes("training a denoiser on"));
    assert.ok(line, `a denoiser was trained for ${JSON.stringify(options)}`);
    const [, train, heldOut] = line.match(/on (\d+) windows \((\d+) held out\)/)!;
    return Number(train) + Number(heldOut);
  };
  // 40 episodes of 30 rows, windows of 8, stride 8: starts 0, 8, 16 (the last valid start is
  // 21, since a window may not end on the timeout row 29), and 21 with the option.
  assert.equal(await windowsSeen({}), 40 * 3);
  assert.equal(await windowsSeen({ windowEpisodeTails: true }), 40 * 4);
  assert.equal(parseDiffusionOptions("unguided", {}).windowEpisodeTails, false);
});
