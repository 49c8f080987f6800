/**
 * Checks and batches of {@link Transitions}, whatever source made them.
 *
 * @module
 */
import type { Rng } from "./rng.ts";
import type { TransitionBatch, Transitions } from "./types.ts";
import { UserError } from "./errors.ts";

function checkArray(origin: string, name: string, array: Float32Array, length: number): void {
  if (!(array instanceof Float32Array)) {
    throw new UserError(`${origin}: field '${name}' must be a Float32Array`);
  }
  if (array.length !== length) {
    throw new UserError(
      `${origin}: field '${name}' has ${array.length} values, expected ${length}`,
    );
  }
  for (let i = 0; i < array.length; i++) {
    if (!Number.isFinite(array[i])) {
      throw new UserError(`${origin}: field '${name}' holds a non-finite value at index ${i}`);
    }
  }
}

/**
 * Checks a transition set's shapes against the environment and that every
 * value is finite; the error names the origin and the field.
 */
export function validateTransitions(
  transitions: Transitions,
  observationDim: number,
  actionDim: number,
  origin: string,
): void {
  if (!transitions || typeof transitions !== "object") {
    throw new UserError(`${origin}: expected a Transitions object`);
  }
  const { size } = transitions;
  if (!Number.isInteger(size) || size <= 0) {
    throw new UserError(`${origin}: field 'size' must be a positive integer, got ${size}`);
  }
  if (transitions.observationDim !== observationDim || transitions.actionDim !== actionDim) {
    throw new UserError(
      `${origin}: observationDim/actionDim ${transitions.observationDim}/${transitions.actionDim}, ` +
        `expected ${observationDim}/${actionDim}`,
    );
  }
  checkArray(origin, "observations", transitions.observations, size * observationDim);
  checkArray(origin, "actions", transitions.actions, size * actionDim);
  checkArray(origin, "rewards", transitions.rewards, size);
  checkArray(origin, "nextObservations", transitions.nextObservations, size * observationDim);
  checkArray(origin, "dones", transitions.dones, size);
}

/** An empty (zero-filled) transition set of `size` rows. */
export function allocateTransitions(
  size: number,
  observationDim: number,
  actionDim: number,
): Transitions {
  return {
    size,
    observationDim,
    actionDim,
    observations: new Float32Array(size * observationDim),
    actions: new Float32Array(size * actionDim),
    rewards: new Float32Array(size),
    nextObservations: new Float32Array(size * observationDim),
    dones: new Float32Array(size),
  };
}

/**
 * Copies rows `rows[i]` of `from` to rows `i` of `into` (a new set when not
 * given; `into` must have `rows.length` rows and `from`'s widths) and
 * returns it.
 */
export function gatherTransitions(
  from: Transitions,
  rows: ArrayLike<number>,
  into: Transitions = allocateTransitions(rows.length, from.observationDim, from.actionDim),
): Transitions {
  const { observationDim: od, actionDim: ad } = from;
  // Plain index loops: a subarray per row would allocate each time.
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    for (let j = 0; j < od; j++) {
      into.observations[i * od + j] = from.observations[row * od + j];
      into.nextObservations[i * od + j] = from.nextObservations[row * od + j];
    }
    for (let j = 0; j < ad; j++) into.actions[i * ad + j] = from.actions[row * ad + j];
    into.rewards[i] = from.rewards[row];
    into.dones[i] = from.dones[row];
  }
  return into;
}

/** `count` rows of `from` drawn uniformly with replacement (`rng.indices`, one draw per row). */
export function sampleTransitions(from: Transitions, count: number, rng: Rng): Transitions {
  return gatherTransitions(from, rng.indices(from.size, new Int32Array(count)));
}

/**
 * How many real rows join `syntheticSize` synthetic ones so that real rows
 * make up `realFraction` of the mix: `round(n · f / (1 − f))`.
 */
export function realRowCount(syntheticSize: number, realFraction: number): number {
  return Math.round((syntheticSize * realFraction) / (1 - realFraction));
}

/**
 * Synthetic transitions followed by {@link realRowCount} rows drawn from
 * `real` ({@link sampleTransitions}), so that real rows make up
 * `realFraction` of the result. With no real rows to add, `synthetic` itself
 * is returned and `rng` is not drawn from.
 */
export function mixWithReal(
  synthetic: Transitions,
  real: Transitions,
  realFraction: number,
  rng: Rng,
): Transitions {
  const count = realRowCount(synthetic.size, realFraction);
  if (count === 0) return synthetic;
  return concatTransitions([synthetic, sampleTransitions(real, count, rng)]);
}

/** Draws uniform batches (with replacement) into reused buffers. */
export class BatchSampler {
  #batch: TransitionBatch;
  #indices: Int32Array;
  #rng: Rng;

  /** A sampler of `batchSize` rows; `rng` fixes the draws. */
  constructor(batchSize: number, observationDim: number, actionDim: number, rng: Rng) {
    this.#rng = rng;
    this.#indices = new Int32Array(batchSize);
    this.#batch = allocateTransitions(batchSize, observationDim, actionDim);
  }

  /** A batch drawn from `from`; the returned object is reused by the next call. */
  sample(from: Transitions): TransitionBatch {
    this.#rng.indices(from.size, this.#indices);
    return gatherTransitions(from, this.#indices, this.#batch);
  }
}

/** Concatenates transition sets of equal widths, in order. */
export function concatTransitions(parts: Transitions[]): Transitions {
  const { observationDim: od, actionDim: ad } = parts[0];
  const size = parts.reduce((sum, part) => sum + part.size, 0);
  const out = allocateTransitions(size, od, ad);
  let at = 0;
  for (const part of parts) {
    out.observations.set(part.observations, at * od);
    out.nextObservations.set(part.nextObservations, at * od);
    out.actions.set(part.actions, at * ad);
    out.rewards.set(part.rewards, at);
    out.dones.set(part.dones, at);
    at += part.size;
  }
  return out;
}

/** A copy of a transition set that shares no array with it. */
export function copyTransitions(from: Transitions): Transitions {
  return concatTransitions([from]);
}
