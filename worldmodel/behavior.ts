/**
 * A behaviour-cloned Gaussian policy `π_β(a|s) = N(μ(s), σ²(s))`, fitted by
 * maximum likelihood on the dataset's own actions. Model rollouts use it when
 * no target policy exists yet (the first generation), so those rollouts follow
 * the dataset's behaviour.
 *
 * @module
 */
import type { ActionDistribution, PolicyView, Transitions } from "../core/types.ts";
import { type EnsembleOptions, type FitReport, ProbabilisticEnsemble } from "./ensemble.ts";

/** A fitted behaviour policy; the one-member Gaussian MLP behind it is freed by `dispose`. */
export class BehaviorPolicy implements PolicyView {
  /** The one-member Gaussian network `s ↦ N(μ, σ²)` over actions. */
  readonly network: ProbabilisticEnsemble;

  /** Wraps a one-member ensemble whose inputs are observations and targets actions. */
  constructor(network: ProbabilisticEnsemble) {
    if (network.size !== 1) {
      throw new Error(`behaviour policy: expected a one-member network, got ${network.size}`);
    }
    this.network = network;
  }

  /**
   * Fits `μ, σ` on the transitions' `(s, a)` pairs. Only the member count
   * differs from the dynamics ensemble's options (one member, one elite).
   */
  static fit(
    transitions: Transitions,
    options: EnsembleOptions,
    seed: number,
  ): { policy: BehaviorPolicy; report: FitReport } {
    const network = new ProbabilisticEnsemble(
      transitions.observationDim,
      transitions.actionDim,
      { ...options, ensembleSize: 1, eliteCount: 1 },
      seed,
    );
    const report = network.fit(transitions.observations, transitions.actions, transitions.size, {
      seed,
    });
    return { policy: new BehaviorPolicy(network), report };
  }

  /** Gaussian per observation; the mean is clipped to the action range [−1, 1]. */
  actionDistribution(observations: Float32Array, count: number): ActionDistribution {
    const { mean, variance } = this.network.predict(observations, count);
    const std = new Float32Array(variance.length);
    for (let i = 0; i < mean.length; i++) {
      mean[i] = Math.min(1, Math.max(-1, mean[i]));
      std[i] = Math.sqrt(variance[i]);
    }
    return { mean, std };
  }

  /** Frees the network's tensors. */
  dispose(): void {
    this.network.dispose();
  }
}
