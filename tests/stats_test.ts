import { assertEquals, assertOk, assertThrows } from "./assert.ts";
import {
  averageEstimates,
  estimateMean,
  interquartileMean,
  logGamma,
  mean,
  pairedTTest,
  quantileOfSorted,
  regularizedIncompleteBeta,
  sampleVariance,
  standardError,
  stratifiedBootstrap,
  studentTCdf,
  welchTestOfEstimates,
  welchTTest,
} from "../stats/mod.ts";

function assertClose(actual: number, expected: number, tolerance: number, what: string) {
  assertOk(
    Math.abs(actual - expected) <= tolerance,
    `${what}: expected ${expected} ± ${tolerance}, got ${actual}`,
  );
}

Deno.test("mean, sample variance and standard error of a known sample", () => {
  const values = [2, 4, 4, 4, 5, 5, 7, 9];
  assertEquals(mean(values), 5);
  // Σ(x − 5)² = 32 over n − 1 = 7.
  assertClose(sampleVariance(values), 32 / 7, 1e-12, "variance");
  assertClose(standardError(values), Math.sqrt(32 / 7 / 8), 1e-12, "standard error");
  const single = estimateMean([3]);
  assertEquals(single.mean, 3);
  assertOk(Number.isNaN(single.standardError), "one value has no standard error");
  assertOk(Number.isNaN(mean([])), "no values have no mean");
});

Deno.test("log-gamma and the regularised incomplete beta match closed forms", () => {
  assertClose(logGamma(1), 0, 1e-13, "ln Γ(1)");
  assertClose(logGamma(5), Math.log(24), 1e-12, "ln Γ(5)");
  assertClose(logGamma(0.5), 0.5 * Math.log(Math.PI), 1e-12, "ln Γ(1/2)");
  // Reference values from Python's math.lgamma.
  assertClose(logGamma(100.5), 361.4355404677776, 1e-9, "ln Γ(100.5)");
  assertClose(logGamma(3.3), 0.9870985778947339, 1e-12, "ln Γ(3.3)");
  // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 − (1 − x)^b.
  for (const x of [0.01, 0.3, 0.5, 0.77, 0.99]) {
    assertClose(regularizedIncompleteBeta(x, 1, 1), x, 1e-12, `I_${x}(1,1)`);
    assertClose(regularizedIncompleteBeta(x, 3.5, 1), x ** 3.5, 1e-12, `I_${x}(3.5,1)`);
    assertClose(regularizedIncompleteBeta(x, 1, 2.5), 1 - (1 - x) ** 2.5, 1e-12, `I_${x}(1,2.5)`);
  }
  // Symmetry I_x(a, b) = 1 − I_{1−x}(b, a).
  assertClose(
    regularizedIncompleteBeta(0.35, 4.2, 7.9),
    1 - regularizedIncompleteBeta(0.65, 7.9, 4.2),
    1e-13,
    "symmetry",
  );
  assertThrows(() => regularizedIncompleteBeta(1.5, 1, 1), RangeError, "x must be in [0, 1]");
});

Deno.test("Student-t CDF matches textbook values and numerical integration", () => {
  // Cauchy (ν = 1): P(T ≤ 1) = 3/4.
  assertClose(studentTCdf(1, 1), 0.75, 1e-12, "ν=1, t=1");
  // ν = 2 has the closed form ½ + t / (2√(2 + t²)).
  assertClose(studentTCdf(1.3, 2), 0.5 + 1.3 / (2 * Math.sqrt(2 + 1.69)), 1e-12, "ν=2");
  // Table value: t₀.₀₂₅,₁₀ = 2.228139 (two-sided 5%).
  assertClose(2 * studentTCdf(-2.228138851986, 10), 0.05, 1e-9, "ν=10 critical value");
  // P(T > 2.5) with fractional ν = 3.7, by Simpson integration of the density in Python.
  assertClose(1 - studentTCdf(2.5, 3.7), 0.03591101145590603, 1e-9, "ν=3.7");
  assertEquals(studentTCdf(0, 7), 0.5);
});

Deno.test("Welch's t-test matches independently computed t, ν and p", () => {
  // The worked example of Welch's test (two samples of 15); reference values
  // from Python (math module, t density integrated by Simpson's rule).
  const a = [
    27.5,
    21.0,
    19.0,
    23.6,
    17.0,
    17.9,
    16.9,
    20.1,
    21.9,
    22.6,
    23.1,
    19.6,
    19.0,
    21.7,
    21.4,
  ];
  const b = [
    27.1,
    22.0,
    20.8,
    23.4,
    23.4,
    23.5,
    25.8,
    22.0,
    24.8,
    20.2,
    21.9,
    22.1,
    22.9,
    20.5,
    24.4,
  ];
  const first = welchTTest(a, b);
  assertClose(first.t, -2.45535639828601, 1e-10, "t");
  assertClose(first.degreesOfFreedom, 24.98852929023142, 1e-9, "ν");
  assertClose(first.pValue, 0.02137800146286184, 1e-8, "p");

  // Four seeds each, as in the paper's Table 2.
  const second = welchTTest([46.1, 45.8, 46.5, 45.9], [44.7, 44.6, 44.9, 44.6]);
  assertClose(second.t, 8.080084763427452, 1e-9, "t (4 seeds)");
  assertClose(second.degreesOfFreedom, 4.199913049778973, 1e-9, "ν (4 seeds)");
  assertClose(second.pValue, 0.001034336231266031, 1e-8, "p (4 seeds)");

  const third = welchTTest([76.2, 40.1, 99.0, 89.5], [50.0, 47.1, 55.3, 47.6]);
  assertClose(third.pValue, 0.13448513306391263, 1e-8, "p (noisy, not significant)");
  assertOk(
    third.difference > 0 && third.pValue > 0.05,
    "a large noisy difference is not significant",
  );

  // Swapping the samples flips t and keeps p.
  const swapped = welchTTest(b, a);
  assertClose(swapped.t, -first.t, 1e-12, "antisymmetric t");
  assertClose(swapped.pValue, first.pValue, 1e-14, "symmetric p");
});

Deno.test("Welch's t-test edge cases: one seed, constant samples", () => {
  assertOk(Number.isNaN(welchTTest([1], [2, 3]).pValue), "one seed cannot be tested");
  assertEquals(welchTTest([2, 2, 2], [2, 2]).pValue, 1);
  const certain = welchTTest([3, 3, 3], [2, 2, 2]);
  assertEquals(certain.pValue, 0);
  assertEquals(certain.t, Infinity);
});

Deno.test("an average of per-dataset estimates is tested like a sample", () => {
  // One dataset: the average is the estimate itself, and the test equals Welch's.
  const a = [10.2, 11.5, 9.8, 10.9];
  const b = [8.1, 9.0, 8.7, 7.9];
  const direct = welchTTest(a, b);
  const viaAverage = welchTestOfEstimates(
    averageEstimates([estimateMean(a)]),
    averageEstimates([estimateMean(b)]),
  );
  assertClose(viaAverage.pValue, direct.pValue, 1e-14, "p through averageEstimates");

  // Two datasets with equal variance and n: SE² = (s²/n)/2 and ν = 2(n − 1).
  const left = estimateMean([1, 2, 3, 4]);
  const right = estimateMean([11, 12, 13, 14]);
  const average = averageEstimates([left, right]);
  assertEquals(average.mean, 7.5);
  assertClose(average.standardError, Math.sqrt((left.standardError ** 2) / 2), 1e-12, "SE");
  assertClose(average.degreesOfFreedom, 6, 1e-12, "ν");
  assertEquals(average.count, 8);
});

Deno.test("paired t-test: closed forms, and the seed's spread cancels where Welch's keeps it", () => {
  // Two pairs: differences 1 and 3, mean 2, s.e. 1, t = 2 on one degree of freedom, where
  // Student's t is Cauchy: p = 1 − 2·atan(2)/π.
  const two = pairedTTest([11, 23], [10, 20]);
  assertEquals([two.pairs, two.difference, two.standardError, two.t], [2, 2, 1, 2]);
  assertClose(two.pValue, 1 - (2 * Math.atan(2)) / Math.PI, 1e-12, "ν = 1");
  // ν = 10 at the textbook critical value 2.228139 gives p = 0.05: differences with
  // mean 2.228139·s/√11 and standard deviation s.
  const spread = [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5];
  const s = Math.sqrt(110 / 10);
  const shift = (2.228138851986 * s) / Math.sqrt(11);
  const critical = pairedTTest(spread.map((d) => d + shift), spread.map(() => 0));
  assertClose(critical.pValue, 0.05, 1e-9, "ν = 10 critical value");
  // A source one point above another on every seed, seeds spread by tens of points: the
  // pairing sees a certain difference, Welch's test none worth the name.
  const seeds = [4, 17, 24, 31, 52, 33, 10, 103];
  const above = seeds.map((score, i) => score + 1 + (i % 2) * 0.1);
  const paired = pairedTTest(above, seeds);
  assertOk(paired.pValue < 1e-6, `paired p ${paired.pValue}`);
  assertOk(welchTTest(above, seeds).pValue > 0.9, "Welch's p");
  // Edge cases: one pair, constant differences, lengths that do not pair.
  assertOk(Number.isNaN(pairedTTest([1], [0]).pValue));
  assertEquals(pairedTTest([3, 4], [1, 2]).pValue, 0);
  assertEquals(pairedTTest([1, 2], [1, 2]).pValue, 1);
  assertThrows(() => pairedTTest([1, 2], [1]), RangeError, "2 values against 1");
});

Deno.test("interquartile mean trims a quarter from each end", () => {
  assertEquals(interquartileMean([8, 1, 7, 2, 6, 3, 5, 4]), 4.5);
  // ⌊10/4⌋ = 2 cut from each end, as scipy's trim_mean(x, 0.25).
  assertEquals(interquartileMean([100, 1, 2, 3, 4, 5, 6, 7, 8, -50]), 4.5);
  assertEquals(interquartileMean([1, 2, 9]), 4);
  assertEquals(quantileOfSorted([0, 10], 0.25), 2.5);
});

Deno.test("stratified bootstrap: seeded, brackets the IQM, narrows with more runs", () => {
  const noisy = (count: number, centre: number, phase: number) =>
    Array.from({ length: count }, (_, i) => centre + 5 * Math.sin(1.7 * i + phase));
  const strata = [noisy(5, 40, 0), noisy(5, 60, 1), noisy(5, 80, 2)];
  const first = stratifiedBootstrap(strata, { seed: 7, repetitions: 1000 });
  const again = stratifiedBootstrap(strata, { seed: 7, repetitions: 1000 });
  const other = stratifiedBootstrap(strata, { seed: 8, repetitions: 1000 });
  assertEquals(first, again);
  assertOk(first.lower !== other.lower || first.upper !== other.upper, "the seed matters");
  assertEquals(first.estimate, interquartileMean(strata.flat()));
  assertOk(first.lower <= first.estimate && first.estimate <= first.upper, JSON.stringify(first));
  assertOk(first.upper - first.lower > 0, "a noisy sample has a non-empty interval");
  const wide = stratifiedBootstrap(strata.map((s) => [...s, ...s, ...s, ...s]), {
    seed: 7,
    repetitions: 1000,
  });
  assertOk(
    wide.upper - wide.lower < first.upper - first.lower,
    `four times the runs narrows the interval (${JSON.stringify(wide)} vs ${
      JSON.stringify(first)
    })`,
  );
  // Strata are kept: resamples never mix tasks, so a task of constant scores stays put.
  const constant = stratifiedBootstrap([[1, 1, 1, 1], [9, 9, 9, 9]], { repetitions: 200 });
  assertEquals([constant.lower, constant.upper], [5, 5]);
  assertThrows(() => stratifiedBootstrap(strata, { confidence: 1.5 }), RangeError, "confidence");
});
