import assert from "node:assert/strict";
import type { D4rlDataset } from "../core/types.ts";
import {
  cutWindows,
  normalizeRows,
  rowLayout,
  rowStats,
  splitByEpisode,
  splitEpisodes,
  unnormalizeRows,
  windowsToTransitions,
} from "../diffusion/windows.ts";
import { actionTransform } from "../diffusion/action_transform.ts";

/** A dataset whose observation is the row index, so windows show where they start. */
function indexedDataset(size: number, terminalsAt: number[], timeoutsAt: number[]): D4rlDataset {
  const terminals = new Uint8Array(size);
  const timeouts = new Uint8Array(size);
  terminalsAt.forEach((i) => (terminals[i] = 1));
  timeoutsAt.forEach((i) => (timeouts[i] = 1));
  return {
    size,
    observationDim: 1,
    actionDim: 1,
    observations: Float32Array.from({ length: size }, (_, i) => i),
    actions: Float32Array.from({ length: size }, (_, i) => (i % 2 ? 1 : -0.5)),
    rewards: Float32Array.from({ length: size }, (_, i) => 10 * i),
    terminals,
    timeouts,
    infos: {},
    metadata: {},
  };
}

function windowStarts(data: Float32Array, count: number, length: number, width: number): number[] {
  return Array.from({ length: count }, (_, w) => data[w * length * width]);
}

Deno.test("episodes split at terminals or timeouts", () => {
  const episodes = splitEpisodes(indexedDataset(30, [9], [19]));
  assert.deepEqual(episodes, [
    { start: 0, end: 9, terminal: true },
    { start: 10, end: 19, terminal: false },
    { start: 20, end: 29, terminal: false },
  ]);
});

Deno.test("window rules: stride, terminal only at the last step, no window ending on a timeout", () => {
  // Episode 0: rows 0..20 ending in a terminal; episode 1: rows 21..40 ending in a timeout;
  // episode 2: rows 41..43, shorter than a window.
  const dataset = indexedDataset(44, [20], [40]);
  const length = 4;
  const set = cutWindows(dataset, { trajectoryLength: length, stride: 8 });
  const layout = rowLayout(1, 1);
  const starts = windowStarts(set.data, set.count, length, layout.rowWidth);
  // Episode 0: starts 0, 8, 16 by stride, plus 17 (window 17..20 ends in the terminal).
  // Episode 1: starts 21, 29 by stride; 37 would end on the timeout row 40 and is dropped.
  assert.deepEqual(starts, [0, 8, 16, 17, 21, 29]);
  assert.deepEqual(Array.from(set.episodeOfWindow), [0, 0, 0, 0, 1, 1]);
  // done holds the terminal only, at the last step of window 17..20.
  const doneOf = (w: number, step: number) =>
    set.data[(w * length + step) * layout.rowWidth + layout.doneColumn];
  assert.equal(doneOf(3, 3), 1);
  assert.equal(doneOf(3, 2), 0);
  assert.equal(doneOf(2, 3), 0);
  // Actions are atanh of the clipped action.
  const actionOf = (w: number, step: number) =>
    set.data[(w * length + step) * layout.rowWidth + layout.actionOffset];
  assert.ok(Math.abs(actionOf(0, 0) - Math.atanh(-0.5)) < 1e-6);
  assert.ok(Math.abs(actionOf(0, 1) - Math.atanh(0.999)) < 1e-4);
});

Deno.test("episodeTails keeps each episode's last valid window, once", () => {
  // Same episodes as above. Episode 0's last valid window (17..20) ends in its terminal and is
  // kept either way; episode 1's (36..39, the last that does not end on the timeout row 40) is
  // new; an episode whose last valid start is a stride start gets no second copy.
  const dataset = indexedDataset(44, [20], [40]);
  const layout = rowLayout(1, 1);
  const starts = (tails: boolean, stride: number) => {
    const set = cutWindows(dataset, { trajectoryLength: 4, stride, episodeTails: tails });
    return windowStarts(set.data, set.count, 4, layout.rowWidth);
  };
  assert.deepEqual(starts(true, 8), [0, 8, 16, 17, 21, 29, 36]);
  assert.deepEqual(starts(false, 8), [0, 8, 16, 17, 21, 29]);
  // Stride 5: episode 1's starts 21, 26, 31, 36; 36 is its last valid start already.
  assert.deepEqual(starts(true, 5).filter((s) => s > 20), [21, 26, 31, 36]);
  // Episode 1's last rows before its timeout (36..39) are covered; the timeout row is not.
  const covered = new Set(starts(true, 8).flatMap((s) => [s, s + 1, s + 2, s + 3]));
  for (let row = 36; row <= 39; row++) assert.ok(covered.has(row), `row ${row}`);
  assert.ok(!covered.has(40));
});

Deno.test("a window ending on the dataset's unterminated end is dropped, and bad sizes are refused", () => {
  const set = cutWindows(indexedDataset(8, [], []), { trajectoryLength: 4, stride: 1 });
  assert.deepEqual(windowStarts(set.data, set.count, 4, 4), [0, 1, 2, 3]);
  assert.throws(
    () => cutWindows(indexedDataset(8, [], []), { trajectoryLength: 1, stride: 1 }),
    /trajectoryLength/,
  );
  assert.throws(
    () => cutWindows(indexedDataset(8, [], []), { trajectoryLength: 4, stride: 0 }),
    /stride/,
  );
});

Deno.test("z-scores per column, a zero std becomes 1, and the transform inverts", () => {
  const data = Float32Array.from([1, 5, 3, 5, 5, 5]);
  const stats = rowStats(data, 2);
  assert.deepEqual(Array.from(stats.mean), [3, 5]);
  assert.ok(Math.abs(stats.std[0] - Math.sqrt(8 / 3)) < 1e-6);
  assert.equal(stats.std[1], 1);
  const back = unnormalizeRows(normalizeRows(data, stats), stats);
  back.forEach((v, i) => assert.ok(Math.abs(v - data[i]) < 1e-5));
});

Deno.test("windows become transitions: s = x[:-1], s' = x[1:], a = tanh, done > 0.5", () => {
  const layout = rowLayout(2, 1);
  // One window of 3 rows: [o0, o1, action, reward, done].
  const windows = Float32Array.from([
    [0, 1, 0.5, 1, 0],
    [2, 3, -0.5, 2, 0.2],
    [4, 5, 100, 3, 0.9],
  ].flat());
  const t = windowsToTransitions(windows, 1, 3, layout);
  assert.equal(t.size, 2);
  assert.deepEqual(Array.from(t.observations), [0, 1, 2, 3]);
  assert.deepEqual(Array.from(t.nextObservations), [2, 3, 4, 5]);
  assert.ok(Math.abs(t.actions[0] - Math.tanh(0.5)) < 1e-6);
  assert.deepEqual(Array.from(t.rewards), [1, 2]);
  assert.deepEqual(Array.from(t.dones), [0, 0]);
  assert.throws(() => windowsToTransitions(windows, 2, 3, layout), /expected 2×3×5/);
});

Deno.test("validation windows come from held-out episodes", () => {
  const dataset = indexedDataset(400, [], Array.from({ length: 20 }, (_, i) => 20 * i + 19));
  const set = cutWindows(dataset, { trajectoryLength: 4, stride: 4 });
  const { train, validation } = splitByEpisode(set, 0.1, (e) => e.reverse());
  const heldOut = new Set(Array.from(validation, (w) => set.episodeOfWindow[w]));
  assert.deepEqual([...heldOut].sort(), [18, 19]);
  for (const w of train) assert.ok(!heldOut.has(set.episodeOfWindow[w]));
  assert.equal(train.length + validation.length, set.count);
});

Deno.test("real windows through z-scores and back give the dataset's own transitions", () => {
  // Observation 0 is the row index (to find the row), observation 1 a random walk; random actions.
  const size = 300;
  const timeouts = Array.from({ length: 10 }, (_, i) => 30 * i + 29);
  const dataset = indexedDataset(size, [], timeouts);
  dataset.observationDim = 2;
  dataset.observations = new Float32Array(size * 2);
  let walk = 0;
  for (let row = 0; row < size; row++) {
    const action = Math.sin(row * 1.7) * 0.98;
    dataset.actions[row] = action;
    dataset.observations.set([row, walk], row * 2);
    dataset.rewards[row] = row % 7 === 0 ? 1 : 0;
    walk += 0.1 * action;
  }
  const layout = rowLayout(2, 1);
  const set = cutWindows(dataset, { trajectoryLength: 8, stride: 4 });
  const stats = rowStats(set.data, layout.rowWidth);
  const back = unnormalizeRows(normalizeRows(set.data, stats), stats);
  const t = windowsToTransitions(back, set.count, 8, layout);
  assert.equal(t.size, set.count * 7);
  for (let i = 0; i < t.size; i++) {
    const row = Math.round(t.observations[i * 2]);
    assert.ok(Math.abs(t.nextObservations[i * 2] - (row + 1)) < 1e-3, "s' is the next row");
    assert.ok(Math.abs(t.observations[i * 2 + 1] - dataset.observations[row * 2 + 1]) < 1e-4);
    assert.ok(
      Math.abs(t.nextObservations[i * 2 + 1] - dataset.observations[(row + 1) * 2 + 1]) < 1e-4,
    );
    assert.ok(Math.abs(t.actions[i] - dataset.actions[row]) < 1e-4, "a = tanh(atanh(a))");
    assert.ok(Math.abs(t.rewards[i] - dataset.rewards[row]) < 1e-4, "r is the row's reward");
    assert.equal(t.dones[i], 0);
    assert.ok(!timeouts.includes(row), "no transition crosses an episode boundary");
  }
});

Deno.test("action transforms: atanh with its clip, or raw actions clipped back to [−1, 1]", () => {
  const atanh = actionTransform("atanh");
  const softer = actionTransform("atanh", 0.99);
  const none = actionTransform("none");
  // The authors' stretch of a saturated action, and the softer clip's.
  assert.ok(Math.abs(atanh.encode(1) - Math.atanh(0.999)) < 1e-12);
  assert.ok(Math.abs(softer.encode(-1) + Math.atanh(0.99)) < 1e-12);
  assert.equal(none.encode(1), 1);
  for (const transform of [atanh, softer, none]) {
    for (const action of [-0.9, -0.3, 0, 0.5, 0.95]) {
      assert.ok(Math.abs(transform.decode(transform.encode(action)) - action) < 1e-9);
    }
  }
  assert.equal(none.decode(1.7), 1);
  assert.equal(none.decode(-3), -1);
  assert.equal(none.slope(1.7), 0);
  assert.equal(none.slope(0.2), 1);
  assert.throws(() => actionTransform("atanh", 1), /clip must lie in \(0, 1\)/);

  // Windows store the encoding; transitions decode it.
  const dataset = indexedDataset(8, [], [7]);
  dataset.actions.set([1, -1, 0.5, 0.2, 0, 0, 0, 0]);
  for (const transform of [atanh, none]) {
    const set = cutWindows(dataset, {
      trajectoryLength: 4,
      stride: 4,
      encoding: { actionTransform: transform },
    });
    const { rowWidth, actionOffset } = set.layout;
    assert.equal(set.layout.actionTransform, transform);
    assert.equal(set.data[actionOffset], Math.fround(transform.encode(1)));
    const t = windowsToTransitions(set.data.subarray(0, 4 * rowWidth), 1, 4, set.layout);
    assert.ok(Math.abs(t.actions[0] - (transform.name === "none" ? 1 : 0.999)) < 1e-6);
    assert.ok(Math.abs(t.actions[2] - 0.5) < 1e-6);
  }
});

Deno.test("state differences: rows hold Δ = s_{t+1} − s_t (0 past the episode), transitions read s′ = s + Δ", () => {
  // Observations are the row index, so every Δ inside an episode is 1.
  const dataset = indexedDataset(12, [5], [11]);
  const set = cutWindows(dataset, {
    trajectoryLength: 3,
    stride: 1,
    encoding: { stateDifferences: true },
  });
  const { rowWidth, deltaOffset, actionOffset } = set.layout;
  assert.equal(deltaOffset, 1);
  assert.equal(actionOffset, 2);
  assert.equal(rowWidth, 5);
  assert.deepEqual(windowStarts(set.data, set.count, 3, rowWidth), [0, 1, 2, 3, 6, 7, 8]);
  for (let w = 0; w < set.count; w++) {
    for (let step = 0; step < 3; step++) {
      const row: number = (w * 3 + step) * rowWidth;
      // The window from row 3 ends at the terminal row 5: nothing follows it in its episode.
      const expected: number = set.data[row] === 5 ? 0 : 1;
      assert.equal(set.data[row + deltaOffset!], expected, `window ${w}, step ${step}`);
    }
  }
  // s′ comes from Δ, not from the next row: make them disagree.
  const windows = Float32Array.from([
    [0, 0.5, 0.1, 1, 0],
    [7, 0.5, 0.1, 1, 0],
  ].flat());
  const t = windowsToTransitions(windows, 1, 2, set.layout);
  assert.deepEqual(Array.from(t.observations), [0]);
  assert.deepEqual(Array.from(t.nextObservations), [0.5]);
});
