/**
 * PETS as a trajectory model for the analysis: the `pets` source's fitted
 * ensemble (same options, cache and seeds) rolling a target policy out for a
 * fixed number of steps from dataset states.
 *
 * @module
 */
import type { SourceContext } from "../core/contracts/source.ts";
import { formatZodIssues, UserError } from "../core/errors.ts";
import { Rng } from "../core/rng.ts";
import { toTransitions } from "../data/d4rl.ts";
import {
  petsOptionsSchema,
  preparePetsModels,
  resolvePetsOptions,
} from "../plugins/sources/pets.ts";
import { terminationRule } from "../worldmodel/dynamics.ts";
import { policySampler, rollout } from "../worldmodel/rollout.ts";
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
  const parsed = petsOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    throw new UserError(`invalid options:\n${formatZodIssues("pets", parsed.error)}`);
  }
  const settings = resolvePetsOptions(parsed.data, context.preset);
  const models = await preparePetsModels(context, settings);
  const starts = toTransitions(context.dataset);
  const od = starts.observationDim;
  return {
    sample({ policy, count, seed }) {
      const rng = new Rng(seed);
      const observations = new Float32Array(count * od);
      for (let i = 0; i < count; i++) {
        const row = rng.int(starts.size);
        observations.set(starts.observations.subarray(row * od, (row + 1) * od), i * od);
      }
      const trajectories = rollout(models.dynamics, policySampler(policy), observations, count, {
        length: steps,
        penaltyCoefficient: settings.penaltyCoefficient,
        isTerminal: terminationRule(context.datasetId),
        rng,
        deterministic: settings.deterministic,
      });
      return Promise.resolve(fromRollout(trajectories));
    },
    dispose() {
      models.dynamics.dispose();
      models.behavior.dispose();
    },
  };
}
