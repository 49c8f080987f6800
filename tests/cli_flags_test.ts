import { assertEquals, assertOk, assertThrows } from "./assert.ts";
import { integerFlag, list, numberListFlag, positiveNumberFlag, seedsFlag } from "../cli/flags.ts";
import { parseGridConfig } from "../core/config.ts";
import { UserError } from "../core/errors.ts";

Deno.test("flags: --seeds takes a count, a list, and inclusive ranges", () => {
  assertEquals(seedsFlag("4"), 4);
  assertEquals(seedsFlag("0,3,7"), [0, 3, 7]);
  assertEquals(seedsFlag("4-7"), [4, 5, 6, 7]);
  assertEquals(seedsFlag("0-0"), [0]);
  assertEquals(seedsFlag(" 4-6, 12 "), [4, 5, 6, 12]);
  // A count and a list mean what the grid config means by them.
  assertEquals(parseGridConfig({ seeds: seedsFlag("3") }).seeds, [0, 1, 2]);
  assertEquals(parseGridConfig({ seeds: seedsFlag("8-11") }).seeds, [8, 9, 10, 11]);
});

Deno.test("flags: a bad --seeds value fails with one line that says what to write", () => {
  const zero = assertThrows(() => seedsFlag("0"), UserError, "--seeds: a count must be ≥ 1");
  assertOk(zero.message.includes("'--seeds 0-0'"), zero.message);
  assertThrows(() => seedsFlag("7-4"), UserError, "--seeds: range '7-4' ends before it starts");
  assertThrows(() => seedsFlag("1,x"), UserError, "--seeds: 'x' is neither");
  assertThrows(() => seedsFlag("-3"), UserError, "--seeds: '-3' is neither");
  assertThrows(() => seedsFlag(","), UserError, "--seeds: expected a count or a list");
  assertThrows(() => seedsFlag("0-10000"), UserError, "holds more than 10000 seeds");
  for (const bad of ["0", "7-4", "1,x"]) {
    try {
      seedsFlag(bad);
    } catch (error) {
      assertOk(!(error as Error).message.includes("\n"), (error as Error).message);
    }
  }
});

Deno.test("flags: numbers are checked, never NaN", () => {
  assertEquals(integerFlag("--workers", 1)("2"), 2);
  assertEquals(integerFlag("--seed", 0)("0"), 0);
  assertThrows(
    () => integerFlag("--workers", 1)("abc"),
    UserError,
    "--workers: expected an integer ≥ 1, got 'abc'",
  );
  assertThrows(() => integerFlag("--workers", 1)("0"), UserError, "--workers");
  assertThrows(() => integerFlag("--trajectories", 1)("2.5"), UserError, "--trajectories");
  assertEquals(positiveNumberFlag("--hook-timeout")("90.5"), 90.5);
  for (const bad of ["0", "-1", "x", "", "Infinity"]) {
    assertThrows(
      () => positiveNumberFlag("--hook-timeout")(bad),
      UserError,
      "--hook-timeout: expected a number > 0",
    );
  }
  assertEquals(numberListFlag("--guidances", 0)("0, 0.5,1"), [0, 0.5, 1]);
  assertThrows(
    () => numberListFlag("--guidances", 0)("1,x"),
    UserError,
    "--guidances: 'x' is not a number ≥ 0",
  );
  assertThrows(() => numberListFlag("--noise-scales", 0)("-1"), UserError, "--noise-scales: '-1'");
  assertThrows(() => numberListFlag("--guidances", 0)(""), UserError, "--guidances: expected");
  assertEquals(list(" a, ,b "), ["a", "b"]);
});

Deno.test("config: one invalid field is one line; several get a line each", () => {
  const one = assertThrows(() => parseGridConfig({ seeds: 0 }, "grid.json"), UserError);
  assertEquals(
    one.message,
    "invalid grid config: grid.json.seeds: Too small: expected number to be >0",
  );
  const two = assertThrows(
    () => parseGridConfig({ seeds: 0, preset: "huge" }, "grid.json"),
    UserError,
  );
  assertEquals(two.message.split("\n").length, 3, two.message);
});
