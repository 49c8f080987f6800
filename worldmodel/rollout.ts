/**
 * Truncated model rollouts (MBPO/MOPO): from a batch of start states, a
 * policy acts for `length` steps in a learned {@link DynamicsModel}; a
 * trajectory stops at a predicted terminal state. MOPO's reward is
 * `r̃ = r̂ − λ·u(s, a)` with `u` the largest predicted std norm over members.
 *
 * @module
 */
import type { Rng } from "../core/rng.ts";
import type { PolicyView, Transitions } from "../core/types.ts";
import type { EnvironmentSpec } from "../core/contracts/environment.ts";
import { allocateTransitions } from "../core/transitions.ts";
import type { DynamicsModel } from "./dynamics.ts";

/** Draws actions in [−1, 1] for `count` observations. */
export type ActionSampler = (observations: Float32Array, count: number, rng: Rng) => Float32Array;

/** Samples `a ~ N(μ(s), σ(s))` from a policy's action distribution, clipped to [−1, 1]. */
export function policySampler(policy: PolicyView): ActionSampler {
  return (observations, count, rng) => {
    const { mean, std } = policy.actionDistribution(observations, count);
    const actions = new Float32Array(mean.length);
    for (let i = 0; i < mean.length; i++) {
      actions[i] = Math.min(1, Math.max(-1, mean[i] + std[i] * rng.normal()));
    }
    return actions;
  };
}

/** Trajectories of a rollout, step-major per trajectory. */
export interface RolloutTrajectories {
  /** Number of trajectories. */
  count: number;
  /** Steps asked for. */
  length: number;
  /** Width of one observation. */
  observationDim: number;
  /** Width of one action. */
  actionDim: number;
  /** `count × (length + 1) × observationDim`: start state, then each next state. */
  observations: Float32Array;
  /** `count × length × actionDim`. */
  actions: Float32Array;
  /** `count × length`: model reward minus the uncertainty penalty. */
  rewards: Float32Array;
  /** `count × length`: MOPO uncertainty of each step. */
  uncertainty: Float32Array;
  /** `count × length`: 1 where the step reached a terminal state. */
  dones: Float32Array;
  /** `count`: steps taken by each trajectory (fewer than `length` after a terminal). */
  steps: Int32Array;
}

/** Settings of {@link rollout}. */
export interface RolloutSettings {
  /** Steps per trajectory (MOPO's k). */
  length: number;
  /** MOPO's λ; 0 leaves the model reward as is. */
  penaltyCoefficient: number;
  /** The environment's termination rule, applied to each step's predicted next states; absent: never. */
  isTerminal?: EnvironmentSpec["isTerminal"];
  /** Source of every draw. */
  rng: Rng;
  /** Use each elite's mean instead of sampling from its Gaussian. */
  deterministic?: boolean;
}

/** Rolls `sampleActions` out in `model` for `settings.length` steps from `count` start states. */
export function rollout(
  model: DynamicsModel,
  sampleActions: ActionSampler,
  startObservations: Float32Array,
  count: number,
  settings: RolloutSettings,
): RolloutTrajectories {
  const { observationDim: od, actionDim: ad } = model;
  const { length, rng } = settings;
  if (startObservations.length !== count * od) {
    throw new Error(
      `rollout: startObservations has ${startObservations.length} values, expected ${count} × ${od}`,
    );
  }
  const result: RolloutTrajectories = {
    count,
    length,
    observationDim: od,
    actionDim: ad,
    observations: new Float32Array(count * (length + 1) * od),
    actions: new Float32Array(count * length * ad),
    rewards: new Float32Array(count * length),
    uncertainty: new Float32Array(count * length),
    dones: new Float32Array(count * length),
    steps: new Int32Array(count),
  };
  for (let i = 0; i < count; i++) {
    result.observations.set(
      startObservations.subarray(i * od, (i + 1) * od),
      i * (length + 1) * od,
    );
  }
  let alive = Array.from({ length: count }, (_, i) => i);
  for (let t = 0; t < length && alive.length > 0; t++) {
    const batch = alive.length;
    const observations = new Float32Array(batch * od);
    alive.forEach((trajectory, row) => {
      const at = (trajectory * (length + 1) + t) * od;
      observations.set(result.observations.subarray(at, at + od), row * od);
    });
    const actions = sampleActions(observations, batch, rng);
    const step = model.step(observations, actions, batch, rng, settings.deterministic);
    const terminals = settings.isTerminal?.(step.nextObservations, batch);
    if (terminals && terminals.length !== batch) {
      throw new Error(`rollout: isTerminal returned ${terminals.length} flags for ${batch} states`);
    }
    const stillAlive: number[] = [];
    alive.forEach((trajectory, row) => {
      const next = step.nextObservations.subarray(row * od, (row + 1) * od);
      result.observations.set(next, (trajectory * (length + 1) + t + 1) * od);
      result.actions.set(
        actions.subarray(row * ad, (row + 1) * ad),
        (trajectory * length + t) * ad,
      );
      const at = trajectory * length + t;
      result.uncertainty[at] = step.uncertainty[row];
      result.rewards[at] = step.rewards[row] - settings.penaltyCoefficient * step.uncertainty[row];
      const terminal = terminals !== undefined && terminals[row] !== 0;
      result.dones[at] = terminal ? 1 : 0;
      result.steps[trajectory] = t + 1;
      if (!terminal) stillAlive.push(trajectory);
    });
    alive = stillAlive;
  }
  return result;
}

/** The rollout's valid steps as transitions. */
export function rolloutTransitions(trajectories: RolloutTrajectories): Transitions {
  const { count, length, observationDim: od, actionDim: ad, steps } = trajectories;
  const size = steps.reduce((sum, taken) => sum + taken, 0);
  const out = allocateTransitions(size, od, ad);
  let row = 0;
  for (let i = 0; i < count; i++) {
    for (let t = 0; t < steps[i]; t++) {
      const state = (i * (length + 1) + t) * od;
      out.observations.set(trajectories.observations.subarray(state, state + od), row * od);
      out.nextObservations.set(
        trajectories.observations.subarray(state + od, state + 2 * od),
        row * od,
      );
      const at = i * length + t;
      out.actions.set(trajectories.actions.subarray(at * ad, (at + 1) * ad), row * ad);
      out.rewards[row] = trajectories.rewards[at];
      out.dones[row] = trajectories.dones[at];
      row++;
    }
  }
  return out;
}
