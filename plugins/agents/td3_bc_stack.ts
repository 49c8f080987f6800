/**
 * TD3+BC for a stack of K seeds as one computation (seeds as a batch
 * dimension): the K actors are one ensemble of K networks, the K seeds' twin
 * critics one ensemble of 2K, with their targets and Adam moments stacked
 * alike, so each network runs as one kernel per pass for all seeds.
 *
 * The single-seed agent in td3_bc.ts is the specification. Member `k` is
 * built from the agent td3_bc.ts would build for `contexts[k]` (its
 * initialisation, its noise stream) and takes the same arithmetic on its own
 * batch: every product runs per member, every reduction per member in the
 * order the single agent reduces in. On the wasm backend's `blas` and `wasm`
 * kernel sets a member's parameters, losses and actions are bit-identical to
 * the single agent's (tests/td3_bc_stack_test.ts).
 *
 * Layout: critic member `k` is seed k's Q₁ and member `K + k` its Q₂, so the
 * actor loss reads every seed's Q₁ as one run of members `0 … K − 1`.
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
import type { Td3bcOptions } from "./td3_bc.ts";

/**
 * Per member `k`: `−λ_k·mean Q₁ₖ` with `λ_k = α / mean|Q₁ₖ|` held constant,
 * from the stacked critics' `[K, n, 1]` values; returns `[K]`. Each mean runs
 * over one member's row, as the single agent's `lambdaScaledQ` runs over its
 * `[n, 1]` values.
 */
export function stackedLambdaScaledQ(q1: tf.Tensor, alpha: number): tf.Tensor1D {
  const [members, count] = q1.shape;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [q, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const rows = tf.reshape(q, [members, count]);
    const lambda = tf.div(alpha, tf.mean(tf.abs(rows), 1));
    save([lambda]);
    return {
      value: tf.neg(tf.mul(lambda, tf.mean(rows, 1))) as tf.Tensor1D,
      // No gradient flows through λ.
      gradFunc: (dy: tf.Tensor, [savedLambda]: tf.Tensor[]) =>
        tf.mul(
          tf.fill(q.shape, -1 / count),
          tf.reshape(tf.mul(dy, savedLambda), [members, 1, 1]),
        ),
    };
  });
  return op(q1) as tf.Tensor1D;
}

/** Per-member state that is not a tensor: observation scaling and the noise stream. */
interface MemberState {
  normalizer: ObservationNormalizer;
  rng: Rng;
}

/**
 * K TD3+BC agents as one stack; made by the td3bc plugin's `createStack`.
 * `schedule` and hidden widths come from the first context's preset (all
 * contexts share one preset and the same dimensions).
 */
export class Td3bcStack implements AgentStack {
  readonly size: number;
  readonly schedule: AgentSchedule;
  readonly #options: Td3bcOptions;
  readonly #observationDim: number;
  readonly #actionDim: number;
  readonly #members: MemberState[];
  readonly #actor: Mlp;
  readonly #actorTarget: Mlp;
  readonly #critic: Mlp;
  readonly #criticTarget: Mlp;
  readonly #actorOptimizer: Adam;
  readonly #criticOptimizer: Adam;
  #step = 0;
  #lastActorLoss: Float32Array;
  #lastBcLoss: Float32Array;

  /**
   * `schedule` and `hiddenDims` are the single agent's for this preset
   * (td3_bc.ts resolves them), so a stack and a lone agent cannot drift apart.
   */
  constructor(
    contexts: readonly AgentContext[],
    options: Td3bcOptions,
    schedule: AgentSchedule,
    hiddenDims: readonly number[],
  ) {
    const { observationDim, actionDim } = checkStackContexts("td3bc", contexts);
    this.size = contexts.length;
    this.schedule = schedule;
    this.#options = options;
    this.#observationDim = observationDim;
    this.#actionDim = actionDim;
    this.#lastActorLoss = new Float32Array(this.size);
    this.#lastBcLoss = new Float32Array(this.size);
    // Seed-derived streams and initialisations exactly as the single agent draws them.
    this.#members = contexts.map((context) => ({
      normalizer: new ObservationNormalizer(
        observationDim,
        context.observationStats,
        options.normalizationEpsilon,
        options.normalizeObservations,
      ),
      rng: new Rng(deriveSeed(context.seed, "td3bc-noise")),
    }));
    const actors = contexts.map((context) =>
      new Mlp({
        inputDim: observationDim,
        hiddenDims,
        outputDim: actionDim,
        seed: deriveSeed(context.seed, "actor"),
        name: "actor",
      })
    );
    const critics = contexts.map((context) =>
      new Mlp({
        inputDim: observationDim + actionDim,
        hiddenDims,
        outputDim: 1,
        ensembleSize: 2,
        seed: deriveSeed(context.seed, "critic"),
        name: "critic",
      })
    );
    this.#actor = Mlp.gather(actors.map((actor) => [actor, 0] as const), "actors");
    this.#critic = Mlp.gather(
      [0, 1].flatMap((twin) => critics.map((critic) => [critic, twin] as const)),
      "critics",
    );
    for (const net of [...actors, ...critics]) net.dispose();
    this.#actorTarget = this.#actor.clone("actors_target");
    this.#criticTarget = this.#critic.clone("critics_target");
    this.#actorOptimizer = new Adam(this.#actor.variables, {
      learningRate: options.actorLearningRate,
      epsilon: options.adamEpsilon,
    });
    this.#criticOptimizer = new Adam(this.#critic.variables, {
      learningRate: options.criticLearningRate,
      epsilon: options.adamEpsilon,
    });
  }

  update(batches: readonly TransitionBatch[]): Record<string, number>[] {
    const o = this.#options;
    const members = this.size;
    const count = checkStackBatches("td3bc", batches, members);
    const [obsDim, actDim] = [this.#observationDim, this.#actionDim];
    // Each member's inputs and noise, laid out member after member.
    const states = new Float32Array(members * count * obsDim);
    const nextStates = new Float32Array(members * count * obsDim);
    const actions = new Float32Array(members * count * actDim);
    const rewards = new Float32Array(members * count);
    const notDoneDiscount = new Float32Array(members * count);
    const noise = new Float32Array(members * count * actDim);
    batches.forEach((batch, k) => {
      const { normalizer, rng } = this.#members[k];
      const [rows, stateRows, actionRows] = [k * count, k * count * obsDim, k * count * actDim];
      // Target policy smoothing noise ε = clip(N(0, σ²), −c, c), from this member's stream.
      for (let i = 0; i < count * actDim; i++) {
        noise[actionRows + i] = Math.min(
          o.noiseClip,
          Math.max(-o.noiseClip, o.policyNoise * rng.normal()),
        );
      }
      for (let i = 0; i < count; i++) {
        notDoneDiscount[rows + i] = o.discount * (1 - batch.dones[i]);
      }
      normalizer.apply(
        batch.observations,
        count,
        states.subarray(stateRows, stateRows + count * obsDim),
      );
      normalizer.apply(
        batch.nextObservations,
        count,
        nextStates.subarray(stateRows, stateRows + count * obsDim),
      );
      actions.set(batch.actions.subarray(0, count * actDim), actionRows);
      rewards.set(batch.rewards.subarray(0, count), rows);
    });
    this.#step += 1;
    const updateActor = this.#step % o.policyFrequency === 0;

    const criticLosses = tf.tidy(() => {
      const s = tf.tensor3d(states, [members, count, obsDim]);
      const a = tf.tensor3d(actions, [members, count, actDim]);
      const s2 = tf.tensor3d(nextStates, [members, count, obsDim]);
      const r = tf.tensor3d(rewards, [members, count, 1]);

      // TD target y = r + γ(1 − d)·min_i Q'_i(s', clip(π'(s') + ε, −1, 1)), per member.
      const nextActions = tf.clipByValue(
        tf.add(
          tf.tanh(tf.reshape(this.#actorTarget.predict(s2), [members, count, actDim])),
          tf.tensor3d(noise, [members, count, actDim]),
        ),
        -1,
        1,
      );
      const twinInput = (input: tf.Tensor) => tf.concat([input, input], 0);
      const nextQ = tf.min(
        tf.reshape(
          this.#criticTarget.predict(twinInput(tf.concat([s2, nextActions], 2))),
          [2, members, count, 1],
        ),
        0,
      );
      const target = tf.add(
        r,
        tf.mul(tf.tensor3d(notDoneDiscount, [members, count, 1]), nextQ),
      );

      // Critic loss per member: MSE(Q₁, y) + MSE(Q₂, y), the mean over Q₁'s then Q₂'s errors.
      const stateActions = tf.concat([s, a], 2);
      let perMember: tf.Tensor | undefined;
      const critic = tf.variableGrads(() => {
        const q = tf.reshape(this.#critic.apply(twinInput(stateActions)), [2, members, count, 1]);
        const errors = tf.reshape(
          tf.transpose(tf.squaredDifference(q, target), [1, 0, 2, 3]),
          [members, 2 * count],
        );
        perMember = tf.keep(tf.mul(tf.mean(errors, 1), 2));
        return tf.sum(perMember) as tf.Scalar;
      }, this.#critic.variables);
      this.#criticOptimizer.step(critic.grads);

      if (updateActor) {
        // Actor loss per member: −λ·mean Q₁(s, π(s)) + mean (π(s) − a)².
        let actorPerMember: tf.Tensor | undefined;
        let bcPerMember: tf.Tensor | undefined;
        const actor = tf.variableGrads(() => {
          const policyActions = tf.tanh(
            tf.reshape(this.#actor.apply(s), [members, count, actDim]),
          );
          const q1 = this.#critic.apply(tf.concat([s, policyActions], 2), {
            inputGradient: true,
            parameterGradient: false,
            members: { start: 0, count: members },
          });
          const bc = tf.mean(
            tf.reshape(tf.squaredDifference(policyActions, a), [members, count * actDim]),
            1,
          );
          bcPerMember = tf.keep(bc);
          actorPerMember = tf.keep(tf.add(stackedLambdaScaledQ(q1, o.alpha), bc));
          return tf.sum(actorPerMember) as tf.Scalar;
        }, this.#actor.variables);
        this.#actorOptimizer.step(actor.grads);
        polyakUpdate(this.#criticTarget.variables, this.#critic.variables, o.tau);
        polyakUpdate(this.#actorTarget.variables, this.#actor.variables, o.tau);
        this.#lastActorLoss = Float32Array.from(actorPerMember!.dataSync());
        this.#lastBcLoss = Float32Array.from(bcPerMember!.dataSync());
        actorPerMember!.dispose();
        bcPerMember!.dispose();
      }
      const values = Float32Array.from(perMember!.dataSync());
      perMember!.dispose();
      return values;
    });
    return Array.from({ length: members }, (_, k) => ({
      criticLoss: criticLosses[k],
      actorLoss: this.#lastActorLoss[k],
      bcLoss: this.#lastBcLoss[k],
    }));
  }

  /** Member `k`'s π(s) in [−1, 1] for `count` observations (its actor alone runs). */
  #policyMean(k: number, observations: Float32Array, count: number): Float32Array {
    return tf.tidy(() => {
      const states = tf.tensor2d(
        this.#members[k].normalizer.apply(observations, count),
        [count, this.#observationDim],
      );
      const member = this.size === 1 ? undefined : k;
      return tf.tanh(this.#actor.predict(states, member)).dataSync() as Float32Array;
    });
  }

  member(index: number): StackMember {
    checkStackMember("td3bc", index, this.size);
    const options = this.#options;
    const rng = this.#members[index].rng;
    return {
      act: (observations: Float32Array, count: number, deterministic: boolean) => {
        const actions = this.#policyMean(index, observations, count);
        return deterministic ? actions : addClippedNoise(actions, options.explorationNoise, rng);
      },
      actionDistribution: (observations: Float32Array, count: number): ActionDistribution => {
        const mean = this.#policyMean(index, observations, count);
        return { mean, std: new Float32Array(mean.length).fill(options.guidanceStd) };
      },
    };
  }

  dispose(): void {
    for (const net of [this.#actor, this.#actorTarget, this.#critic, this.#criticTarget]) {
      net.dispose();
    }
    this.#actorOptimizer.dispose();
    this.#criticOptimizer.dispose();
  }
}
