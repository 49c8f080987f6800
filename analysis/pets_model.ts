/**
 * PETS as a trajectory model for the analysis: the `pets` source's fitted
 * ensemble (same options, cache and seeds) rolling a target policy out for a
 * fixed number of steps from dataset states.
 *
 * @module
 */
import type { SourceContext } from "../core/contracts/source.ts";
import { Rng } from "../core/rng.ts";
import { toTransitions } from "../core/d4rl.ts";
import {
  disposePetsModels,
  drawStartStates,
  loadOrFitPetsModels,
  rolloutPolicy,
} from "../worldmodel/pets.ts";
import { parsePetsOptions, resolvePetsOptions } from "../worldmodel/pets_options.ts";
import type { TrajectoryModel } from "./analyze.ts";
import { fromRollout } from "./trajectories.ts";

/**
 * Fits (or loads) the PETS ensemble for `context` and returns a model whose
 * samples are `steps`-step rollouts of the requested policy (`steps + 1`
 * states each), started from uniformly drawn dataset states.
 */
export async function petsTrajectoryModel(
  context: SourceContext,
  steps: number,
  options: unknown = {},
): Promise<TrajectoryModel> {
  const settings = resolvePetsOptions(parsePetsOptions(options), context.preset);
  const models = await loadOrFitPetsModels(context, settings);
  const real = toTransitions(context.dataset);
  return {
    sample({ policy, count, seed }) {
      const rng = new Rng(seed);
      const starts = drawStartStates(real, count, rng);
      const trajectories = rolloutPolicy(
        models,
        policy,
        starts,
        steps,
        settings,
        context.environment,
        rng,
      );
      return Promise.resolve(fromRollout(trajectories));
    },
    dispose() {
      disposePetsModels(models);
    },
  };
}
