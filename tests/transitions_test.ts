import { assertEquals } from "./assert.ts";
import {
  allocateTransitions,
  BatchSampler,
  concatTransitions,
  gatherTransitions,
  mixWithReal,
  realRowCount,
  sampleTransitions,
} from "../core/transitions.ts";
import { Rng } from "../core/rng.ts";
import type { Transitions } from "../core/types.ts";

/** Rows numbered so every value says where it came from: row r holds r·10 + column. */
function numbered(size: number, od = 2, ad = 3): Transitions {
  const out = allocateTransitions(size, od, ad);
  for (let r = 0; r < size; r++) {
    for (let j = 0; j < od; j++) {
      out.observations[r * od + j] = r * 10 + j;
      out.nextObservations[r * od + j] = -(r * 10 + j);
    }
    for (let j = 0; j < ad; j++) out.actions[r * ad + j] = r * 10 + 5 + j;
    out.rewards[r] = r + 0.5;
    out.dones[r] = r % 2;
  }
  return out;
}

/** The row-by-row copy the sources wrote by hand before the helpers (a frozen reference). */
function referenceTake(from: Transitions, rows: ArrayLike<number>): Transitions {
  const { observationDim: od, actionDim: ad } = from;
  const out = allocateTransitions(rows.length, od, ad);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    out.observations.set(from.observations.subarray(row * od, (row + 1) * od), i * od);
    out.nextObservations.set(from.nextObservations.subarray(row * od, (row + 1) * od), i * od);
    out.actions.set(from.actions.subarray(row * ad, (row + 1) * ad), i * ad);
    out.rewards[i] = from.rewards[row];
    out.dones[i] = from.dones[row];
  }
  return out;
}

Deno.test("transitions: allocate gives zeroed arrays of the right lengths", () => {
  const t = allocateTransitions(4, 2, 3);
  assertEquals([t.size, t.observationDim, t.actionDim], [4, 2, 3]);
  assertEquals(
    [t.observations, t.actions, t.rewards, t.nextObservations, t.dones].map((a) => a.length),
    [8, 12, 4, 8, 4],
  );
  assertEquals(t.observations.every((v) => v === 0), true);
});

Deno.test("transitions: gather copies exactly the rows asked for, into a new or given set", () => {
  const from = numbered(5);
  const rows = [4, 0, 0, 2];
  const gathered = gatherTransitions(from, rows);
  assertEquals(gathered, referenceTake(from, rows));
  assertEquals(Array.from(gathered.observations), [40, 41, 0, 1, 0, 1, 20, 21]);
  assertEquals(Array.from(gathered.rewards), [4.5, 0.5, 0.5, 2.5]);
  const into = allocateTransitions(4, 2, 3);
  assertEquals(gatherTransitions(from, Int32Array.from(rows), into) === into, true);
  assertEquals(into, gathered);
});

Deno.test("transitions: sample draws rng.int(size) per row, as the diffusion source did", () => {
  const from = numbered(7);
  const rng = new Rng(3);
  const reference = new Rng(3);
  const rows = Array.from({ length: 9 }, () => reference.int(from.size));
  assertEquals(sampleTransitions(from, 9, rng), referenceTake(from, rows));
  assertEquals(rng.uniform(), reference.uniform());
});

Deno.test("transitions: concatenate keeps order and every field", () => {
  const a = numbered(2);
  const b = gatherTransitions(numbered(4), [3, 1, 2]);
  const joined = concatTransitions([a, b]);
  assertEquals(joined, referenceTake(numbered(4), [0, 1, 3, 1, 2]));
});

Deno.test("transitions: the real-data mix, its count formula, and its draws", () => {
  assertEquals(realRowCount(240, 0.0625), 16);
  assertEquals(realRowCount(1000, 0.05), 53);
  assertEquals(realRowCount(3, 0.05), 0);
  const synthetic = numbered(190, 2, 3);
  const real = numbered(11, 2, 3);
  const reference = new Rng(9);
  const count = Math.round((synthetic.size * 0.05) / (1 - 0.05));
  const realRows = reference.indices(real.size, new Int32Array(count));
  const expected = concatTransitions([synthetic, referenceTake(real, realRows)]);
  assertEquals(mixWithReal(synthetic, real, 0.05, new Rng(9)), expected);
  // Nothing to add: the synthetic set itself, and no draw taken.
  const rng = new Rng(9);
  assertEquals(mixWithReal(numbered(3), real, 0.05, rng).size, 3);
  assertEquals(rng.uniform(), new Rng(9).uniform());
});

Deno.test("transitions: the batch sampler's batches equal a gather of its draws", () => {
  const from = numbered(13);
  const sampler = new BatchSampler(6, 2, 3, new Rng(5));
  const reference = new Rng(5);
  for (let k = 0; k < 3; k++) {
    const rows = reference.indices(from.size, new Int32Array(6));
    assertEquals({ ...sampler.sample(from) }, referenceTake(from, rows));
  }
});
