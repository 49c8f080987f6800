/**
 * Soft Actor-Critic (Haarnoja et al. 2018, with the learned temperature of
 * the follow-up "SAC: algorithms and applications"), the online agent whose
 * policies and replay buffer make D4RL's MuJoCo datasets.
 *
 * - Twin critics `Q₁, Q₂` with Polyak-averaged targets; target
 *   `y = r + γ(1 − d)(min_j Q̄_j(s', a') − α log π(a'|s'))`, `a' ~ π(·|s')`.
 * - Tanh-Gaussian actor, reparameterised; loss `E[α log π(a|s) − min_j Q_j(s, a)]`.
 * - Temperature: `log α` descends `−E[log α · (log π(a|s) + H̄)]` with target
 *   entropy `H̄ = −actionDim`.
 *
 * Acting runs on a plain-array copy of the actor ({@link PolicySnapshot}), so
 * rolling a policy out costs no tensor ops.
 *
 * @module
 */
import { z } from "zod";
import { tf } from "../../core/compute.ts";
import { Rng } from "../../core/rng.ts";
import { Mlp } from "../../nn/mlp.ts";
import { Adam } from "../../nn/adam.ts";
import { polyakUpdate } from "../../nn/polyak.ts";

/** SAC's hyperparameters; defaults are the paper's (Haarnoja et al. 2018, Table 1). */
export const sacConfigSchema = z.object({
  /** Widths of the hidden layers of actor and critics. */
  hiddenDims: z.array(z.number().int().positive()).min(1).default([256, 256]),
  /** Adam step size of actor, critics and temperature. */
  learningRate: z.number().positive().default(3e-4),
  /** Discount γ. */
  discount: z.number().min(0).max(1).default(0.99),
  /** Polyak rate τ of the target critics. */
  targetUpdateRate: z.number().min(0).max(1).default(0.005),
  /** Transitions per gradient step. */
  batchSize: z.number().int().positive().default(256),
  /** Initial temperature α. */
  initialTemperature: z.number().positive().default(1),
  /** Bounds of the actor's log standard deviation. */
  logStdMin: z.number().default(-20),
  /** Upper bound of the actor's log standard deviation. */
  logStdMax: z.number().default(2),
});

/** Validated {@link sacConfigSchema}. */
export type SacConfig = z.infer<typeof sacConfigSchema>;

/** A batch of transitions for one SAC update (row-major arrays). */
export interface SacBatch {
  /** `batch × observationDim`. */
  observations: Float32Array;
  /** `batch × actionDim`, in [−1, 1]. */
  actions: Float32Array;
  /** `batch`. */
  rewards: Float32Array;
  /** `batch × observationDim`. */
  nextObservations: Float32Array;
  /** `batch`, 1 where `s'` is terminal. */
  dones: Float32Array;
}

const halfLogTwoPi = 0.5 * Math.log(2 * Math.PI);

/** Agents made in this process; keeps TF.js variable names unique. */
let sacCount = 0;

/** A SAC agent: actor, twin critics with targets, temperature, their optimisers. */
export class Sac {
  /** Validated hyperparameters. */
  readonly config: SacConfig;
  /** Width of one observation. */
  readonly observationDim: number;
  /** Width of one action. */
  readonly actionDim: number;
  readonly #actor: Mlp;
  readonly #critic: Mlp;
  readonly #targetCritic: Mlp;
  readonly #logTemperature: tf.Variable;
  readonly #actorOptimizer: Adam;
  readonly #criticOptimizer: Adam;
  readonly #temperatureOptimizer: Adam;
  readonly #rng: Rng;
  #updates = 0;

  /** Initialises the networks from `seed` (PyTorch-style layer initialisation). */
  constructor(
    observationDim: number,
    actionDim: number,
    seed: number,
    config: Partial<SacConfig> = {},
  ) {
    const parsed = sacConfigSchema.safeParse(config);
    if (!parsed.success) {
      throw new Error(`SAC config: ${z.prettifyError(parsed.error)}`);
    }
    this.config = parsed.data;
    this.observationDim = observationDim;
    this.actionDim = actionDim;
    this.#rng = new Rng(seed);
    const { hiddenDims, learningRate } = this.config;
    this.#actor = new Mlp({
      inputDim: observationDim,
      hiddenDims,
      outputDim: 2 * actionDim,
      seed: this.#rng.seed(),
      name: "sac_actor",
    });
    this.#critic = new Mlp({
      inputDim: observationDim + actionDim,
      hiddenDims,
      outputDim: 1,
      ensembleSize: 2,
      seed: this.#rng.seed(),
      name: "sac_critic",
    });
    this.#targetCritic = this.#critic.clone("sac_target_critic");
    const temperatureName = `sac_log_temperature_${sacCount++}`;
    this.#logTemperature = tf.tidy(() =>
      tf.variable(tf.scalar(Math.log(this.config.initialTemperature)), true, temperatureName)
    );
    this.#actorOptimizer = new Adam(this.#actor.variables, { learningRate });
    this.#criticOptimizer = new Adam(this.#critic.variables, { learningRate });
    this.#temperatureOptimizer = new Adam([this.#logTemperature], { learningRate });
  }

  /** Gradient steps taken so far. */
  get updates(): number {
    return this.#updates;
  }

  /** The current temperature α. */
  get temperature(): number {
    return Math.exp(this.#logTemperature.dataSync()[0]);
  }

  /**
   * `a = tanh(u)`, `u = μ + σ·ε`, and `log π(a|s)` with the tanh correction
   * `log(1 − tanh²u) = 2(log 2 − u − softplus(−2u))`.
   */
  #sample(actorOutput: tf.Tensor, noise: tf.Tensor): { action: tf.Tensor; logProb: tf.Tensor } {
    const [mean, rawLogStd] = tf.split(actorOutput, 2, 1);
    const logStd = tf.clipByValue(rawLogStd, this.config.logStdMin, this.config.logStdMax);
    const preTanh = tf.add(mean, tf.mul(tf.exp(logStd), noise));
    const gaussianLogProb = tf.neg(
      tf.add(tf.add(tf.mul(tf.square(noise), 0.5), logStd), halfLogTwoPi),
    );
    const tanhCorrection = tf.mul(
      tf.sub(tf.sub(Math.LN2, preTanh), tf.softplus(tf.mul(preTanh, -2))),
      2,
    );
    const logProb = tf.sum(tf.sub(gaussianLogProb, tanhCorrection), 1, true);
    return { action: tf.tanh(preTanh), logProb };
  }

  #noise(batch: number): tf.Tensor2D {
    const values = new Float32Array(batch * this.actionDim);
    for (let i = 0; i < values.length; i++) values[i] = this.#rng.normal();
    return tf.tensor2d(values, [batch, this.actionDim]);
  }

  /** One gradient step of critics, actor and temperature, then the target update. */
  update(batch: SacBatch): { criticLoss: number; actorLoss: number; temperature: number } {
    const size = batch.rewards.length;
    const { discount, targetUpdateRate } = this.config;
    const targetEntropy = -this.actionDim;
    const losses = tf.tidy(() => {
      const observations = tf.tensor2d(batch.observations, [size, this.observationDim]);
      const actions = tf.tensor2d(batch.actions, [size, this.actionDim]);
      const rewards = tf.tensor2d(batch.rewards, [size, 1]);
      const nextObservations = tf.tensor2d(batch.nextObservations, [size, this.observationDim]);
      const notDone = tf.sub(1, tf.tensor2d(batch.dones, [size, 1]));
      const temperature = tf.exp(this.#logTemperature);

      // Soft Bellman target with the target critics (no gradient).
      const next = this.#sample(this.#actor.predict(nextObservations), this.#noise(size));
      const nextQ = tf.min(
        this.#targetCritic.predict(tf.concat([nextObservations, next.action], 1)),
        0,
      );
      const softValue = tf.sub(nextQ, tf.mul(temperature, next.logProb));
      const target = tf.add(rewards, tf.mul(tf.mul(notDone, discount), softValue));

      const stateActions = tf.concat([observations, actions], 1);
      const critic = tf.variableGrads(() => {
        const q = this.#critic.apply(stateActions);
        // Sum over the two critics of each one's mean squared error.
        return tf.mul(tf.mean(tf.square(tf.sub(q, target))), 2) as tf.Scalar;
      }, this.#critic.variables);
      this.#criticOptimizer.step(this.#critic.variables.map((v) => critic.grads[v.name]));

      const actorNoise = this.#noise(size);
      let meanLogProb: tf.Tensor | undefined;
      const actor = tf.variableGrads(() => {
        const sampled = this.#sample(this.#actor.apply(observations), actorNoise);
        // Kept past the gradient scope for the temperature step; disposed below.
        meanLogProb = tf.keep(tf.mean(sampled.logProb));
        const q = tf.min(
          this.#critic.apply(tf.concat([observations, sampled.action], 1), {
            inputGradient: true,
          }),
          0,
        );
        return tf.mean(tf.sub(tf.mul(temperature, sampled.logProb), q)) as tf.Scalar;
      }, this.#actor.variables);
      this.#actorOptimizer.step(this.#actor.variables.map((v) => actor.grads[v.name]));

      // d/d(log α) of −E[log α · (log π + H̄)] is −E[log π + H̄].
      const temperatureGradient = tf.neg(tf.add(meanLogProb!, targetEntropy));
      this.#temperatureOptimizer.step([temperatureGradient]);
      meanLogProb!.dispose();

      polyakUpdate(this.#targetCritic.variables, this.#critic.variables, targetUpdateRate);
      return tf.stack([critic.value, actor.value]);
    });
    this.#updates++;
    const [criticLoss, actorLoss] = losses.dataSync();
    losses.dispose();
    return { criticLoss, actorLoss, temperature: this.temperature };
  }

  /** A plain-array copy of the current actor for acting without tensors. */
  snapshot(): PolicySnapshot {
    const layers = this.#actor.weights.map((weight, i) => ({
      weight: weight.dataSync() as Float32Array,
      bias: this.#actor.biases[i].dataSync() as Float32Array,
      inputDim: weight.shape[1],
      outputDim: weight.shape[2],
    }));
    return new PolicySnapshot(layers, this.actionDim, this.config.logStdMin, this.config.logStdMax);
  }

  /** Frees every tensor. */
  dispose(): void {
    this.#actor.dispose();
    this.#critic.dispose();
    this.#targetCritic.dispose();
    this.#logTemperature.dispose();
    this.#actorOptimizer.dispose();
    this.#criticOptimizer.dispose();
    this.#temperatureOptimizer.dispose();
  }
}

/** One dense layer of a {@link PolicySnapshot}: `weight` is row-major `inputDim × outputDim`. */
export interface SnapshotLayer {
  /** Row-major `inputDim × outputDim`. */
  weight: Float32Array;
  /** `outputDim`. */
  bias: Float32Array;
  /** Input width. */
  inputDim: number;
  /** Output width. */
  outputDim: number;
}

/** The SAC actor as plain arrays: a ReLU MLP giving the mean and log-std of a tanh-Gaussian. */
export class PolicySnapshot {
  /** Width of one action. */
  readonly actionDim: number;
  readonly #layers: SnapshotLayer[];
  readonly #activations: Float32Array[];
  readonly #logStdMin: number;
  readonly #logStdMax: number;

  /** Wraps copied layers; use {@link Sac.snapshot}. */
  constructor(layers: SnapshotLayer[], actionDim: number, logStdMin: number, logStdMax: number) {
    this.#layers = layers;
    this.actionDim = actionDim;
    this.#logStdMin = logStdMin;
    this.#logStdMax = logStdMax;
    this.#activations = layers.map((layer) => new Float32Array(layer.outputDim));
  }

  /**
   * Writes an action for `observation` into `out`: `tanh(μ)` when
   * `deterministic`, else a draw `tanh(μ + σ·ε)` with `ε` from `rng`.
   */
  act(observation: Float32Array, rng: Rng, deterministic: boolean, out: Float32Array): void {
    let input: Float32Array = observation;
    const last = this.#layers.length - 1;
    for (let l = 0; l <= last; l++) {
      const { weight, bias, inputDim, outputDim } = this.#layers[l];
      const output = this.#activations[l];
      output.set(bias);
      for (let i = 0; i < inputDim; i++) {
        const x = input[i];
        if (x === 0) continue;
        const row = i * outputDim;
        for (let j = 0; j < outputDim; j++) output[j] += x * weight[row + j];
      }
      if (l < last) { for (let j = 0; j < outputDim; j++) output[j] = Math.max(0, output[j]); }
      input = output;
    }
    const actionDim = this.actionDim;
    for (let j = 0; j < actionDim; j++) {
      const mean = input[j];
      if (deterministic) {
        out[j] = Math.tanh(mean);
        continue;
      }
      const logStd = Math.min(this.#logStdMax, Math.max(this.#logStdMin, input[actionDim + j]));
      out[j] = Math.tanh(mean + Math.exp(logStd) * rng.normal());
    }
  }
}
