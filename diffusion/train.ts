/**
 * Training of the denoiser (paper Table 3): Adam with a
 * warm-up then cosine-decayed learning rate, the EDM loss, an EMA of the
 * weights (what is saved and sampled) and a validation loss on held-out
 * episodes.
 *
 * @module
 */
import { tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { Adam } from "../nn/adam.ts";
import { polyakUpdate } from "../nn/polyak.ts";
import { edmLoss, edmLossAndGradients } from "./edm.ts";
import { fusedUNetActive, initUNetParams, type UNetConfig, type UNetParams } from "./unet1d.ts";

/**
 * Optimiser and noise-distribution settings of training; `trainOptionsOf` and
 * `referenceTrainOptions` in `diffusion/settings.ts` make them from the options.
 */
export interface TrainOptions {
  /** Gradient steps in all. */
  trainingSteps: number;
  /** Windows per gradient step (paper: 16). */
  batchSize: number;
  /** Peak learning rate (paper: 2e-3). */
  learningRate: number;
  /** `warmup-cosine` (reference code), `cosine` (paper's words) or `constant`. */
  learningRateSchedule: "warmup-cosine" | "cosine" | "constant";
  /** Fraction of steps spent warming up (reference code: 0.1). */
  warmupFraction: number;
  /** Warm-up starts at this multiple of the peak (reference code: 0.1). */
  warmupStartFactor: number;
  /** Adam β1. */
  adamBeta1: number;
  /** Adam β2. */
  adamBeta2: number;
  /** Adam ε. */
  adamEpsilon: number;
  /** EMA decay of the weights (reference code: 0.995). */
  emaDecay: number;
  /** Steps between EMA updates (reference code: 10). */
  emaEvery: number;
  /** Mean of ln σ during training (−1.2). */
  logSigmaMean: number;
  /** Std of ln σ during training (1.2). */
  logSigmaStd: number;
  /** Validation loss evaluations during training (besides the one before the first step). */
  validationPoints: number;
  /** Validation windows used at most (a fixed subset, with fixed noise). */
  validationWindows: number;
}

/** A validation-loss reading. */
export interface ValidationPoint {
  /** Gradient steps taken. */
  step: number;
  /** Mean training loss since the previous reading (NaN before the first step). */
  trainLoss: number;
  /** EDM loss of the weights to be saved (the EMA, or the initial weights at step 0) on held-out windows. */
  validationLoss: number;
}

/** A trained denoiser: its sizes and EMA weights. */
export interface TrainedDenoiser {
  /** Network sizes. */
  config: UNetConfig;
  /** EMA parameters (owned: dispose when done). */
  params: Record<string, tf.Tensor>;
  /** Validation-loss readings, first before any step. */
  history: ValidationPoint[];
}

/** Callbacks of a training run. */
export interface TrainHooks {
  /** Fraction of steps done. */
  onProgress?(fraction: number): void;
}

/** The learning rate at `step` of `total` under a schedule. */
export function learningRateAt(step: number, total: number, options: TrainOptions): number {
  const peak = options.learningRate;
  if (options.learningRateSchedule === "constant") return peak;
  const warmupSteps = options.learningRateSchedule === "warmup-cosine"
    ? Math.floor(total * options.warmupFraction)
    : 0;
  if (step < warmupSteps) {
    const start = options.warmupStartFactor * peak;
    return start + ((peak - start) * step) / warmupSteps;
  }
  const progress = (step - warmupSteps) / Math.max(1, total - warmupSteps);
  return 0.5 * peak * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

/** Copies `indices` windows of `windows` into one batch array. */
function gatherWindows(
  windows: Float32Array,
  windowSize: number,
  indices: ArrayLike<number>,
): Float32Array {
  const out = new Float32Array(indices.length * windowSize);
  for (let i = 0; i < indices.length; i++) {
    out.set(
      windows.subarray(indices[i] * windowSize, (indices[i] + 1) * windowSize),
      i * windowSize,
    );
  }
  return out;
}

/** Fills an array with standard normal draws. */
function normals(rng: Rng, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.normal();
  return out;
}

/**
 * One training run, step by step: Adam on the EDM loss, an EMA of the
 * weights, and validation readings on fixed held-out draws. Windows are
 * z-scored, `count × length × rowWidth`, row-major.
 */
export class DenoiserTrainer {
  /** Network sizes. */
  readonly config: UNetConfig;
  /** Training settings. */
  readonly options: TrainOptions;
  /** Gradient steps taken. */
  stepsTaken = 0;
  #train: Float32Array;
  #trainCount: number;
  #windowSize: number;
  #rng: Rng;
  #names: string[];
  #params: Record<string, tf.Variable>;
  #variables: tf.Variable[];
  #optimizer: Adam;
  #ema: tf.Variable[];
  #emaUpdates = 0;
  #validation: tf.Tensor[];
  #validationCount: number;
  #indices: Int32Array;

  /** Sets up fresh weights, optimiser state and fixed validation draws. */
  constructor(
    config: UNetConfig,
    train: Float32Array,
    validation: Float32Array,
    options: TrainOptions,
    seed: number,
  ) {
    const { trajectoryLength, rowWidth } = config;
    const windowSize = trajectoryLength * rowWidth;
    const trainCount = train.length / windowSize;
    const validationCount = Math.min(options.validationWindows, validation.length / windowSize);
    if (!Number.isInteger(trainCount) || trainCount < 1) {
      throw new Error(
        `train: training windows must be a positive multiple of ${windowSize} values`,
      );
    }
    if (!Number.isInteger(validationCount) || validationCount < 1) {
      throw new Error(
        `train: validation windows must be a positive multiple of ${windowSize} values`,
      );
    }
    this.config = config;
    this.options = options;
    this.#train = train;
    this.#trainCount = trainCount;
    this.#windowSize = windowSize;
    this.#rng = new Rng(seed);
    this.#params = initUNetParams(config, this.#rng.seed());
    this.#names = Object.keys(this.#params);
    this.#variables = this.#names.map((name) => this.#params[name]);
    this.#optimizer = new Adam(this.#variables, {
      learningRate: options.learningRate,
      beta1: options.adamBeta1,
      beta2: options.adamBeta2,
      epsilon: options.adamEpsilon,
    });
    // The EMA starts at zero and is divided by (1 − decay^k) when read, so it
    // averages trained weights only, not the random initialisation.
    this.#ema = this.#variables.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false)));
    this.#indices = new Int32Array(options.batchSize);

    // Fixed validation draws, so readings differ only through the weights.
    const validationRng = new Rng(this.#rng.seed());
    const shape: [number, number, number] = [validationCount, trajectoryLength, rowWidth];
    this.#validationCount = validationCount;
    this.#validation = [
      tf.tensor3d(validation.subarray(0, validationCount * windowSize), shape),
      tf.tensor1d(
        Array.from(
          { length: validationCount },
          () => Math.exp(options.logSigmaMean + options.logSigmaStd * validationRng.normal()),
        ),
      ),
      tf.tensor3d(normals(validationRng, validationCount * windowSize), shape),
    ];
  }

  /** The weights to save: the debiased EMA, or the current weights before any EMA update. */
  #savedParams(): UNetParams {
    if (this.#emaUpdates === 0) return this.#params;
    const correction = 1 / (1 - this.options.emaDecay ** this.#emaUpdates);
    const out: UNetParams = {};
    this.#names.forEach((name, i) => (out[name] = tf.mul(this.#ema[i], correction)));
    return out;
  }

  /** EDM loss of the weights to be saved on the held-out windows. */
  validationLoss(): number {
    return tf.tidy(() => {
      const [clean, sigma, noise] = this.#validation;
      const chunk = 256;
      let total = 0;
      const params = this.#savedParams();
      for (let start = 0; start < this.#validationCount; start += chunk) {
        const size = Math.min(chunk, this.#validationCount - start);
        const loss = edmLoss(
          this.config,
          params,
          tf.slice(clean, [start, 0, 0], [size, -1, -1]) as tf.Tensor3D,
          tf.slice(sigma, [start], [size]) as tf.Tensor1D,
          tf.slice(noise, [start, 0, 0], [size, -1, -1]) as tf.Tensor3D,
        );
        total += loss.dataSync()[0] * size;
      }
      return total / this.#validationCount;
    });
  }

  /** One gradient step on a random batch; returns its training loss. */
  step(): number {
    const { options } = this;
    const rng = this.#rng;
    const step = this.stepsTaken;
    const learningRate = learningRateAt(step, options.trainingSteps, options);
    rng.indices(this.#trainCount, this.#indices);
    const batch = gatherWindows(this.#train, this.#windowSize, this.#indices);
    const sigma = Float32Array.from(
      { length: options.batchSize },
      () => Math.exp(options.logSigmaMean + options.logSigmaStd * rng.normal()),
    );
    const noise = normals(rng, batch.length);
    const loss = fusedUNetActive()
      ? this.#fusedStep(batch, sigma, noise, learningRate)
      : this.#tapeStep(batch, sigma, noise, learningRate);
    this.stepsTaken++;
    if (this.stepsTaken % options.emaEvery === 0) {
      // ema ← decay·ema + (1 − decay)·θ
      polyakUpdate(this.#ema, this.#variables, 1 - options.emaDecay);
      this.#emaUpdates++;
    }
    return loss;
  }

  /**
   * The step's loss and Adam update through the gradient tape: the
   * specification, and the path wherever the whole-network kernels do not run.
   */
  #tapeStep(
    batch: Float32Array,
    sigma: Float32Array,
    noise: Float32Array,
    learningRate: number,
  ): number {
    const { options, config } = this;
    return tf.tidy(() => {
      const shape: [number, number, number] = [
        options.batchSize,
        config.trajectoryLength,
        config.rowWidth,
      ];
      const clean = tf.tensor3d(batch, shape);
      const sigmaTensor = tf.tensor1d(sigma);
      const noiseTensor = tf.tensor3d(noise, shape);
      const { value, grads } = tf.variableGrads(
        () => edmLoss(config, this.#params, clean, sigmaTensor, noiseTensor),
        this.#variables,
      );
      this.#optimizer.step(grads, learningRate);
      return value.dataSync()[0];
    });
  }

  /** The same step with the whole-network kernels and no tape (see `edmLossAndGradients`). */
  #fusedStep(
    batch: Float32Array,
    sigma: Float32Array,
    noise: Float32Array,
    learningRate: number,
  ): number {
    // Gradients come in parameterShapes' order, the variables' own (initUNetParams makes them in it).
    const { loss, gradients } = edmLossAndGradients(this.config, this.#params, batch, sigma, noise);
    try {
      this.#optimizer.step(gradients, learningRate);
    } finally {
      tf.dispose(gradients);
    }
    return loss;
  }

  /** Copies of the weights to save (owned by the caller). */
  savedParams(): Record<string, tf.Tensor> {
    return tf.tidy(() => {
      const params = this.#savedParams();
      const out: Record<string, tf.Tensor> = {};
      for (const name of this.#names) out[name] = tf.clone(params[name]);
      return out;
    });
  }

  /** Frees the weights, optimiser state and validation draws. */
  dispose(): void {
    this.#optimizer.dispose();
    tf.dispose([
      ...this.#variables,
      ...this.#ema,
      ...this.#validation,
    ]);
  }
}

/**
 * Trains a denoiser on z-scored windows for `options.trainingSteps` steps,
 * reading the validation loss before the first step and `validationPoints`
 * times after. `validation` windows come from held-out episodes.
 */
export function trainDenoiser(
  config: UNetConfig,
  train: Float32Array,
  validation: Float32Array,
  options: TrainOptions,
  seed: number,
  hooks: TrainHooks = {},
): TrainedDenoiser {
  const trainer = new DenoiserTrainer(config, train, validation, options, seed);
  try {
    const history: ValidationPoint[] = [
      { step: 0, trainLoss: NaN, validationLoss: trainer.validationLoss() },
    ];
    const readingEvery = Math.max(
      1,
      Math.ceil(options.trainingSteps / Math.max(1, options.validationPoints)),
    );
    let lossSum = 0;
    let lossCount = 0;
    for (let step = 1; step <= options.trainingSteps; step++) {
      lossSum += trainer.step();
      lossCount++;
      if (step % readingEvery === 0 || step === options.trainingSteps) {
        history.push({
          step,
          trainLoss: lossSum / lossCount,
          validationLoss: trainer.validationLoss(),
        });
        lossSum = 0;
        lossCount = 0;
      }
      hooks.onProgress?.(step / options.trainingSteps);
    }
    return { config, params: trainer.savedParams(), history };
  } finally {
    trainer.dispose();
  }
}
