/**
 * Test assertions over `node:assert` (Deno's std is not reachable here),
 * in the shape of Deno std's `assertEquals`, `assertThrows`, `assertRejects`.
 *
 * @module
 */
import assert from "node:assert/strict";

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (message === undefined) assert.deepStrictEqual(actual, expected);
  else assert.deepStrictEqual(actual, expected, message);
}

/** A truthy condition. */
export function assertOk(condition: unknown, message?: string): asserts condition {
  if (message === undefined) assert.ok(condition);
  else assert.ok(condition, message);
}

/** `fn` throws an instance of `type` (whose message contains `includes`); returns it. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  type: new (...args: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    if (includes) assert.ok((error as E).message.includes(includes), (error as E).message);
    return error as E;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be thrown` });
}

/** `fn` rejects with an instance of `type` (whose message contains `includes`); returns it. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    if (includes) assert.ok((error as E).message.includes(includes), (error as E).message);
    return error as E;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be rejected` });
}

/** Relative L2 error of `actual` against `expected` (same length). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assertEquals(actual.length, expected.length);
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    difference += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(difference / Math.max(norm, 1e-30));
}
