/**
 * PETS as MOPO uses it, as a library: a probabilistic ensemble world model
 * (Chua et al. 2018) fitted on an offline dataset, and short model rollouts
 * of a policy from real states whose transitions, mixed with real ones, are
 * an agent's training data (Yu et al. 2020, Algorithm 2).
 *
 * In the order of the algorithm:
 * 1. {@link loadOrFitPetsModels}: fit the dynamics ensemble `(s, a) ↦ (Δs, r)`
 *    and a behaviour-cloned policy, or load both from the cache.
 * 2. {@link drawStartStates}: draw start states from the real dataset.
 * 3. {@link rolloutPolicy}: roll a policy out for `h` model steps, each step
 *    from a random elite, rewards penalised by the model's uncertainty, and
 *    stopped where the environment's termination rule says.
 * 4. {@link RolloutBuffer} and {@link withRealTransitions}: keep the newest
 *    rollouts, and add real transitions in MOPO's proportion.
 *
 * Options and their defaults live in `pets_options.ts`.
 *
 * @module
 */
import { computeKey } from "../core/compute.ts";
import { sha256Hex } from "../core/fingerprint.ts";
import type { EnvironmentSpec } from "../core/contracts/environment.ts";
import type { SourceContext } from "../core/contracts/source.ts";
import { readFileIfExists, writeFileAtomic } from "../core/files.ts";
import { deriveSeed, Rng } from "../core/rng.ts";
import { concatTransitions, gatherTransitions, mixWithReal } from "../core/transitions.ts";
import type { D4rlDataset, PolicyView, Transitions } from "../core/types.ts";
import { toTransitions } from "../core/d4rl.ts";
import { BehaviorPolicy } from "./behavior.ts";
import { contentKey, decodeEnsembles, encodeEnsembles } from "./cache.ts";
import { DynamicsModel } from "./dynamics.ts";
import {
  behaviorEnsembleOptions,
  dynamicsEnsembleOptions,
  type ResolvedPetsOptions,
} from "./pets_options.ts";
import { policySampler, rollout, type RolloutTrajectories } from "./rollout.ts";

/** The fitted models of one (dataset, options, preset, seed). */
export interface PetsModels {
  /** The dynamics ensemble. */
  dynamics: DynamicsModel;
  /** The behaviour-cloned policy, rolled out before any target policy exists. */
  behavior: BehaviorPolicy;
}

/** What fitting needs to know of a source's context. */
export type PetsFitContext = Pick<
  SourceContext,
  "datasetId" | "dataset" | "seed" | "preset" | "cacheDir" | "reporter" | "recordArtefact"
>;

/**
 * Step 1. Fits the dynamics ensemble and the behaviour policy on the real
 * dataset, or loads both from `context.cacheDir` (keyed by a hash of the
 * dataset, the options that change the fit, the preset and the seed).
 *
 * The ensemble is PETS's "PE" model (§4.1): each member a Gaussian network
 * with learned, bounded log-variance, trained on its own bootstrap of the
 * data; MOPO keeps the members with the lowest held-out error as elites.
 */
export async function loadOrFitPetsModels(
  context: PetsFitContext,
  options: ResolvedPetsOptions,
): Promise<PetsModels> {
  const { dataset, reporter } = context;
  const dynamicsOptions = dynamicsEnsembleOptions(options);
  const behaviorOptions = behaviorEnsembleOptions(options);
  // Only what changes the fitted models enters the key, so rollout settings share one fit.
  const key = await contentKey(dataset, {
    model: "pets",
    datasetId: context.datasetId,
    dynamicsOptions,
    behaviorOptions,
    maxTrainingTransitions: options.sizes.maxTrainingTransitions,
    preset: context.preset,
    seed: context.seed,
    compute: computeKey(),
  });
  const path = `${context.cacheDir}/pets/${key}.bin`;
  const saved = await readFileIfExists(path);
  if (saved) {
    const models = decodeModels(saved, path, dataset);
    reporter.log(`pets: loaded the ensemble from ${path}`);
    context.recordArtefact?.({ kind: "pets-ensemble", path, sha256: await sha256Hex(saved) });
    return models;
  }
  const rng = new Rng(deriveSeed(context.seed, "pets-fit"));
  const transitions = randomSubset(
    toTransitions(dataset),
    options.sizes.maxTrainingTransitions,
    rng,
  );
  const epochCap = options.sizes.maxEpochs;
  const { model: dynamics, report } = DynamicsModel.fit(
    transitions,
    dynamicsOptions,
    deriveSeed(context.seed, "pets-dynamics"),
    (epoch) => {
      if (epochCap !== null) reporter.progress("pets: fit ensemble", epoch / epochCap);
    },
  );
  reporter.log(
    `pets: ensemble fitted in ${report.epochs} epochs on ${transitions.size} transitions; ` +
      `held-out MSE of elites ${
        report.elites.map((k) => report.holdoutMse[k].toFixed(4)).join(", ")
      }`,
  );
  const { policy: behavior } = BehaviorPolicy.fit(
    transitions,
    behaviorOptions,
    deriveSeed(context.seed, "pets-behavior"),
  );
  const bytes = encodeEnsembles({ dynamics: dynamics.ensemble, behavior: behavior.network });
  await writeFileAtomic(path, bytes);
  context.recordArtefact?.({ kind: "pets-ensemble", path, sha256: await sha256Hex(bytes) });
  return { dynamics, behavior };
}

/** Frees both models' tensors. */
export function disposePetsModels(models: PetsModels): void {
  models.dynamics.dispose();
  models.behavior.dispose();
}

function decodeModels(bytes: Uint8Array, path: string, dataset: D4rlDataset): PetsModels {
  const models = decodeEnsembles(bytes, path);
  if (!models.dynamics || !models.behavior) {
    throw new Error(`cannot read saved ensembles '${path}': missing 'dynamics' or 'behavior'`);
  }
  return {
    dynamics: new DynamicsModel(models.dynamics, dataset.observationDim, dataset.actionDim),
    behavior: new BehaviorPolicy(models.behavior),
  };
}

/** A random subset of transitions (all of them when `limit` is null or not smaller). */
function randomSubset(transitions: Transitions, limit: number | null, rng: Rng): Transitions {
  if (limit === null || limit >= transitions.size) return transitions;
  const rows = rng.shuffle(Array.from({ length: transitions.size }, (_, i) => i)).slice(0, limit);
  return gatherTransitions(transitions, rows);
}

/**
 * Step 2. `count` start states drawn uniformly, with replacement, from the
 * real transitions' observations (MOPO branches its rollouts from real states,
 * so the model is only trusted for a few steps near the data).
 */
export function drawStartStates(real: Transitions, count: number, rng: Rng): Float32Array {
  const od = real.observationDim;
  const starts = new Float32Array(count * od);
  for (let i = 0; i < count; i++) {
    const row = rng.int(real.size);
    starts.set(real.observations.subarray(row * od, (row + 1) * od), i * od);
  }
  return starts;
}

/** The rollout settings among PETS's options. */
export type PetsRolloutOptions = Pick<ResolvedPetsOptions, "penaltyCoefficient" | "deterministic">;

/**
 * Step 3. Rolls `policy` out for `length` steps in the dynamics model from
 * each start state, sampling `a ~ N(μ(s), σ(s))` clipped to [−1, 1].
 *
 * Each step of each trajectory samples a uniformly drawn elite's Gaussian
 * (PETS's TS1 trajectory sampling, §4.2). The reward is the model's minus
 * MOPO's penalty `λ·max_k ‖σ_k(s, a)‖` (§4.3, with λ = `penaltyCoefficient`).
 * A trajectory ends at a state the environment's `isTerminal` marks terminal
 * (termination is known, not learned, as in MOPO).
 */
export function rolloutPolicy(
  models: PetsModels,
  policy: PolicyView,
  starts: Float32Array,
  length: number,
  options: PetsRolloutOptions,
  environment: EnvironmentSpec,
  rng: Rng,
): RolloutTrajectories {
  const count = starts.length / models.dynamics.observationDim;
  return rollout(models.dynamics, policySampler(policy), starts, count, {
    length,
    penaltyCoefficient: options.penaltyCoefficient,
    isTerminal: environment.isTerminal?.bind(environment),
    rng,
    deterministic: options.deterministic,
  });
}

/**
 * Step 4a. MOPO's model buffer: the newest rollout transitions, first in,
 * first out, at most `capacity` of them.
 */
export class RolloutBuffer {
  #generations: Transitions[] = [];

  /** Adds one generation's transitions and returns everything kept, oldest first. */
  add(transitions: Transitions, capacity: number): Transitions {
    this.#generations.push(transitions);
    // Drop whole old generations, then trim the oldest kept one from its start.
    let kept = this.#generations.reduce((sum, part) => sum + part.size, 0);
    while (kept > capacity && this.#generations.length > 1) {
      kept -= this.#generations[0].size;
      this.#generations = this.#generations.slice(1);
    }
    if (kept > capacity) {
      const oldest = this.#generations[0];
      const excess = kept - capacity;
      const rows = Array.from({ length: oldest.size - excess }, (_, i) => i + excess);
      this.#generations[0] = gatherTransitions(oldest, rows);
    }
    return concatTransitions(this.#generations);
  }

  /** Forgets every generation. */
  clear(): void {
    this.#generations = [];
  }
}

/**
 * Step 4b. The synthetic transitions followed by real ones drawn uniformly
 * with replacement, so that real data make up `realFraction` of the whole
 * (MOPO's real ratio; Algorithm 2 trains on a mix of the real and model buffers).
 */
export function withRealTransitions(
  synthetic: Transitions,
  real: Transitions,
  realFraction: number,
  rng: Rng,
): Transitions {
  return mixWithReal(synthetic, real, realFraction, rng);
}
