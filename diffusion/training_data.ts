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
