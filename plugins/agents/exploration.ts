/**
 * The agents' non-deterministic actions: Gaussian noise added to the policy's
 * action and the result clipped to the action box [−1, 1]. TD3+BC adds a fixed
 * σ (TD3's exploration noise), IQL its actor's per-entry standard deviation;
 * single agents and their stacks share this, so a member draws exactly what
 * its agent alone draws.
 *
 * @module
 */
import type { Rng } from "../../core/rng.ts";

/**
 * Adds `std · N(0, 1)` to every entry of `actions` (one σ for all, or one per
 * entry) and clips to [−1, 1], in place; returns `actions`.
 */
export function addClippedNoise(
  actions: Float32Array,
  std: number | Float32Array,
  rng: Rng,
): Float32Array {
  for (let i = 0; i < actions.length; i++) {
    const sigma = typeof std === "number" ? std : std[i];
    actions[i] = Math.min(1, Math.max(-1, actions[i] + sigma * rng.normal()));
  }
  return actions;
}
