/**
 * A learned world model in MOPO's form: a probabilistic ensemble over
 * `(s, a) ↦ (Δs, r)`. Termination is not learned: rollouts apply the
 * environment's own rule (`EnvironmentSpec.isTerminal`) to predicted states.
 *
 * @module
 */
import type { EnvironmentSpec } from "../core/contracts/environment.ts";
import { copyTransitions } from "../core/transitions.ts";
import type { Transitions } from "../core/types.ts";
import type { Rng } from "../core/rng.ts";
import { type EnsembleOptions, type FitReport, ProbabilisticEnsemble } from "./ensemble.ts";

/** One model step for a batch of states. */
export interface ModelStep {
  /** `count × observationDim` sampled next observations. */
  nextObservations: Float32Array;
  /** `count` sampled rewards. */
  rewards: Float32Array;
  /** `count` MOPO uncertainty: the largest norm over all members of the predicted std. */
  uncertainty: Float32Array;
}

/** A dynamics model `(s, a) ↦ N(s + Δs, r)` on top of a fitted {@link ProbabilisticEnsemble}. */
export class DynamicsModel {
  /** The ensemble over `[s, a] ↦ [Δs, r]`. */
  readonly ensemble: ProbabilisticEnsemble;
  /** Width of one observation. */
  readonly observationDim: number;
  /** Width of one action. */
  readonly actionDim: number;

  /** Wraps an ensemble whose inputs are `[s, a]` and targets `[Δs, r]`. */
  constructor(ensemble: ProbabilisticEnsemble, observationDim: number, actionDim: number) {
    if (
      ensemble.inputDim !== observationDim + actionDim || ensemble.outputDim !== observationDim + 1
    ) {
      throw new Error(
        `dynamics model: ensemble maps ${ensemble.inputDim} → ${ensemble.outputDim}, ` +
          `expected ${observationDim + actionDim} → ${observationDim + 1}`,
      );
    }
    this.ensemble = ensemble;
    this.observationDim = observationDim;
    this.actionDim = actionDim;
  }

  /** Fits a fresh ensemble on transitions: inputs `[s, a]`, targets `[s' − s, r]`. */
  static fit(
    transitions: Transitions,
    options: EnsembleOptions,
    seed: number,
    onEpoch?: (epoch: number, holdoutMse: number[]) => void,
  ): { model: DynamicsModel; report: FitReport } {
    const { size, observationDim: od, actionDim: ad } = transitions;
    const inputs = inputRows(transitions.observations, transitions.actions, size, od, ad);
    const targets = new Float32Array(size * (od + 1));
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < od; j++) {
        targets[i * (od + 1) + j] = transitions.nextObservations[i * od + j] -
          transitions.observations[i * od + j];
      }
      targets[i * (od + 1) + od] = transitions.rewards[i];
    }
    const ensemble = new ProbabilisticEnsemble(od + ad, od + 1, options, seed);
    const report = ensemble.fit(inputs, targets, size, { seed, onEpoch });
    return { model: new DynamicsModel(ensemble, od, ad), report };
  }

  /**
   * One step for `count` states: each row takes a uniformly drawn elite and
   * samples `(Δs, r)` from its Gaussian (its mean when `deterministic`).
   */
  step(
    observations: Float32Array,
    actions: Float32Array,
    count: number,
    rng: Rng,
    deterministic = false,
  ): ModelStep {
    const od = this.observationDim;
    const { mean, variance } = this.#predict(observations, actions, count);
    const outputDim = od + 1;
    const elites = this.ensemble.elites;
    const members = this.ensemble.size;
    const nextObservations = new Float32Array(count * od);
    const rewards = new Float32Array(count);
    const uncertainty = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const member = elites[rng.int(elites.length)];
      const base = (member * count + i) * outputDim;
      for (let j = 0; j < outputDim; j++) {
        const noise = deterministic ? 0 : Math.sqrt(variance[base + j]) * rng.normal();
        const value = mean[base + j] + noise;
        if (j < od) nextObservations[i * od + j] = observations[i * od + j] + value;
        else rewards[i] = value;
      }
      uncertainty[i] = largestStd(variance, i, count, members, outputDim);
    }
    return { nextObservations, rewards, uncertainty };
  }

  /**
   * The expected next observations of `count` states: `s` plus the mean of
   * the elites' mean `Δs` (no sampling, so no randomness), with MOPO's
   * uncertainty of each. Used where one best guess of `s′` is wanted rather
   * than a rollout's sample.
   */
  expectedStep(
    observations: Float32Array,
    actions: Float32Array,
    count: number,
  ): Pick<ModelStep, "nextObservations" | "uncertainty"> {
    const od = this.observationDim;
    const { mean, variance } = this.#predict(observations, actions, count);
    const outputDim = od + 1;
    const elites = this.ensemble.elites;
    const nextObservations = observations.slice(0, count * od);
    for (const member of elites) {
      for (let i = 0; i < count; i++) {
        const base = (member * count + i) * outputDim;
        for (let j = 0; j < od; j++) nextObservations[i * od + j] += mean[base + j] / elites.length;
      }
    }
    const uncertainty = Float32Array.from(
      { length: count },
      (_, i) => largestStd(variance, i, count, this.ensemble.size, outputDim),
    );
    return { nextObservations, uncertainty };
  }

  /** Every member's Gaussian over `(Δs, r)` for `count` states and actions. */
  #predict(observations: Float32Array, actions: Float32Array, count: number) {
    const inputs = inputRows(observations, actions, count, this.observationDim, this.actionDim);
    return this.ensemble.predict(inputs, count);
  }

  /** Frees the ensemble's tensors. */
  dispose(): void {
    this.ensemble.dispose();
  }
}

/**
 * `transitions` with each `s′` replaced by the model's expected next state
 * from `(s, a)`, and each terminal flag by `isTerminal(s′)` where the
 * environment has a termination rule (else the flags are kept); states and
 * actions stay as they are, and rewards too unless `penalty` λ > 0, which
 * subtracts MOPO's `λ·max_k ‖σ_k(s, a)‖` (Yu et al. 2020, §4.3). A new set;
 * the input is left as it is.
 */
export function withExpectedNextStates(
  model: DynamicsModel,
  transitions: Transitions,
  { isTerminal, penalty = 0 }: {
    isTerminal?: EnvironmentSpec["isTerminal"];
    penalty?: number;
  } = {},
): Transitions {
  const out = copyTransitions(transitions);
  const count = out.size;
  const step = model.expectedStep(out.observations, out.actions, count);
  out.nextObservations.set(step.nextObservations);
  const terminals = isTerminal?.(out.nextObservations, count);
  if (terminals) out.dones.set(terminals);
  if (penalty > 0) {
    for (let i = 0; i < count; i++) out.rewards[i] -= penalty * step.uncertainty[i];
  }
  return out;
}

/** MOPO's uncertainty of row `i`: the largest over members of ‖σ_k(s, a)‖₂ of the whole output. */
function largestStd(
  variance: Float32Array,
  i: number,
  count: number,
  members: number,
  outputDim: number,
): number {
  let largest = 0;
  for (let k = 0; k < members; k++) {
    let squared = 0;
    const at = (k * count + i) * outputDim;
    for (let j = 0; j < outputDim; j++) squared += variance[at + j];
    largest = Math.max(largest, Math.sqrt(squared));
  }
  return largest;
}

/** The ensemble's input rows `[s, a]` of `count` states and actions. */
function inputRows(
  observations: Float32Array,
  actions: Float32Array,
  count: number,
  od: number,
  ad: number,
): Float32Array {
  const inputs = new Float32Array(count * (od + ad));
  for (let i = 0; i < count; i++) {
    inputs.set(observations.subarray(i * od, (i + 1) * od), i * (od + ad));
    inputs.set(actions.subarray(i * ad, (i + 1) * ad), i * (od + ad) + od);
  }
  return inputs;
}
