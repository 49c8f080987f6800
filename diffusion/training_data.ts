/**
 * From generated transitions to the data an agent trains on: continuous
 * mode's replay of the latest generations (paper Figure 4) and an optional
 * share of real transitions drawn from the offline dataset (the reference
 * code mixes 16 real transitions into every 256; the paper mixes none).
 *
 * @module
 */
import { concatTransitions } from "../core/transitions.ts";
import type { Transitions } from "../core/types.ts";
import type { Rng } from "../core/rng.ts";

/** Continuous mode's buffer: the latest `kept` generations, oldest dropped first. */
export class GenerationReplay {
  #generations: Transitions[] = [];

  /** Keeps at most `kept` generations. */
  constructor(readonly kept: number) {}

  /** Adds a generation and returns every generation kept, as one set. */
  add(generation: Transitions): Transitions {
    this.#generations.push(generation);
    while (this.#generations.length > this.kept) this.#generations.shift();
    return this.#generations.length === 1 ? generation : concatTransitions(this.#generations);
  }

  /** Forgets every generation. */
  clear(): void {
    this.#generations.length = 0;
  }
}

/**
 * `data` followed by real transitions drawn from `real`, as many as make up
 * `realFraction` of the result (rounded).
 */
export function mixInReal(
  data: Transitions,
  real: Transitions,
  realFraction: number,
  rng: Rng,
): Transitions {
  const realCount = Math.round((data.size * realFraction) / (1 - realFraction));
  return concatTransitions([data, drawTransitions(real, realCount, rng)]);
}

/** `count` transitions drawn uniformly (with replacement) from a set. */
export function drawTransitions(from: Transitions, count: number, rng: Rng): Transitions {
  const { observationDim, actionDim } = from;
  const out: Transitions = {
    size: count,
    observationDim,
    actionDim,
    observations: new Float32Array(count * observationDim),
    actions: new Float32Array(count * actionDim),
    rewards: new Float32Array(count),
    nextObservations: new Float32Array(count * observationDim),
    dones: new Float32Array(count),
  };
  for (let i = 0; i < count; i++) {
    const j = rng.int(from.size);
    out.observations.set(
      from.observations.subarray(j * observationDim, (j + 1) * observationDim),
      i * observationDim,
    );
    out.nextObservations.set(
      from.nextObservations.subarray(j * observationDim, (j + 1) * observationDim),
      i * observationDim,
    );
    out.actions.set(from.actions.subarray(j * actionDim, (j + 1) * actionDim), i * actionDim);
    out.rewards[i] = from.rewards[j];
    out.dones[i] = from.dones[j];
  }
  return out;
}
