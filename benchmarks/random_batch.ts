/**
 * The random transition batch the agent benchmarks time updates on, shaped
 * as the PyTorch anchor's (observations 17, actions 6, batch 256 by default).
 *
 * @module
 */
import type { Rng } from "../core/rng.ts";
import type { TransitionBatch } from "../core/types.ts";

/**
 * A batch of standard-normal observations, next observations and rewards,
 * uniform actions in [−1, 1] and no terminals, drawn from `rng` in that
 * order (observations, actions, rewards, next observations).
 */
export function randomAgentBatch(
  rng: Rng,
  size = 256,
  observationDim = 17,
  actionDim = 6,
): TransitionBatch {
  const fill = (length: number, draw: () => number) => Float32Array.from({ length }, draw);
  return {
    size,
    observationDim,
    actionDim,
    observations: fill(size * observationDim, () => rng.normal()),
    actions: fill(size * actionDim, () => rng.range(-1, 1)),
    rewards: fill(size, () => rng.normal()),
    nextObservations: fill(size * observationDim, () => rng.normal()),
    dones: new Float32Array(size),
  };
}
