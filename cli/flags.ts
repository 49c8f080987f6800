/**
 * Parsers of the command line's flag values: each checks its value and names
 * the flag and what it expected in a one-line error, so that a typo stops the
 * command instead of turning into `NaN` or a default.
 *
 * @module
 */
import { maxSeedCount } from "../core/config.ts";
import { UserError } from "../core/errors.ts";

/** A comma-separated list, items trimmed, empty items dropped. */
export function list(value: string): string[] {
  return value.split(",").map((item) => item.trim()).filter(Boolean);
}

/** A parser of a whole number ≥ `min` for `flag`. */
export function integerFlag(flag: string, min: number): (value: string) => number {
  return (value: string): number => {
    const text = value.trim();
    if (!/^\d+$/.test(text) || Number(text) < min) {
      throw new UserError(`${flag}: expected an integer ≥ ${min}, got '${value}'`);
    }
    return Number(text);
  };
}

/** A parser of a number > 0 for `flag`. */
export function positiveNumberFlag(flag: string): (value: string) => number {
  return (value: string): number => {
    const number = Number(value.trim());
    if (value.trim() === "" || !(number > 0) || !Number.isFinite(number)) {
      throw new UserError(`${flag}: expected a number > 0, got '${value}'`);
    }
    return number;
  };
}

/** A parser of a comma-separated list of numbers ≥ `min` for `flag`. */
export function numberListFlag(flag: string, min: number): (value: string) => number[] {
  return (value: string): number[] => {
    const items = list(value);
    if (items.length === 0) {
      throw new UserError(`${flag}: expected a comma-separated list of numbers`);
    }
    return items.map((item) => {
      const number = Number(item);
      if (!Number.isFinite(number) || number < min) {
        throw new UserError(`${flag}: '${item}' is not a number ≥ ${min}`);
      }
      return number;
    });
  };
}

/**
 * `--seeds`: a count N (seeds 0…N−1), or a comma-separated list whose items
 * are seeds or inclusive ranges (`0,3,7`, `4-7`, `4-7,12`). A lone `0` is
 * not a count; the error says how to ask for seed 0 alone.
 */
export function seedsFlag(value: string): number[] | number {
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    if (Number(text) === 0) {
      throw new UserError(
        "--seeds: a count must be ≥ 1 (N runs seeds 0…N−1); for seed 0 alone write '--seeds 0-0'",
      );
    }
    return Number(text);
  }
  const items = list(text);
  if (items.length === 0) {
    throw new UserError(`--seeds: expected a count or a list, got '${value}'`);
  }
  return items.flatMap((item) => {
    const range = /^(\d+)-(\d+)$/.exec(item);
    if (range) {
      const [first, last] = [Number(range[1]), Number(range[2])];
      if (last < first) throw new UserError(`--seeds: range '${item}' ends before it starts`);
      if (last - first >= maxSeedCount) {
        throw new UserError(`--seeds: range '${item}' holds more than ${maxSeedCount} seeds`);
      }
      return Array.from({ length: last - first + 1 }, (_, i) => first + i);
    }
    if (!/^\d+$/.test(item)) {
      throw new UserError(
        `--seeds: '${item}' is neither a non-negative integer nor a range such as 4-7`,
      );
    }
    return [Number(item)];
  });
}
