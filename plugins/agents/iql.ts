/**
 * Implicit Q-Learning (Kostrikov, Nair & Levine, 2021, "Offline
 * Reinforcement Learning with Implicit Q-Learning"), following CORL's
 * `iql.py`.
 *
 * Each step, in CORL's order:
 * 1. value, eq. (5): `L_V = E[L₂^τ(min_i Q̂_i(s, a) − V(s))]` with the
 *    expectile loss `L₂^τ(u) = |τ − 1(u < 0)|·u²`;
 * 2. critics, eq. (6): `L_Q = E[(r + γ(1 − d)·V(s') − Q_i(s, a))²]`
 *    averaged over the twin critics, `V(s')` taken before step 1; then a
 *    Polyak update of the target critics;
 * 3. actor, eq. (7) (advantage-weighted regression):
 *    `L_π = −E[min(exp(β·(Q̂ − V)), 100)·log π(a|s)]`, the advantage taken
 *    from step 1. The actor is a Gaussian with a tanh-bounded mean and a
 *    state-independent log-std clipped to [−20, 2]; its step size decays
 *    with a cosine over training, as CORL and the authors' code do.
 *
 * Policy guidance reads the same Gaussian (mean and std, no tanh Jacobian).
 *
 * @module
 */
import { z } from "zod";
import { tf } from "../../core/compute.ts";
import type { PresetName } from "../../core/contracts/common.ts";
import type {
  Agent,
  AgentContext,
  AgentPlugin,
  AgentSchedule,
} from "../../core/contracts/agent.ts";
import { deriveSeed, Rng } from "../../core/rng.ts";
import { formatOptionErrors, UserError } from "../../core/errors.ts";
import type { ActionDistribution, TransitionBatch } from "../../core/types.ts";
import { Adam } from "../../nn/adam.ts";
import { Mlp } from "../../nn/mlp.ts";
import { ObservationNormalizer } from "../../nn/normalize.ts";
import { polyakUpdate } from "../../nn/polyak.ts";
import { addClippedNoise } from "./exploration.ts";
import { variableFrom } from "../../nn/flat.ts";
import { IqlStack } from "./iql_stack.ts";

/**
 * Training schedule per preset. `paper` is the paper's (1M steps, 16
 * evaluation episodes). `quick` fits the default grid (maze2d-umaze × three
 * data sources × both agents × four seeds, two workers on two cores) into
 * about 22 minutes with OpenBLAS, and evaluates ten times a run so that a
 * learning curve shows learning; IQL gets 16k steps there because it rises
 * more slowly than TD3+BC on maze2d (scores by step count: docs/measurements.md).
 */
export const iqlSchedules: Record<PresetName, AgentSchedule> = {
  smoke: { trainingSteps: 300, batchSize: 64, evaluateEvery: 300, evaluationEpisodes: 2 },
  quick: { trainingSteps: 16_000, batchSize: 256, evaluateEvery: 1_600, evaluationEpisodes: 16 },
  paper: {
    trainingSteps: 1_000_000,
    batchSize: 256,
    evaluateEvery: 5_000,
    evaluationEpisodes: 16,
  },
};

/**
 * Hidden widths per preset (the `hiddenDims` option overrides them): the
 * paper's 256-256 for `paper`. `quick` uses 128-128, which scored as 256-256
 * did on maze2d-umaze (docs/measurements.md) at half the cost per step, and
 * so pays for the 16k steps IQL needs there. `smoke` only has to run in seconds.
 */
export const iqlHiddenDims: Record<PresetName, readonly number[]> = {
  smoke: [64, 64],
  quick: [128, 128],
  paper: [256, 256],
};

const positiveInt = z.number().int().positive();

/** Hyperparameters of IQL; defaults are the paper's (and CORL's) values. */
export const iqlOptionsSchema = z.strictObject({
  /** Hidden widths of actor, critics and value network (ReLU); default: the preset's ({@link iqlHiddenDims}). */
  hiddenDims: z.array(positiveInt).min(1).optional(),
  /** Adam step size of the actor (start of the cosine decay). */
  actorLearningRate: z.number().positive().default(3e-4),
  /** Adam step size of the critics. */
  criticLearningRate: z.number().positive().default(3e-4),
  /** Adam step size of the value network. */
  valueLearningRate: z.number().positive().default(3e-4),
  /** Adam ε. */
  adamEpsilon: z.number().nonnegative().default(1e-5),
  /** Decay the actor's step size to 0 with a cosine over the training steps. */
  actorCosineDecay: z.boolean().default(true),
  /** Discount γ. */
  discount: z.number().min(0).max(1).default(0.99),
  /**
   * Factor on rewards before the TD target. IQL's authors (and CORL) scale
   * locomotion rewards by 1000 / (max − min episode return) of the dataset;
   * that needs the dataset, so it is set here (default 1: rewards as given).
   */
  rewardScale: z.number().positive().default(1),
  /** Polyak rate of the target critics. */
  tau: z.number().min(0).max(1).default(0.005),
  /** Expectile τ of the value loss. */
  expectile: z.number().gt(0).lt(1).default(0.7),
  /** Inverse temperature β of the advantage weights. */
  temperature: z.number().nonnegative().default(3.0),
  /** Clip of the exponentiated advantage. */
  maxAdvantageWeight: z.number().positive().default(100),
  /** Lower clip of the actor's log-std. */
  logStdMin: z.number().default(-20),
  /** Upper clip of the actor's log-std. */
  logStdMax: z.number().default(2),
  /** Normalise observations with the dataset's mean and std (CORL does). */
  normalizeObservations: z.boolean().default(true),
  /** Added to the std when normalising (CORL's 1e-3). */
  normalizationEpsilon: z.number().nonnegative().default(1e-3),
  /** Overrides of the preset's schedule. */
  schedule: z.strictObject({
    trainingSteps: positiveInt.optional(),
    batchSize: positiveInt.optional(),
    evaluateEvery: positiveInt.optional(),
    evaluationEpisodes: positiveInt.optional(),
  }).optional(),
}).refine((o) => o.logStdMin < o.logStdMax, {
  message: "logStdMin must be below logStdMax",
  path: ["logStdMin"],
});

/** IQL options after defaults. */
export type IqlOptions = z.infer<typeof iqlOptionsSchema>;

function parseOptions(options: unknown): IqlOptions {
  const parsed = iqlOptionsSchema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  throw new UserError(formatOptionErrors("iql", parsed.error));
}

/**
 * A loss and its gradient with respect to the network output it was computed
 * from. The losses below write that gradient out: the networks then carry it
 * back in one kernel each ({@link Mlp.forward}), and a training step needs no
 * gradient tape, whose bookkeeping costs more than a small network's products.
 */
export interface LossWithGradient {
  /** The loss. */
  loss: tf.Scalar;
  /** Its gradient with respect to the network output (same shape). */
  gradient: tf.Tensor;
}

/**
 * The value loss, eq. (5): `mean L₂^τ(u)` of the advantages `u = Q̂ − V`,
 * with the expectile loss `L₂^τ(u) = |τ − 1(u < 0)|·u²`; its gradient with
 * respect to `V` is `−2·|τ − 1(u < 0)|·u / n`.
 */
export function valueLoss(advantage: tf.Tensor, expectile: number): LossWithGradient {
  // |τ − 1(u < 0)|: τ where u ≥ 0, 1 − τ where u < 0.
  const weight = tf.add(expectile, tf.mul(1 - 2 * expectile, tf.step(tf.neg(advantage))));
  const weighted = tf.mul(weight, advantage);
  return {
    loss: tf.mean(tf.mul(weighted, advantage)) as tf.Scalar,
    gradient: tf.mul(weighted, -2 / advantage.size),
  };
}

/**
 * The critic loss, eq. (6): the squared TD error `(Q_i − y)²` averaged over
 * the batch and the twin critics (`q` is `[2, n, 1]`, `y` is `[n, 1]`).
 */
export function criticLoss(q: tf.Tensor, target: tf.Tensor): LossWithGradient {
  const residual = tf.sub(q, target);
  return {
    loss: tf.mean(tf.square(residual)) as tf.Scalar,
    gradient: tf.mul(residual, 2 / residual.size),
  };
}

/**
 * The actor loss, eq. (7): `−mean(w·log π(a|s))` for a Gaussian with mean
 * `tanh(net)` and std `exp(clip(logStd))`, with its gradients with respect to
 * the network output `net` (`[n, actionDim]`) and the log-std:
 * `∂/∂net = −(w/n)·(z/σ)·(1 − tanh²(net))` and
 * `∂/∂logStd = −Σ w·(z² − 1) / n` inside the clip range (0 outside), where
 * `z = (a − tanh(net))/σ`.
 */
export function actorLoss(
  net: tf.Tensor,
  logStd: tf.Tensor,
  actions: tf.Tensor,
  weights: tf.Tensor,
  logStdRange: readonly [number, number],
): { loss: tf.Scalar; netGradient: tf.Tensor; logStdGradient: tf.Tensor } {
  const count = net.shape[0]!;
  const actionDim = net.shape[1]!;
  const mean = tf.tanh(net);
  const clippedLogStd = tf.clipByValue(logStd, logStdRange[0], logStdRange[1]);
  const std = tf.exp(clippedLogStd);
  const z = tf.div(tf.sub(actions, mean), std);
  const zSquared = tf.square(z);
  const logProb = tf.sub(
    tf.sum(tf.mul(zSquared, -0.5), 1, true),
    tf.add(tf.sum(clippedLogStd), 0.5 * actionDim * Math.log(2 * Math.PI)),
  );
  const inRange = tf.logicalAnd(
    tf.greaterEqual(logStd, logStdRange[0]),
    tf.lessEqual(logStd, logStdRange[1]),
  );
  return {
    loss: tf.neg(tf.mean(tf.mul(weights, logProb))) as tf.Scalar,
    netGradient: tf.mul(
      tf.div(tf.mul(weights, z), tf.mul(std, -count)),
      tf.sub(1, tf.square(mean)),
    ),
    logStdGradient: tf.mul(
      tf.cast(inRange, "float32"),
      tf.mul(tf.sum(tf.mul(weights, tf.sub(zSquared, 1)), 0), -1 / count),
    ),
  };
}

let logStdCounter = 0;

class IqlAgent implements Agent {
  readonly schedule: AgentSchedule;
  readonly #options: IqlOptions;
  readonly #observationDim: number;
  readonly #actionDim: number;
  readonly #normalizer: ObservationNormalizer;
  readonly #rng: Rng;
  readonly #actor: Mlp;
  readonly #logStd: tf.Variable<tf.Rank.R1>;
  readonly #critic: Mlp;
  readonly #criticTarget: Mlp;
  readonly #value: Mlp;
  readonly #actorOptimizer: Adam;
  readonly #criticOptimizer: Adam;
  readonly #valueOptimizer: Adam;
  #step = 0;

  constructor(context: AgentContext, options: IqlOptions) {
    const { observationDim, actionDim, seed } = context;
    this.#options = options;
    this.#observationDim = observationDim;
    this.#actionDim = actionDim;
    this.schedule = { ...iqlSchedules[context.preset], ...options.schedule };
    this.#normalizer = new ObservationNormalizer(
      observationDim,
      context.observationStats,
      options.normalizationEpsilon,
      options.normalizeObservations,
    );
    this.#rng = new Rng(deriveSeed(seed, "iql-noise"));
    const hiddenDims = options.hiddenDims ?? iqlHiddenDims[context.preset];
    this.#actor = new Mlp({
      inputDim: observationDim,
      hiddenDims,
      outputDim: actionDim,
      seed: deriveSeed(seed, "actor"),
      name: "actor",
    });
    this.#logStd = variableFrom(tf.zeros([actionDim]), true, `iql_log_std_${logStdCounter++}`);
    // Twin critics Q₁, Q₂ as one ensemble of two: one product per layer for both.
    this.#critic = new Mlp({
      inputDim: observationDim + actionDim,
      hiddenDims,
      outputDim: 1,
      ensembleSize: 2,
      seed: deriveSeed(seed, "critic"),
      name: "critic",
    });
    this.#criticTarget = this.#critic.clone("critic_target");
    this.#value = new Mlp({
      inputDim: observationDim,
      hiddenDims,
      outputDim: 1,
      seed: deriveSeed(seed, "value"),
      name: "value",
    });
    const adam = (variables: tf.Variable[], learningRate: number) =>
      new Adam(variables, { learningRate, epsilon: options.adamEpsilon });
    this.#actorOptimizer = adam(this.#actorVariables, options.actorLearningRate);
    this.#criticOptimizer = adam(this.#critic.variables, options.criticLearningRate);
    this.#valueOptimizer = adam(this.#value.variables, options.valueLearningRate);
  }

  get #actorVariables(): tf.Variable[] {
    return [...this.#actor.variables, this.#logStd];
  }

  /** Actor step size at the current step: cosine decay to 0 (PyTorch's CosineAnnealingLR). */
  #actorLearningRate(): number {
    const { actorLearningRate, actorCosineDecay } = this.#options;
    if (!actorCosineDecay) return actorLearningRate;
    const progress = Math.min(1, this.#step / this.schedule.trainingSteps);
    return actorLearningRate * 0.5 * (1 + Math.cos(Math.PI * progress));
  }

  update(batch: TransitionBatch): Record<string, number> {
    const o = this.#options;
    const count = batch.size;
    const [obsDim, actDim] = [this.#observationDim, this.#actionDim];
    const notDoneDiscount = new Float32Array(count);
    const scaledRewards = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      notDoneDiscount[i] = o.discount * (1 - batch.dones[i]);
      scaledRewards[i] = o.rewardScale * batch.rewards[i];
    }
    const actorLearningRate = this.#actorLearningRate();
    this.#step += 1;

    const losses: number[] = tf.tidy(() => {
      const states = tf.tensor2d(this.#normalizer.apply(batch.observations, count), [
        count,
        obsDim,
      ]);
      const actions = tf.tensor2d(batch.actions, [count, actDim]);
      const nextStates = tf.tensor2d(
        this.#normalizer.apply(batch.nextObservations, count),
        [count, obsDim],
      );
      const rewards = tf.tensor2d(scaledRewards, [count, 1]);
      const stateActions = tf.concat([states, actions], 1);
      const nextValue = this.#value.predict(nextStates);
      const targetQ = tf.min(this.#criticTarget.predict(stateActions), 0);

      // Each loss comes with its gradient with respect to its network's
      // output; the network carries it back (Mlp.forward, LossWithGradient).

      // 1. Value, eq. (5); the advantage weights of step 3 come from the same V(s).
      const valuePass = this.#value.forward(states);
      const advantage = tf.sub(targetQ, valuePass.output);
      const value = valueLoss(advantage, o.expectile);
      this.#valueOptimizer.step(valuePass.backward(value.gradient));
      const advantageWeights = tf.minimum(
        tf.exp(tf.mul(advantage, o.temperature)),
        o.maxAdvantageWeight,
      );

      // 2. Critics, eq. (6), then the target critics.
      const target = tf.add(rewards, tf.mul(tf.tensor2d(notDoneDiscount, [count, 1]), nextValue));
      const criticPass = this.#critic.forward(stateActions);
      const critic = criticLoss(criticPass.output, target);
      this.#criticOptimizer.step(criticPass.backward(critic.gradient));
      polyakUpdate(this.#criticTarget.variables, this.#critic.variables, o.tau);

      // 3. Actor, eq. (7): advantage-weighted negative log-likelihood of the data's actions.
      const actorPass = this.#actor.forward(states);
      const actor = actorLoss(actorPass.output, this.#logStd, actions, advantageWeights, [
        o.logStdMin,
        o.logStdMax,
      ]);
      this.#actorOptimizer.step(
        [...actorPass.backward(actor.netGradient), actor.logStdGradient],
        actorLearningRate,
      );
      return [value.loss, critic.loss, actor.loss].map((loss) => loss.dataSync()[0]);
    });
    return { valueLoss: losses[0], criticLoss: losses[1], actorLoss: losses[2] };
  }

  /** Mean (tanh-bounded) and std of π(·|s) for `count` observations. */
  actionDistribution(observations: Float32Array, count: number): ActionDistribution {
    const o = this.#options;
    return tf.tidy(() => {
      const states = tf.tensor2d(
        this.#normalizer.apply(observations, count),
        [count, this.#observationDim],
      );
      const mean = tf.tanh(this.#actor.predict(states)).dataSync() as Float32Array;
      const std = tf.exp(tf.clipByValue(this.#logStd, o.logStdMin, o.logStdMax)).dataSync();
      const stds = new Float32Array(mean.length);
      for (let i = 0; i < count; i++) stds.set(std, i * this.#actionDim);
      return { mean, std: stds };
    });
  }

  act(observations: Float32Array, count: number, deterministic: boolean): Float32Array {
    const { mean, std } = this.actionDistribution(observations, count);
    return deterministic ? mean : addClippedNoise(mean, std, this.#rng);
  }

  dispose(): void {
    for (const net of [this.#actor, this.#critic, this.#criticTarget, this.#value]) net.dispose();
    this.#logStd.dispose();
    this.#actorOptimizer.dispose();
    this.#criticOptimizer.dispose();
    this.#valueOptimizer.dispose();
  }
}

/**
 * The IQL agent plugin; `options` are validated against
 * {@link iqlOptionsSchema}. `createStack` trains several seeds as one stack
 * (iql_stack.ts), each member bit-identical to its agent alone.
 */
export function iql(options?: unknown): AgentPlugin {
  const parsed = parseOptions(options);
  return {
    name: "iql",
    options: parsed as Record<string, unknown>,
    create: (context: AgentContext) => new IqlAgent(context, parsed),
    createStack: (contexts: readonly AgentContext[]) => {
      const preset = contexts[0]?.preset ?? "paper";
      return new IqlStack(
        contexts,
        parsed,
        { ...iqlSchedules[preset], ...parsed.schedule },
        parsed.hiddenDims ?? iqlHiddenDims[preset],
      );
    },
  };
}
