/**
 * TD3+BC (Fujimoto & Gu, 2021, "A Minimalist Approach to Offline
 * Reinforcement Learning"): TD3 with a behaviour-cloning term in the actor
 * loss, following CORL's `td3_bc.py`.
 *
 * Critics: `y = r + γ(1 − d)·min_i Q'_i(s', clip(π'(s') + ε, −1, 1))` with
 * target policy smoothing `ε = clip(N(0, σ²), −c, c)`; both critics regress
 * on `y`. Actor, every `policyFrequency` critic steps:
 * `−λ·mean Q₁(s, π(s)) + mean (π(s) − a)²` with `λ = α / mean|Q₁(s, π(s))|`
 * held constant (Section 5 of the paper); then Polyak updates of all targets.
 *
 * For policy guidance the deterministic actor is read as `N(π(s), σ_g²)`
 * with `σ_g = 1` (the PGD paper's choice, Section 5.1; docs/algorithm.md).
 *
 * @module
 */
import { z } from "zod";
import { tf } from "../../core/compute.ts";
import type { PresetName } from "../../core/contracts/common.ts";
import {
  type Agent,
  type AgentContext,
  type AgentPlugin,
  type AgentSchedule,
  StackRefusedError,
} from "../../core/contracts/agent.ts";
import { deriveSeed, Rng } from "../../core/rng.ts";
import { formatOptionErrors, UserError } from "../../core/errors.ts";
import type { ActionDistribution, TransitionBatch } from "../../core/types.ts";
import { Adam } from "../../nn/adam.ts";
import { Mlp } from "../../nn/mlp.ts";
import { ObservationNormalizer } from "../../nn/normalize.ts";
import { polyakUpdate } from "../../nn/polyak.ts";
import { addClippedNoise } from "./exploration.ts";
import { Td3bcStack } from "./td3_bc_stack.ts";

/**
 * Training schedule per preset. `paper` is the paper's (1M steps, 16
 * evaluation episodes). `quick` fits the default grid (maze2d-umaze × three
 * data sources × both agents × four seeds, two workers on two cores) into
 * about 22 minutes with OpenBLAS, denoisers included, and evaluates ten times
 * a run so that a learning curve shows learning. Its 12k steps score on real
 * data as 4k did, and lift both diffusion sources off the dataset's own
 * behaviour; the scores behind it: docs/measurements.md.
 */
export const td3bcSchedules: Record<PresetName, AgentSchedule> = {
  smoke: { trainingSteps: 300, batchSize: 64, evaluateEvery: 300, evaluationEpisodes: 2 },
  quick: { trainingSteps: 12_000, batchSize: 256, evaluateEvery: 1_200, evaluationEpisodes: 16 },
  paper: {
    trainingSteps: 1_000_000,
    batchSize: 256,
    evaluateEvery: 5_000,
    evaluationEpisodes: 16,
  },
};

/**
 * Hidden widths per preset (the `hiddenDims` option overrides them): the
 * paper's 256-256 except for `smoke`, which only has to run in seconds.
 * `quick` keeps 256-256, since 128-128 learned much less on maze2d-umaze in
 * 4k steps (docs/measurements.md).
 */
export const td3bcHiddenDims: Record<PresetName, readonly number[]> = {
  smoke: [64, 64],
  quick: [256, 256],
  paper: [256, 256],
};

const positiveInt = z.number().int().positive();

/** Hyperparameters of TD3+BC; defaults are the paper's (and CORL's) values. */
export const td3bcOptionsSchema = z.strictObject({
  /** Hidden widths of actor and critics (ReLU); default: the preset's ({@link td3bcHiddenDims}). */
  hiddenDims: z.array(positiveInt).min(1).optional(),
  /** Adam step size of the actor. */
  actorLearningRate: z.number().positive().default(3e-4),
  /** Adam step size of the critics. */
  criticLearningRate: z.number().positive().default(3e-4),
  /** Adam ε. */
  adamEpsilon: z.number().nonnegative().default(1e-5),
  /** Discount γ. */
  discount: z.number().min(0).max(1).default(0.99),
  /** Polyak rate τ of the target networks. */
  tau: z.number().min(0).max(1).default(0.005),
  /** α: weight of the Q term against behaviour cloning. */
  alpha: z.number().nonnegative().default(2.5),
  /** σ of the target policy smoothing noise. */
  policyNoise: z.number().nonnegative().default(0.2),
  /** Clip c of the target policy smoothing noise. */
  noiseClip: z.number().nonnegative().default(0.5),
  /** Steps (calls of `update`) per actor and target step: TD3's policy delay, CORL's count. */
  policyFrequency: positiveInt.default(2),
  /**
   * Critic updates in one step, each on the step's batch with fresh smoothing
   * noise. 1 is CORL's count; the PGD authors' code does 2 critic updates and
   * one actor update per step (`num_critic_updates_per_step` = 2 with no
   * policy delay), so their "1M steps" are 2M critic updates:
   * `grids/paper-table2.json` sets 2 and `policyFrequency` 1.
   */
  criticUpdatesPerStep: positiveInt.default(1),
  /** Normalise observations with the dataset's mean and std (TD3+BC and CORL do). */
  normalizeObservations: z.boolean().default(true),
  /** Added to the std when normalising (CORL's 1e-3). */
  normalizationEpsilon: z.number().nonnegative().default(1e-3),
  /** σ of the Gaussian noise of non-deterministic actions (TD3's exploration noise). */
  explorationNoise: z.number().nonnegative().default(0.1),
  /** σ_g of the Gaussian `N(π(s), σ_g²)` guidance reads (the PGD paper, Section 5.1: unit std). */
  guidanceStd: z.number().positive().default(1),
  /** Overrides of the preset's schedule. */
  schedule: z.strictObject({
    trainingSteps: positiveInt.optional(),
    batchSize: positiveInt.optional(),
    evaluateEvery: positiveInt.optional(),
    evaluationEpisodes: positiveInt.optional(),
  }).optional(),
});

/** TD3+BC options after defaults. */
export type Td3bcOptions = z.infer<typeof td3bcOptionsSchema>;

function parseOptions(options: unknown): Td3bcOptions {
  const parsed = td3bcOptionsSchema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  throw new UserError(formatOptionErrors("td3bc", parsed.error));
}

/** `−λ·mean Q₁` with `λ = α / mean|Q₁|` treated as a constant, from critic 1's `[n, 1]` values. */
export function lambdaScaledQ(q1: tf.Tensor, alpha: number): tf.Scalar {
  const count = q1.shape[0]!;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [q, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const lambda = tf.div(alpha, tf.mean(tf.abs(q)));
    save([lambda]);
    return {
      value: tf.neg(tf.mul(lambda, tf.mean(q))) as tf.Scalar,
      // No gradient flows through λ.
      gradFunc: (dy: tf.Tensor, [savedLambda]: tf.Tensor[]) =>
        tf.mul(tf.fill(q.shape, -1 / count), tf.mul(dy, savedLambda)),
    };
  });
  return op(q1) as tf.Scalar;
}

class Td3bcAgent implements Agent {
  readonly schedule: AgentSchedule;
  readonly #options: Td3bcOptions;
  readonly #observationDim: number;
  readonly #actionDim: number;
  readonly #normalizer: ObservationNormalizer;
  readonly #rng: Rng;
  readonly #actor: Mlp;
  readonly #actorTarget: Mlp;
  readonly #critic: Mlp;
  readonly #criticTarget: Mlp;
  readonly #actorOptimizer: Adam;
  readonly #criticOptimizer: Adam;
  #step = 0;
  #lastActorLoss = 0;
  #lastBcLoss = 0;

  constructor(context: AgentContext, options: Td3bcOptions) {
    const { observationDim, actionDim, seed } = context;
    this.#options = options;
    this.#observationDim = observationDim;
    this.#actionDim = actionDim;
    this.schedule = { ...td3bcSchedules[context.preset], ...options.schedule };
    this.#normalizer = new ObservationNormalizer(
      observationDim,
      context.observationStats,
      options.normalizationEpsilon,
      options.normalizeObservations,
    );
    this.#rng = new Rng(deriveSeed(seed, "td3bc-noise"));
    const hiddenDims = options.hiddenDims ?? td3bcHiddenDims[context.preset];
    this.#actor = new Mlp({
      inputDim: observationDim,
      hiddenDims,
      outputDim: actionDim,
      seed: deriveSeed(seed, "actor"),
      name: "actor",
    });
    // Twin critics Q₁, Q₂ as one ensemble of two: one product per layer for both.
    this.#critic = new Mlp({
      inputDim: observationDim + actionDim,
      hiddenDims,
      outputDim: 1,
      ensembleSize: 2,
      seed: deriveSeed(seed, "critic"),
      name: "critic",
    });
    this.#actorTarget = this.#actor.clone("actor_target");
    this.#criticTarget = this.#critic.clone("critic_target");
    this.#actorOptimizer = new Adam(this.#actor.variables, {
      learningRate: options.actorLearningRate,
      epsilon: options.adamEpsilon,
    });
    this.#criticOptimizer = new Adam(this.#critic.variables, {
      learningRate: options.criticLearningRate,
      epsilon: options.adamEpsilon,
    });
  }

  update(batch: TransitionBatch): Record<string, number> {
    const o = this.#options;
    const count = batch.size;
    const [obsDim, actDim] = [this.#observationDim, this.#actionDim];
    const notDoneDiscount = new Float32Array(count);
    for (let i = 0; i < count; i++) notDoneDiscount[i] = o.discount * (1 - batch.dones[i]);
    // As CORL counts: the actor (and targets) step on every policyFrequency-th update.
    this.#step += 1;
    const updateActor = this.#step % o.policyFrequency === 0;

    return tf.tidy(() => {
      const states = tf.tensor2d(this.#normalizer.apply(batch.observations, count), [
        count,
        obsDim,
      ]);
      const actions = tf.tensor2d(batch.actions, [count, actDim]);
      const nextStates = tf.tensor2d(
        this.#normalizer.apply(batch.nextObservations, count),
        [count, obsDim],
      );
      const rewards = tf.tensor2d(batch.rewards, [count, 1]);
      const stateActions = tf.concat([states, actions], 1);

      let criticLoss = 0;
      for (let update = 0; update < o.criticUpdatesPerStep; update++) {
        criticLoss += this.#updateCritic(nextStates, rewards, stateActions, notDoneDiscount);
      }
      criticLoss /= o.criticUpdatesPerStep;

      if (updateActor) {
        // Actor loss: −λ·mean Q₁(s, π(s)) + mean (π(s) − a)².
        let bcLoss: tf.Scalar | undefined;
        const actor = tf.variableGrads(() => {
          const policyActions = tf.tanh(this.#actor.apply(states));
          const q1 = this.#critic.apply(tf.concat([states, policyActions], 1), {
            inputGradient: true,
            parameterGradient: false,
            member: 0,
          });
          bcLoss = tf.keep(tf.mean(tf.squaredDifference(policyActions, actions)));
          return tf.add(lambdaScaledQ(q1, o.alpha), bcLoss) as tf.Scalar;
        }, this.#actor.variables);
        this.#actorOptimizer.step(actor.grads);
        polyakUpdate(this.#criticTarget.variables, this.#critic.variables, o.tau);
        polyakUpdate(this.#actorTarget.variables, this.#actor.variables, o.tau);
        this.#lastActorLoss = actor.value.dataSync()[0];
        this.#lastBcLoss = bcLoss!.dataSync()[0];
        bcLoss!.dispose();
      }
      return { criticLoss, actorLoss: this.#lastActorLoss, bcLoss: this.#lastBcLoss };
    });
  }

  /** One critic update on the step's batch; returns its loss. */
  #updateCritic(
    nextStates: tf.Tensor2D,
    rewards: tf.Tensor2D,
    stateActions: tf.Tensor2D,
    notDoneDiscount: Float32Array,
  ): number {
    const o = this.#options;
    const [count, actDim] = [rewards.shape[0], this.#actionDim];
    // Target policy smoothing noise ε = clip(N(0, σ²), −c, c), drawn from the agent's seed.
    const noise = new Float32Array(count * actDim);
    for (let i = 0; i < noise.length; i++) {
      noise[i] = Math.min(o.noiseClip, Math.max(-o.noiseClip, o.policyNoise * this.#rng.normal()));
    }
    return tf.tidy(() => {
      // TD target y = r + γ(1 − d)·min_i Q'_i(s', clip(π'(s') + ε, −1, 1)).
      const nextActions = tf.clipByValue(
        tf.add(tf.tanh(this.#actorTarget.predict(nextStates)), tf.tensor2d(noise, [count, actDim])),
        -1,
        1,
      );
      const nextQ = tf.min(this.#criticTarget.predict(tf.concat([nextStates, nextActions], 1)), 0);
      const target = tf.add(rewards, tf.mul(tf.tensor2d(notDoneDiscount, [count, 1]), nextQ));

      // Critic loss: MSE(Q₁, y) + MSE(Q₂, y).
      const critic = tf.variableGrads(
        () => tf.mul(tf.mean(tf.squaredDifference(this.#critic.apply(stateActions), target)), 2),
        this.#critic.variables,
      );
      this.#criticOptimizer.step(critic.grads);
      return critic.value.dataSync()[0];
    });
  }

  /** π(s) in [−1, 1] for `count` observations. */
  #policyMean(observations: Float32Array, count: number): Float32Array {
    return tf.tidy(() => {
      const states = tf.tensor2d(
        this.#normalizer.apply(observations, count),
        [count, this.#observationDim],
      );
      return tf.tanh(this.#actor.predict(states)).dataSync() as Float32Array;
    });
  }

  act(observations: Float32Array, count: number, deterministic: boolean): Float32Array {
    const actions = this.#policyMean(observations, count);
    return deterministic
      ? actions
      : addClippedNoise(actions, this.#options.explorationNoise, this.#rng);
  }

  actionDistribution(observations: Float32Array, count: number): ActionDistribution {
    const mean = this.#policyMean(observations, count);
    return { mean, std: new Float32Array(mean.length).fill(this.#options.guidanceStd) };
  }

  dispose(): void {
    for (const net of [this.#actor, this.#actorTarget, this.#critic, this.#criticTarget]) {
      net.dispose();
    }
    this.#actorOptimizer.dispose();
    this.#criticOptimizer.dispose();
  }
}

/**
 * The TD3+BC agent plugin; `options` are validated against
 * {@link td3bcOptionsSchema}. `createStack` trains several seeds as one
 * stack (td3_bc_stack.ts), each member bit-identical to its agent alone.
 */
export function td3bc(options?: unknown): AgentPlugin {
  const parsed = parseOptions(options);
  return {
    name: "td3bc",
    options: parsed as Record<string, unknown>,
    create: (context: AgentContext) => new Td3bcAgent(context, parsed),
    createStack: (contexts: readonly AgentContext[]) => {
      if (parsed.criticUpdatesPerStep !== 1) {
        // The stack's update holds one critic update; the authors' count is not stacked yet.
        throw new StackRefusedError(
          "td3bc stack: criticUpdatesPerStep other than 1 runs unstacked only",
        );
      }
      const preset = contexts[0]?.preset ?? "paper";
      return new Td3bcStack(
        contexts,
        parsed,
        { ...td3bcSchedules[preset], ...parsed.schedule },
        parsed.hiddenDims ?? td3bcHiddenDims[preset],
      );
    },
  };
}
