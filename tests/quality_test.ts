/**
 * The data-quality record: on real Maze2d data it finds exact dynamics, no
 * impossible states and a state distance near zero; each measure moves when
 * the data are spoiled in its own way (noisy next states, shuffled actions,
 * states pushed into walls, a shifted state distribution), and the
 * likelihood ranks the policy the actions came from above another.
 */
import assert from "node:assert/strict";
import {
  countSampleSize,
  distanceSampleSize,
  energyDistance,
  QualityProbe,
  qualitySampleSize,
} from "../core/quality.ts";
import { Rng } from "../core/rng.ts";
import { copyTransitions, gatherTransitions } from "../core/transitions.ts";
import type { PolicyView } from "../core/types.ts";
import { toTransitions } from "../core/d4rl.ts";
import { makeMaze2d, maze2d, wallClearance } from "../plugins/envs/maze2d.ts";

const dataset = await maze2d().collect!({ dataset: "maze2d-umaze", seed: 3, preset: "smoke" });
const real = toTransitions(dataset);

Deno.test("quality: real data have exact dynamics, no impossible states and sit near real data", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const probe = new QualityProbe(real, environment, 1);
    const reference = probe.reference;
    assert.equal(reference.sampleSize, qualitySampleSize);
    assert.ok(reference.simulator, "maze2d can be set to a state");
    assert.ok(reference.simulator.position < 1e-5, `position ${reference.simulator.position}`);
    assert.ok(reference.simulator.velocity < 1e-4, `velocity ${reference.simulator.velocity}`);
    assert.equal(reference.simulator.reward, 0);
    assert.equal(reference.simulator.rewardBias, 0);
    assert.equal(reference.invalidFraction, 0);
    assert.ok(reference.contactFraction !== undefined);
    assert.ok(reference.stateDistance < 0.05, `state distance ${reference.stateDistance}`);

    const again = probe.measure(real, 0, 0);
    assert.ok(again.stateDistance < 0.05);
    assert.ok(again.simulator!.position < 1e-5);
  } finally {
    environment.close();
  }
});

Deno.test("quality: each measure moves when the data are spoiled its own way", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const probe = new QualityProbe(real, environment, 1);
    const reference = probe.reference;
    const rng = new Rng(5);

    const noisy = copyTransitions(real);
    for (let i = 0; i < noisy.nextObservations.length; i++) {
      noisy.nextObservations[i] += 0.05 * rng.normal();
    }
    const noisyRecord = probe.measure(noisy, 1, 0);
    // Rewards raised (or lowered) by 0.3 on every transition: the bias moves by exactly that
    // against the same rows of the unchanged data (two probes of one seed draw the same rows).
    const unchanged = new QualityProbe(real, environment, 1).measure(real, 6, 0).simulator!;
    for (const offset of [0.3, -0.3]) {
      const shifted = copyTransitions(real);
      shifted.rewards.forEach((r, i) => shifted.rewards[i] = r + offset);
      const moved = new QualityProbe(real, environment, 1).measure(shifted, 6, 0).simulator!;
      assert.ok(
        Math.abs(moved.rewardBias! - unchanged.rewardBias! - offset) < 1e-6,
        `bias ${unchanged.rewardBias} → ${moved.rewardBias} for ${offset}`,
      );
      assert.ok(
        moved.reward > unchanged.reward + 0.2,
        `error ${unchanged.reward} → ${moved.reward}`,
      );
    }
    assert.ok(noisyRecord.simulator!.position > 0.02, `noisy ${noisyRecord.simulator!.position}`);
    assert.ok(noisyRecord.simulator!.velocity > 0.02);

    const shuffled = copyTransitions(real);
    const order = rng.shuffle([...Array(real.size).keys()]);
    order.forEach((from, to) =>
      shuffled.actions.set(real.actions.subarray(from * 2, from * 2 + 2), to * 2)
    );
    const shuffledRecord = probe.measure(shuffled, 2, 0);
    assert.ok(
      shuffledRecord.actionFit > 1.5 * reference.actionFit,
      `shuffled ${shuffledRecord.actionFit} against real ${reference.actionFit}`,
    );

    // Every state moved into the nearest wall's centre: all impossible, all in contact.
    const walled = copyTransitions(real);
    const wall = environment.cells.walls[0];
    for (let row = 0; row < walled.size; row++) {
      walled.observations[row * 4] = wall[0] - 0.2;
      walled.observations[row * 4 + 1] = wall[1] - 0.2;
    }
    assert.equal(wallClearance(environment.cells.walls, wall[0] - 0.2, wall[1] - 0.2), 0);
    const walledRecord = probe.measure(walled, 3, 0);
    assert.equal(walledRecord.invalidFraction, 1);
    assert.equal(walledRecord.contactFraction, 1);
    assert.ok(walledRecord.stateDistance > 10 * reference.stateDistance + 0.1);

    assert.equal(reference.doneFraction, 0, "maze2d has no terminals");
    const allDone = copyTransitions(real);
    allDone.dones.fill(1);
    assert.equal(probe.measure(allDone, 5, 0).doneFraction, 1);

    const nonFinite = copyTransitions(real);
    nonFinite.nextObservations.fill(Number.NaN);
    assert.equal(probe.measure(nonFinite, 4, 0).invalidFraction, 1);
  } finally {
    environment.close();
  }
});

Deno.test("quality: replaying runs of real transitions stays on them; a wrong action drifts away", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const probe = new QualityProbe(real, environment, 8);
    const curve = probe.reference.replayError!;
    assert.equal(curve.length, 15);
    assert.ok(Math.max(...curve) < 1e-4, `real replay error ${Math.max(...curve)}`);
    // Actions mirrored: the recorded states are no longer what the actions lead to, more so with time.
    const mirrored = copyTransitions(real);
    for (let i = 0; i < mirrored.actions.length; i++) mirrored.actions[i] = -mirrored.actions[i];
    const drift = probe.measure(mirrored, 0, 0).replayError!;
    assert.ok(drift[0] > 1e-3, `first step ${drift[0]}`);
    assert.ok(drift[14] > 5 * drift[0], `error grows along the run: ${drift[0]} → ${drift[14]}`);
    // Transitions that are not runs (every row shuffled) have no curve.
    const order = new Rng(3).shuffle([...Array(real.size).keys()]);
    assert.equal(probe.measure(gatherTransitions(real, order), 1, 0).replayError, undefined);
  } finally {
    environment.close();
  }
});

Deno.test("quality: the likelihood ranks the policy the actions came from first", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const probe = new QualityProbe(real, environment, 2);
    // A policy that knows each state's action (looked up by position) and one that does not.
    const lookup = new Map<string, Float32Array>();
    for (let row = 0; row < real.size; row++) {
      lookup.set(
        real.observations.subarray(row * 4, row * 4 + 4).join(","),
        real.actions.subarray(row * 2, row * 2 + 2),
      );
    }
    const policy = (exact: boolean): PolicyView => ({
      actionDistribution(observations, count) {
        const mean = new Float32Array(count * 2);
        for (let i = 0; i < count; i++) {
          const key = observations.subarray(i * 4, i * 4 + 4).join(",");
          if (exact) mean.set(lookup.get(key) ?? [0, 0], i * 2);
        }
        return { mean, std: new Float32Array(count * 2).fill(0.3) };
      },
    });
    const record = probe.measure(real, 0, 0, policy(true));
    // The held-out real actions under the same guide: the mark guided data should clear.
    const order = new Rng(4).shuffle([...Array(real.size).keys()]);
    const shuffled = gatherTransitions(real, order);
    shuffled.actions.set(gatherTransitions(real, new Rng(5).shuffle(order)).actions);
    const offPolicy = probe.measure(shuffled, 1, 0, policy(true));
    assert.ok(Math.abs(record.realGuideLogLikelihood! - record.guideLogLikelihood!) < 0.5);
    assert.equal(offPolicy.realGuideLogLikelihood, record.realGuideLogLikelihood);
    assert.ok(offPolicy.guideLogLikelihood! < offPolicy.realGuideLogLikelihood! - 1);
    probe.finish(policy(false));
    assert.ok(record.guideLogLikelihood! > record.finalLogLikelihood! + 1);
    assert.ok(probe.records().every((r) => Number.isFinite(r.finalLogLikelihood)));
    assert.equal(probe.records()[0], probe.reference);
  } finally {
    environment.close();
  }
});

Deno.test("quality: the energy distance is near 0 for draws of one distribution, larger for a shift", () => {
  const rng = new Rng(9);
  const x = Float32Array.from({ length: 600 }, () => rng.normal());
  const y = Float32Array.from({ length: 600 }, () => rng.normal());
  assert.ok(Math.abs(energyDistance(x, y, 3)) < 0.05, `${energyDistance(x, y, 3)}`);
  const shifted = y.map((value) => value + 1);
  assert.ok(energyDistance(x, shifted, 3) > 5 * Math.abs(energyDistance(x, y, 3)));
});

Deno.test("quality: a reward counts as rewarded above the middle of the real rewards' range", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const probe = new QualityProbe(real, environment, 4);
    const small = copyTransitions(real);
    small.rewards.fill(0.01);
    assert.equal(probe.measure(small, 0, 0).rewardedFraction, 0);
    const large = copyTransitions(real);
    large.rewards.fill(0.9);
    assert.equal(probe.measure(large, 1, 0).rewardedFraction, 1);
  } finally {
    environment.close();
  }
});

Deno.test("quality: fractions and the mean reward count every transition of the set", async () => {
  // A 256-row sample would scatter a 6% rewarded fraction by ±1.5 points.
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const probe = new QualityProbe(real, environment, 6);
    let realRewarded = 0;
    for (const reward of real.rewards) if (reward > 0.5) realRewarded += 1;
    assert.equal(probe.reference.countSampleSize, Math.min(countSampleSize, real.size));
    assert.equal(probe.reference.rewardedFraction, realRewarded / real.size);
    const marked = copyTransitions(real);
    marked.rewards.fill(0);
    for (let row = 0; row < marked.size; row += 17) marked.rewards[row] = 1;
    marked.dones.fill(0);
    marked.dones[0] = 1;
    const record = probe.measure(marked, 0, 0);
    assert.equal(record.countSampleSize, marked.size);
    assert.ok(record.sampleSize < marked.size, "the test needs a set larger than the sample");
    assert.equal(record.rewardedFraction, Math.ceil(marked.size / 17) / marked.size);
    assert.equal(record.meanReward, Math.ceil(marked.size / 17) / marked.size);
    assert.equal(record.doneFraction, 1 / marked.size);
  } finally {
    environment.close();
  }
});

Deno.test("quality: the state distance between two real draws stays near zero across probes", async () => {
  // The distance sample is larger than the rest of the record's so that this
  // noise floor is small next to a synthetic set's distance (0.01–0.03 at quick).
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const floors: number[] = [];
    for (let seed = 0; seed < 6; seed++) {
      const reference = new QualityProbe(real, environment, 100 + seed).reference;
      assert.equal(
        reference.distanceSampleSize,
        Math.min(distanceSampleSize, Math.floor(real.size / 3)),
      );
      floors.push(reference.stateDistance);
    }
    const widest = Math.max(...floors.map(Math.abs));
    assert.ok(widest < 0.006, `real-against-real distances ${floors.map((d) => d.toFixed(4))}`);
  } finally {
    environment.close();
  }
});
