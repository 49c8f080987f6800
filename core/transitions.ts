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

/** Draws uniform batches (with replacement) into reused buffers. */
export class BatchSampler {
  #batch: TransitionBatch;
  #indices: Int32Array;
  #rng: Rng;

  /** A sampler of `batchSize` rows; `rng` fixes the draws. */
  constructor(batchSize: number, observationDim: number, actionDim: number, rng: Rng) {
    this.#rng = rng;
    this.#indices = new Int32Array(batchSize);
    this.#batch = {
      size: batchSize,
      observationDim,
      actionDim,
      observations: new Float32Array(batchSize * observationDim),
      actions: new Float32Array(batchSize * actionDim),
      rewards: new Float32Array(batchSize),
      nextObservations: new Float32Array(batchSize * observationDim),
      dones: new Float32Array(batchSize),
    };
  }

  /** A batch drawn from `from`; the returned object is reused by the next call. */
  sample(from: Transitions): TransitionBatch {
    const batch = this.#batch;
    const { observationDim: od, actionDim: ad } = batch;
    this.#rng.indices(from.size, this.#indices);
    for (let row = 0; row < batch.size; row++) {
      const index = this.#indices[row];
      batch.observations.set(from.observations.subarray(index * od, index * od + od), row * od);
      batch.nextObservations.set(
        from.nextObservations.subarray(index * od, index * od + od),
        row * od,
      );
      batch.actions.set(from.actions.subarray(index * ad, index * ad + ad), row * ad);
      batch.rewards[row] = from.rewards[index];
      batch.dones[row] = from.dones[index];
    }
    return batch;
  }
}

/** Concatenates transition sets of equal widths, in order. */
export function concatTransitions(parts: Transitions[]): Transitions {
  const { observationDim: od, actionDim: ad } = parts[0];
  const size = parts.reduce((sum, part) => sum + part.size, 0);
  const out: Transitions = {
    size,
    observationDim: od,
    actionDim: ad,
    observations: new Float32Array(size * od),
    actions: new Float32Array(size * ad),
    rewards: new Float32Array(size),
    nextObservations: new Float32Array(size * od),
    dones: new Float32Array(size),
  };
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
