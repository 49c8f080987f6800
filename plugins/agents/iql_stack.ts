/**
 * IQL for a stack of K seeds as one computation (seeds as a batch
 * dimension): the K actors, value networks and log-stds are stacked K deep,
 * the K seeds' twin critics are one ensemble of 2K (member `k` seed k's Q₁,
 * member `K + k` its Q₂), with targets and Adam moments stacked alike.
 *
 * The single-seed agent in iql.ts is the specification: its loss functions
 * (`valueLoss`, `criticLoss`, `actorLoss`) are written here once more for
 * `[K, n, …]` values, with every reduction taken per member in the order the
 * single agent takes it. On the wasm backend's `blas` and `wasm` kernel sets a
 * member's losses and actions are bit-identical to its seed's agent alone
 * (tests/iql_stack_test.ts).
 *
 * @module
 */
import { tf } from "../../core/compute.ts";
import type {
  AgentContext,
  AgentSchedule,
  AgentStack,
  StackMember,
} from "../../core/contracts/agent.ts";
import { deriveSeed, Rng } from "../../core/rng.ts";
import type { ActionDistribution, TransitionBatch } from "../../core/types.ts";
import { Adam } from "../../nn/adam.ts";
import { Mlp } from "../../nn/mlp.ts";
import { ObservationNormalizer } from "../../nn/normalize.ts";
import { polyakUpdate } from "../../nn/polyak.ts";
import { addClippedNoise } from "./exploration.ts";
import { checkStackBatches, checkStackContexts, checkStackMember } from "./stack_checks.ts";
import { variableFrom } from "../../nn/flat.ts";
import type { IqlOptions } from "./iql.ts";

/** Per-member losses `[K]` and their gradient with respect to the stacked network output. */
export interface StackedLossWithGradient {
  /** Each member's loss. */
  losses: tf.Tensor1D;
  /** The gradient of each member's loss with respect to its network's output (same shape). */
  gradient: tf.Tensor;
}

/** Each member's mean over its own `[K, …]` slice, in the slice's memory order. */
function memberMeans(values: tf.Tensor): tf.Tensor1D {
  return tf.mean(tf.reshape(values, [values.shape[0], -1]), 1) as tf.Tensor1D;
}

/** iql.ts's `valueLoss` per member: advantages `[K, n, 1]`. */
export function stackedValueLoss(advantage: tf.Tensor, expectile: number): StackedLossWithGradient {
  const weight = tf.add(expectile, tf.mul(1 - 2 * expectile, tf.step(tf.neg(advantage))));
  const weighted = tf.mul(weight, advantage);
  return {
    losses: memberMeans(tf.mul(weighted, advantage)),
    gradient: tf.mul(weighted, -2 / (advantage.size / advantage.shape[0])),
  };
}

/**
 * iql.ts's `criticLoss` per member: `q` is `[2, K, n, 1]` (Q₁s, then Q₂s), `y`
 * is `[K, n, 1]`; each member's mean runs over its Q₁'s errors, then its Q₂'s.
 */
export function stackedCriticLoss(q: tf.Tensor, target: tf.Tensor): StackedLossWithGradient {
  const residual = tf.sub(q, target);
  const perMember = tf.transpose(tf.square(residual), [1, 0, 2, 3]);
  return {
    losses: memberMeans(perMember),
    gradient: tf.mul(residual, 2 / (residual.size / q.shape[1]!)),
  };
}

/**
 * iql.ts's `actorLoss` per member: `net`, `actions` `[K, n, actionDim]`,
 * `logStd` `[K, 1, actionDim]`, `weights` `[K, n, 1]`.
 */
export function stackedActorLoss(
  net: tf.Tensor,
  logStd: tf.Tensor,
  actions: tf.Tensor,
  weights: tf.Tensor,
  logStdRange: readonly [number, number],
): { losses: tf.Tensor1D; netGradient: tf.Tensor; logStdGradient: tf.Tensor } {
  const [members, count, actionDim] = net.shape;
  const mean = tf.tanh(net);
  const clippedLogStd = tf.clipByValue(logStd, logStdRange[0], logStdRange[1]);
  const std = tf.exp(clippedLogStd);
  const z = tf.div(tf.sub(actions, mean), std);
  const zSquared = tf.square(z);
  const logProb = tf.sub(
    tf.sum(tf.mul(zSquared, -0.5), 2, true),
    tf.add(tf.sum(clippedLogStd, 2, true), 0.5 * actionDim * Math.log(2 * Math.PI)),
  );
  const inRange = tf.logicalAnd(
    tf.greaterEqual(logStd, logStdRange[0]),
    tf.lessEqual(logStd, logStdRange[1]),
  );
  // Σ over each member's batch as the single agent sums: over the leading
  // axis, so the batch is brought to the front.
  const batchSum = tf.sum(
    tf.transpose(tf.mul(weights, tf.sub(zSquared, 1)), [1, 0, 2]),
    0,
  );
  return {
    losses: tf.neg(memberMeans(tf.mul(weights, logProb))),
    netGradient: tf.mul(
      tf.div(tf.mul(weights, z), tf.mul(std, -count)),
      tf.sub(1, tf.square(mean)),
    ),
    logStdGradient: tf.mul(
      tf.cast(inRange, "float32"),
      tf.reshape(tf.mul(batchSum, -1 / count), [members, 1, actionDim]),
    ),
  };
}

let logStdCounter = 0;

/**
 * K IQL agents as one stack; made by the iql plugin's `createStack`.
 * `schedule` and `hiddenDims` are the single agent's for the preset.
 */
export class IqlStack implements AgentStack {
  readonly size: number;
  readonly schedule: AgentSchedule;
  readonly #options: IqlOptions;
  readonly #observationDim: number;
  readonly #actionDim: number;
  readonly #normalizers: ObservationNormalizer[];
  readonly #rngs: Rng[];
  readonly #actor: Mlp;
  readonly #logStd: tf.Variable<tf.Rank.R3>;
  readonly #critic: Mlp;
  readonly #criticTarget: Mlp;
  readonly #value: Mlp;
  readonly #actorOptimizer: Adam;
  readonly #criticOptimizer: Adam;
  readonly #valueOptimizer: Adam;
  #step = 0;

  /** One member per context (same dimensions and preset), as iql.ts would build each alone. */
  constructor(
    contexts: readonly AgentContext[],
    options: IqlOptions,
    schedule: AgentSchedule,
    hiddenDims: readonly number[],
  ) {
    const { observationDim, actionDim } = checkStackContexts("iql", contexts);
    const members = contexts.length;
    this.size = members;
    this.schedule = schedule;
    this.#options = options;
    this.#observationDim = observationDim;
    this.#actionDim = actionDim;
    this.#normalizers = contexts.map((context) =>
      new ObservationNormalizer(
        observationDim,
        context.observationStats,
        options.normalizationEpsilon,
        options.normalizeObservations,
      )
    );
    this.#rngs = contexts.map((context) => new Rng(deriveSeed(context.seed, "iql-noise")));
    const build = (name: string, inputDim: number, outputDim: number, ensembleSize = 1) =>
      contexts.map((context) =>
        new Mlp({
          inputDim,
          hiddenDims,
          outputDim,
          ensembleSize,
          seed: deriveSeed(context.seed, name),
          name,
        })
      );
    const actors = build("actor", observationDim, actionDim);
    const critics = build("critic", observationDim + actionDim, 1, 2);
    const values = build("value", observationDim, 1);
    this.#actor = Mlp.gather(actors.map((net) => [net, 0] as const), "actors");
    this.#critic = Mlp.gather(
      [0, 1].flatMap((twin) => critics.map((net) => [net, twin] as const)),
      "critics",
    );
    this.#value = Mlp.gather(values.map((net) => [net, 0] as const), "values");
    for (const net of [...actors, ...critics, ...values]) net.dispose();
    this.#criticTarget = this.#critic.clone("critics_target");
    this.#logStd = variableFrom(
      tf.zeros([members, 1, actionDim]),
      true,
      `iql_stack_log_std_${logStdCounter++}`,
    );
    const adam = (variables: tf.Variable[], learningRate: number) =>
      new Adam(variables, { learningRate, epsilon: options.adamEpsilon });
    this.#actorOptimizer = adam(
      [...this.#actor.variables, this.#logStd],
      options.actorLearningRate,
    );
    this.#criticOptimizer = adam(this.#critic.variables, options.criticLearningRate);
    this.#valueOptimizer = adam(this.#value.variables, options.valueLearningRate);
  }

  /** As iql.ts: cosine decay of the actor's step size to 0. */
  #actorLearningRate(): number {
    const { actorLearningRate, actorCosineDecay } = this.#options;
    if (!actorCosineDecay) return actorLearningRate;
    const progress = Math.min(1, this.#step / this.schedule.trainingSteps);
    return actorLearningRate * 0.5 * (1 + Math.cos(Math.PI * progress));
  }

  update(batches: readonly TransitionBatch[]): Record<string, number>[] {
    const o = this.#options;
    const members = this.size;
    const count = checkStackBatches("iql", batches, members);
    const [obsDim, actDim] = [this.#observationDim, this.#actionDim];
    const states = new Float32Array(members * count * obsDim);
    const nextStates = new Float32Array(members * count * obsDim);
    const actions = new Float32Array(members * count * actDim);
    const notDoneDiscount = new Float32Array(members * count);
    const scaledRewards = new Float32Array(members * count);
    batches.forEach((batch, k) => {
      const [rows, stateRows] = [k * count, k * count * obsDim];
      for (let i = 0; i < count; i++) {
        notDoneDiscount[rows + i] = o.discount * (1 - batch.dones[i]);
        scaledRewards[rows + i] = o.rewardScale * batch.rewards[i];
      }
      const normalizer = this.#normalizers[k];
      const stateSlice = (array: Float32Array) =>
        array.subarray(stateRows, stateRows + count * obsDim);
      normalizer.apply(batch.observations, count, stateSlice(states));
      normalizer.apply(batch.nextObservations, count, stateSlice(nextStates));
      actions.set(batch.actions.subarray(0, count * actDim), k * count * actDim);
    });
    const actorLearningRate = this.#actorLearningRate();
    this.#step += 1;

    const losses = tf.tidy(() => {
      const shaped = (tensor: tf.Tensor, width: number) =>
        tf.reshape(tensor, [members, count, width]);
      // A gradient goes back in its network's output shape (a single network's is rank 2).
      const like = (gradient: tf.Tensor, output: tf.Tensor) => tf.reshape(gradient, output.shape);
      const s = tf.tensor3d(states, [members, count, obsDim]);
      const a = tf.tensor3d(actions, [members, count, actDim]);
      const s2 = tf.tensor3d(nextStates, [members, count, obsDim]);
      const r = tf.tensor3d(scaledRewards, [members, count, 1]);
      const stateActions = tf.concat([s, a], 2);
      const twinInput = tf.concat([stateActions, stateActions], 0);
      const nextValue = shaped(this.#value.predict(s2), 1);
      const targetQ = tf.min(
        tf.reshape(this.#criticTarget.predict(twinInput), [2, members, count, 1]),
        0,
      );

      // 1. Value, eq. (5); the advantage weights of step 3 come from the same V(s).
      const valuePass = this.#value.forward(s);
      const advantage = tf.sub(targetQ, shaped(valuePass.output, 1));
      const value = stackedValueLoss(advantage, o.expectile);
      this.#valueOptimizer.step(valuePass.backward(like(value.gradient, valuePass.output)));
      const advantageWeights = tf.minimum(
        tf.exp(tf.mul(advantage, o.temperature)),
        o.maxAdvantageWeight,
      );

      // 2. Critics, eq. (6), then the target critics.
      const target = tf.add(
        r,
        tf.mul(tf.tensor3d(notDoneDiscount, [members, count, 1]), nextValue),
      );
      const criticPass = this.#critic.forward(twinInput);
      const critic = stackedCriticLoss(
        tf.reshape(criticPass.output, [2, members, count, 1]),
        target,
      );
      this.#criticOptimizer.step(criticPass.backward(like(critic.gradient, criticPass.output)));
      polyakUpdate(this.#criticTarget.variables, this.#critic.variables, o.tau);

      // 3. Actor, eq. (7): advantage-weighted negative log-likelihood of the data's actions.
      const actorPass = this.#actor.forward(s);
      const actor = stackedActorLoss(
        shaped(actorPass.output, actDim),
        this.#logStd,
        a,
        advantageWeights,
        [o.logStdMin, o.logStdMax],
      );
      this.#actorOptimizer.step(
        [...actorPass.backward(like(actor.netGradient, actorPass.output)), actor.logStdGradient],
        actorLearningRate,
      );
      return [value.losses, critic.losses, actor.losses].map((loss) =>
        Float32Array.from(loss.dataSync())
      );
    });
    return Array.from({ length: members }, (_, k) => ({
      valueLoss: losses[0][k],
      criticLoss: losses[1][k],
      actorLoss: losses[2][k],
    }));
  }

  /** Member `k`'s mean (tanh-bounded) and std for `count` observations (its actor alone runs). */
  #distribution(k: number, observations: Float32Array, count: number): ActionDistribution {
    const o = this.#options;
    return tf.tidy(() => {
      const states = tf.tensor2d(
        this.#normalizers[k].apply(observations, count),
        [count, this.#observationDim],
      );
      const member = this.size === 1 ? undefined : k;
      const mean = tf.tanh(this.#actor.predict(states, member)).dataSync() as Float32Array;
      const logStd = tf.slice(this.#logStd, [k, 0, 0], [1, 1, this.#actionDim]);
      const std = tf.exp(tf.clipByValue(logStd, o.logStdMin, o.logStdMax)).dataSync();
      const stds = new Float32Array(mean.length);
      for (let i = 0; i < count; i++) stds.set(std, i * this.#actionDim);
      return { mean, std: stds };
    });
  }

  member(index: number): StackMember {
    checkStackMember("iql", index, this.size);
    const rng = this.#rngs[index];
    return {
      actionDistribution: (observations, count) => this.#distribution(index, observations, count),
      act: (observations, count, deterministic) => {
        const { mean, std } = this.#distribution(index, observations, count);
        return deterministic ? mean : addClippedNoise(mean, std, rng);
      },
    };
  }

  dispose(): void {
    for (const net of [this.#actor, this.#critic, this.#criticTarget, this.#value]) net.dispose();
    this.#logStd.dispose();
    this.#actorOptimizer.dispose();
    this.#criticOptimizer.dispose();
    this.#valueOptimizer.dispose();
  }
}
