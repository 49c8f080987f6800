/**
 * The `pets` data source: MOPO-style rollouts in a probabilistic ensemble
 * world model fitted on the offline dataset. The algorithm lives in
 * `worldmodel/pets.ts`; this file maps the data-source contract onto it.
 *
 * Generation 0 has no target policy yet and rolls out the behaviour-cloned
 * policy; later generations roll out the agent's target policy. Each
 * generation's training set is the retained rollouts plus real transitions.
 *
 * @module
 */
import type { DataSource, SourceContext } from "../../core/contracts/source.ts";
import { deriveSeed, Rng } from "../../core/rng.ts";
import type { Transitions } from "../../core/types.ts";
import { toTransitions } from "../../core/d4rl.ts";
import {
  disposePetsModels,
  drawStartStates,
  loadOrFitPetsModels,
  type PetsModels,
  RolloutBuffer,
  rolloutPolicy,
  withRealTransitions,
} from "../../worldmodel/pets.ts";
import { parsePetsOptions, resolvePetsOptions } from "../../worldmodel/pets_options.ts";
import { rolloutTransitions } from "../../worldmodel/rollout.ts";

/** The `pets` data source: model rollouts of the target policy in a learned ensemble. */
export function pets(options: unknown = {}): DataSource {
  const petsOptions = parsePetsOptions(options);
  const resolved = (context: SourceContext) => resolvePetsOptions(petsOptions, context.preset);
  let models: PetsModels | undefined;
  let real: Transitions | undefined;
  const buffer = new RolloutBuffer();

  return {
    name: "pets",
    options: petsOptions as unknown as Record<string, unknown>,
    regenerateEvery(context) {
      return resolved(context).sizes.regenerateEvery;
    },
    async prepare(context) {
      models ??= await loadOrFitPetsModels(context, resolved(context));
    },
    async generate(context, request) {
      const settings = resolved(context);
      models ??= await loadOrFitPetsModels(context, settings);
      real ??= toTransitions(context.dataset);
      // One stream per generation: starts, rollout, then the real rows, in that order.
      const rng = new Rng(deriveSeed(context.seed, `pets-generate-${request.generation}`));
      const starts = drawStartStates(real, settings.sizes.rolloutBatchSize, rng);
      const policy = request.policy ?? models.behavior;
      const trajectories = rolloutPolicy(
        models,
        policy,
        starts,
        settings.rolloutLength,
        settings,
        context.environment,
        rng,
      );
      const synthetic = buffer.add(
        rolloutTransitions(trajectories),
        settings.sizes.retainedTransitions,
      );
      return withRealTransitions(synthetic, real, settings.realFraction, rng);
    },
    dispose() {
      if (models) disposePetsModels(models);
      models = undefined;
      buffer.clear();
    },
  };
}
