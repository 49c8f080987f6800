/**
 * Observation normalisation with a dataset's statistics, done on plain
 * arrays before upload so it costs no tensor ops.
 *
 * @module
 */
import type { VectorStats } from "../core/types.ts";

/**
 * `(x − mean) / (std + epsilon)` per dimension, as TD3+BC and CORL
 * normalise states (CORL adds `epsilon = 1e-3` to the std). Without
 * statistics it is the identity.
 */
export class ObservationNormalizer {
  readonly #mean: Float32Array;
  readonly #scale: Float32Array;
  readonly #dim: number;
  readonly #identity: boolean;

  /** `stats` absent (or `enabled` false) gives the identity. */
  constructor(dim: number, stats: VectorStats | undefined, epsilon: number, enabled = true) {
    this.#dim = dim;
    this.#identity = !enabled || !stats;
    this.#mean = new Float32Array(dim);
    this.#scale = new Float32Array(dim).fill(1);
    if (this.#identity) return;
    if (stats!.mean.length !== dim || stats!.std.length !== dim) {
      throw new Error(
        `observationStats: mean and std must hold ${dim} values (the observation width), ` +
          `got ${stats!.mean.length} and ${stats!.std.length}`,
      );
    }
    for (let j = 0; j < dim; j++) {
      const std = stats!.std[j];
      if (!Number.isFinite(stats!.mean[j]) || !(std >= 0) || !Number.isFinite(std)) {
        throw new Error(`observationStats: dimension ${j} has mean ${stats!.mean[j]}, std ${std}`);
      }
      this.#mean[j] = stats!.mean[j];
      this.#scale[j] = 1 / (std + epsilon);
    }
  }

  /** Whether this normaliser changes anything. */
  get enabled(): boolean {
    return !this.#identity;
  }

  /** Normalised copy of `count` observations (into `out` when given). */
  apply(observations: Float32Array, count: number, out?: Float32Array): Float32Array {
    const size = count * this.#dim;
    if (observations.length < size) {
      throw new Error(
        `observations: expected ${count} × ${this.#dim} = ${size} values, got ${observations.length}`,
      );
    }
    const result = out && out.length === size ? out : new Float32Array(size);
    for (let i = 0; i < count; i++) {
      const offset = i * this.#dim;
      for (let j = 0; j < this.#dim; j++) {
        result[offset + j] = (observations[offset + j] - this.#mean[j]) * this.#scale[j];
      }
    }
    return result;
  }
}
