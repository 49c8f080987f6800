/**
 * Synthetic trajectories as the Section 5.3 analysis reads them, whatever
 * model made them, and the two measures it takes of them: the likelihood of
 * their actions under a target policy (Figure 5) and their dynamics error
 * when their actions are replayed in the simulator (Figure 6).
 *
 * @module
 */
import type { Environment } from "../core/contracts/environment.ts";
import type { PolicyView } from "../core/types.ts";
import type { RolloutTrajectories } from "../worldmodel/rollout.ts";

/**
 * Trajectories of equal length: state `t + 1` is what the model says follows
 * state `t` under action `t`.
 */
export interface SyntheticTrajectories {
  /** Number of trajectories. */
  count: number;
  /** States per trajectory; a trajectory has `length − 1` transitions. */
  length: number;
  /** Width of one observation. */
  observationDim: number;
  /** Width of one action. */
  actionDim: number;
  /** `count × length × observationDim`. */
  observations: Float32Array;
  /** `count × length × actionDim`, in [−1, 1]; the last step's action starts no transition. */
  actions: Float32Array;
}

/**
 * A model rollout as synthetic trajectories of `length + 1` states. Rollouts
 * that stopped early at a terminal state are dropped, so every trajectory has
 * every step (HalfCheetah never terminates, so none is dropped there).
 */
export function fromRollout(rollout: RolloutTrajectories): SyntheticTrajectories {
  const { observationDim: od, actionDim: ad, length } = rollout;
  const complete: number[] = [];
  for (let i = 0; i < rollout.count; i++) if (rollout.steps[i] === length) complete.push(i);
  const states = length + 1;
  const out: SyntheticTrajectories = {
    count: complete.length,
    length: states,
    observationDim: od,
    actionDim: ad,
    observations: new Float32Array(complete.length * states * od),
    actions: new Float32Array(complete.length * states * ad),
  };
  complete.forEach((trajectory, row) => {
    out.observations.set(
      rollout.observations.subarray(trajectory * states * od, (trajectory + 1) * states * od),
      row * states * od,
    );
    // The final state has no action in a rollout; its slot stays 0 and is never read.
    out.actions.set(
      rollout.actions.subarray(trajectory * length * ad, (trajectory + 1) * length * ad),
      row * states * ad,
    );
  });
  return out;
}

const logTwoPi = Math.log(2 * Math.PI);

/**
 * Mean over trajectories and their first `steps` actions of
 * `Σ_j log N(a_j; μ_j(s), σ_j(s))`, the action's log-likelihood under the
 * policy (summed over action dimensions, as guidance's `log π` is).
 */
export function meanActionLogLikelihood(
  trajectories: SyntheticTrajectories,
  policy: PolicyView,
  steps: number = trajectories.length,
): number {
  const { count, length, observationDim: od, actionDim: ad } = trajectories;
  const used = Math.min(steps, length);
  const observations = new Float32Array(count * used * od);
  const actions = new Float32Array(count * used * ad);
  for (let i = 0; i < count; i++) {
    for (let t = 0; t < used; t++) {
      const from = i * length + t;
      const to = i * used + t;
      observations.set(trajectories.observations.subarray(from * od, (from + 1) * od), to * od);
      actions.set(trajectories.actions.subarray(from * ad, (from + 1) * ad), to * ad);
    }
  }
  const rows = count * used;
  const { mean, std } = policy.actionDistribution(observations, rows);
  let total = 0;
  for (let i = 0; i < rows * ad; i++) {
    const z = (actions[i] - mean[i]) / std[i];
    total += -0.5 * z * z - Math.log(std[i]) - 0.5 * logTwoPi;
  }
  return total / rows;
}

/**
 * Dynamics error per step: each trajectory's first state is loaded into the
 * simulator (`resetToObservation`) and its actions replayed; entry `t − 1` of
 * the result is the mean over trajectories of the squared error between
 * synthetic and real state `t`, averaged over observation dimensions, for
 * `t = 1 … steps`. A replay that reaches a terminal state stops, and its
 * later steps count no more.
 */
export function replayDynamicsError(
  trajectories: SyntheticTrajectories,
  environment: Environment,
  steps: number = trajectories.length - 1,
): number[] {
  const { count, length, observationDim: od, actionDim: ad } = trajectories;
  if (!environment.resetToObservation) {
    throw new Error(
      `environment '${environment.spec.id}' cannot be put in a given state (no resetToObservation), ` +
        "so synthetic actions cannot be replayed",
    );
  }
  if (environment.spec.observationDim !== od || environment.spec.actionDim !== ad) {
    throw new Error(
      `environment '${environment.spec.id}' has observation/action widths ` +
        `${environment.spec.observationDim}/${environment.spec.actionDim}, trajectories have ${od}/${ad}`,
    );
  }
  const used = Math.min(steps, length - 1);
  const sums = new Float64Array(used);
  const counts = new Float64Array(used);
  for (let i = 0; i < count; i++) {
    const base = i * length;
    environment.resetToObservation(trajectories.observations.subarray(base * od, (base + 1) * od));
    for (let t = 1; t <= used; t++) {
      const action = trajectories.actions.subarray((base + t - 1) * ad, (base + t) * ad);
      const real = environment.step(action);
      const synthetic = trajectories.observations.subarray((base + t) * od, (base + t + 1) * od);
      let squared = 0;
      for (let j = 0; j < od; j++) squared += (synthetic[j] - real.observation[j]) ** 2;
      sums[t - 1] += squared / od;
      counts[t - 1] += 1;
      if (real.terminated) break;
    }
  }
  return Array.from(sums, (sum, t) => (counts[t] > 0 ? sum / counts[t] : Number.NaN));
}
