/**
 * A probabilistic ensemble of Gaussian MLPs, as MOPO and OfflineRL-Kit fit
 * world models (PETS, Chua et al. 2018): every member maps a normalised input
 * to the mean and log-variance of a diagonal Gaussian over normalised targets.
 *
 * All members run as one batched product per layer (weights `[K, in, out]`).
 * Training follows OfflineRL-Kit: a held-out split, a bootstrap of the
 * training rows per member and epoch, Gaussian negative log-likelihood with
 * soft-bounded log-variance, weight decay growing with depth, and early
 * stopping that keeps each member's best weights on the held-out split. The
 * elites are the members with the lowest held-out error.
 *
 * @module
 */
import { z } from "zod";
import { tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { Adam } from "../nn/adam.ts";
import type { VectorStats } from "../core/types.ts";

/** Hyperparameters of a probabilistic ensemble; defaults are OfflineRL-Kit's (MOPO). */
export const ensembleOptionsSchema = z
  .object({
    /** Members in the ensemble. */
    ensembleSize: z.number().int().positive().default(7),
    /** Members with the lowest held-out error used for prediction. */
    eliteCount: z.number().int().positive().default(5),
    /** Hidden layer widths of each member (swish between layers). */
    hiddenSizes: z.array(z.number().int().positive()).min(1).default([200, 200, 200, 200]),
    /** L2 coefficients, one per layer including the output layer, growing with depth. */
    weightDecays: z.array(z.number().nonnegative()).default([2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4]),
    /** Adam learning rate. */
    learningRate: z.number().positive().default(1e-3),
    /** Rows per member per gradient step. */
    batchSize: z.number().int().positive().default(256),
    /** Fraction of rows held out for early stopping and elite selection. */
    holdoutFraction: z.number().gt(0).lt(1).default(0.2),
    /** Upper limit on held-out rows. */
    maxHoldout: z.number().int().positive().default(1000),
    /** Coefficient of the penalty `Σ maxLogVar − Σ minLogVar` that keeps the bounds tight. */
    logVarianceBoundPenalty: z.number().nonnegative().default(0.01),
    /** Initial value of the learned upper log-variance bound. */
    initialMaxLogVariance: z.number().default(0.5),
    /** Initial value of the learned lower log-variance bound. */
    initialMinLogVariance: z.number().default(-10),
    /** Relative held-out improvement that counts as progress for a member. */
    improvementThreshold: z.number().nonnegative().default(0.01),
    /** Epochs without progress of any member before training stops. */
    patience: z.number().int().positive().default(5),
    /** Upper limit on epochs (null: until early stopping). */
    maxEpochs: z.number().int().positive().nullable().default(null),
  })
  .refine((o) => o.eliteCount <= o.ensembleSize, {
    message: "eliteCount must not exceed ensembleSize",
    path: ["eliteCount"],
  })
  .refine((o) => o.weightDecays.length === o.hiddenSizes.length + 1, {
    message: "weightDecays needs one entry per layer (hiddenSizes.length + 1)",
    path: ["weightDecays"],
  });

/** Hyperparameters of a probabilistic ensemble, validated. */
export type EnsembleOptions = z.infer<typeof ensembleOptionsSchema>;

/** Parses ensemble options, naming the offending key in the error. */
export function parseEnsembleOptions(options: unknown, where = "ensemble"): EnsembleOptions {
  const parsed = ensembleOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) =>
      `${where}.${issue.path.join(".")}: ${issue.message}`
    );
    throw new Error(`invalid options: ${issues.join("; ")}`);
  }
  return parsed.data;
}

/** What {@link ProbabilisticEnsemble.fit} did. */
export interface FitReport {
  /** Epochs run. */
  epochs: number;
  /** Gradient steps run. */
  steps: number;
  /** Mean training loss of each epoch (sum over members). */
  trainLoss: number[];
  /** Held-out mean squared error (normalised targets) of each member after restoring its best weights. */
  holdoutMse: number[];
  /** Indices of the elites, best first. */
  elites: number[];
}

/** Options of one call to {@link ProbabilisticEnsemble.fit}. */
export interface FitOptions {
  /** Seed of the split, the bootstraps and the batches. */
  seed: number;
  /** Called after each epoch with the epoch number (from 1) and a fraction of the epoch cap, if any. */
  onEpoch?: (epoch: number, holdoutMse: number[]) => void;
}

/** Per-member Gaussian predictions in the targets' own scale. */
export interface EnsemblePrediction {
  /** `K × count × outputDim` means. */
  mean: Float32Array;
  /** `K × count × outputDim` variances. */
  variance: Float32Array;
}

/** A saved ensemble: JSON-safe header plus one flat array of every parameter. */
export interface EnsembleSnapshot {
  /** Sizes, options, normalisation, elites. */
  header: {
    inputDim: number;
    outputDim: number;
    options: EnsembleOptions;
    inputStats: { mean: number[]; std: number[] };
    outputStats: { mean: number[]; std: number[] };
    elites: number[];
    holdoutMse: number[];
    shapes: number[][];
  };
  /** Every parameter, concatenated in the order of `header.shapes`. */
  parameters: Float32Array;
}

/** Rows per forward pass in {@link ProbabilisticEnsemble.predict}. */
const PREDICT_CHUNK = 4096;

function vectorStats(rows: Float32Array, count: number, dim: number): VectorStats {
  const mean = new Float32Array(dim);
  const std = new Float32Array(dim);
  const sum = new Float64Array(dim);
  const sumSquares = new Float64Array(dim);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dim; j++) {
      const value = rows[i * dim + j];
      sum[j] += value;
      sumSquares[j] += value * value;
    }
  }
  for (let j = 0; j < dim; j++) {
    const m = sum[j] / count;
    const variance = Math.max(sumSquares[j] / count - m * m, 0);
    mean[j] = m;
    // A constant column keeps unit scale so normalisation never divides by ~0.
    std[j] = variance > 1e-12 ? Math.sqrt(variance) : 1;
  }
  return { mean, std };
}

function normalizeRows(
  rows: Float32Array,
  count: number,
  dim: number,
  stats: VectorStats,
): Float32Array {
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dim; j++) {
      out[i * dim + j] = (rows[i * dim + j] - stats.mean[j]) / stats.std[j];
    }
  }
  return out;
}

/** Gathers `rows` at `indices` into a fresh array (`indices.length × dim`). */
function gatherRows(rows: Float32Array, dim: number, indices: ArrayLike<number>): Float32Array {
  const out = new Float32Array(indices.length * dim);
  for (let i = 0; i < indices.length; i++) {
    out.set(rows.subarray(indices[i] * dim, (indices[i] + 1) * dim), i * dim);
  }
  return out;
}

/**
 * An ensemble of `K` Gaussian MLPs `x ↦ N(μ_k(x), diag σ²_k(x))`, run as one
 * batched network. Inputs and targets are z-scored with the statistics of the
 * data it was fitted on; {@link predict} answers in the targets' own scale.
 */
export class ProbabilisticEnsemble {
  /** Width of one input row. */
  readonly inputDim: number;
  /** Width of one target row. */
  readonly outputDim: number;
  /** Hyperparameters in effect. */
  readonly options: EnsembleOptions;
  /** Indices of the elite members, best first (all members before fitting). */
  elites: number[];
  /** Held-out error of each member from the last fit. */
  holdoutMse: number[];
  #inputStats: VectorStats;
  #outputStats: VectorStats;
  #weights: tf.Variable[] = [];
  #biases: tf.Variable[] = [];
  #maxLogVariance: tf.Variable;
  #minLogVariance: tf.Variable;

  /** A freshly initialised ensemble (truncated-normal weights, std `1/(2√in)` as OfflineRL-Kit). */
  constructor(inputDim: number, outputDim: number, options: EnsembleOptions, seed: number) {
    this.inputDim = inputDim;
    this.outputDim = outputDim;
    this.options = options;
    this.elites = Array.from({ length: options.eliteCount }, (_, i) => i);
    this.holdoutMse = new Array(options.ensembleSize).fill(Number.NaN);
    this.#inputStats = {
      mean: new Float32Array(inputDim),
      std: new Float32Array(inputDim).fill(1),
    };
    this.#outputStats = {
      mean: new Float32Array(outputDim),
      std: new Float32Array(outputDim).fill(1),
    };
    const rng = new Rng(seed);
    const widths = [inputDim, ...options.hiddenSizes, 2 * outputDim];
    const members = options.ensembleSize;
    for (let layer = 0; layer + 1 < widths.length; layer++) {
      const fanIn = widths[layer];
      const fanOut = widths[layer + 1];
      const weightSeed = rng.seed();
      // Inside tidy, the initial values are freed once the variables hold copies.
      this.#weights.push(
        tf.tidy(() =>
          tf.variable(
            tf.truncatedNormal(
              [members, fanIn, fanOut],
              0,
              1 / (2 * Math.sqrt(fanIn)),
              "float32",
              weightSeed,
            ),
          )
        ),
      );
      this.#biases.push(tf.tidy(() => tf.variable(tf.zeros([members, 1, fanOut]))));
    }
    this.#maxLogVariance = tf.tidy(() =>
      tf.variable(tf.fill([1, 1, outputDim], options.initialMaxLogVariance))
    );
    this.#minLogVariance = tf.tidy(() =>
      tf.variable(tf.fill([1, 1, outputDim], options.initialMinLogVariance))
    );
  }

  /** Number of members. */
  get size(): number {
    return this.options.ensembleSize;
  }

  /** Input normalisation statistics. */
  get inputStats(): VectorStats {
    return this.#inputStats;
  }

  /** Target normalisation statistics. */
  get outputStats(): VectorStats {
    return this.#outputStats;
  }

  /** Every trainable variable, in snapshot order. */
  #variables(): tf.Variable[] {
    return [...this.#weights, ...this.#biases, this.#maxLogVariance, this.#minLogVariance];
  }

  /**
   * The batched forward pass on normalised inputs `[K, B, in]`: mean and
   * soft-bounded log-variance `[K, B, out]` of normalised targets.
   */
  #forward(inputs: tf.Tensor3D): { mean: tf.Tensor3D; logVariance: tf.Tensor3D } {
    let hidden: tf.Tensor3D = inputs;
    const last = this.#weights.length - 1;
    for (let layer = 0; layer <= last; layer++) {
      const affine = tf.add(
        tf.matMul(hidden, this.#weights[layer]),
        this.#biases[layer],
      ) as tf.Tensor3D;
      // swish(x) = x·sigmoid(x), as in OfflineRL-Kit's dynamics models.
      hidden = layer < last ? (tf.mul(affine, tf.sigmoid(affine)) as tf.Tensor3D) : affine;
    }
    const [mean, rawLogVariance] = tf.split(hidden, 2, 2) as [tf.Tensor3D, tf.Tensor3D];
    // Soft bounds: logv ← max − softplus(max − logv); logv ← min + softplus(logv − min).
    const upper = tf.sub(
      this.#maxLogVariance,
      tf.softplus(tf.sub(this.#maxLogVariance, rawLogVariance)),
    );
    const logVariance = tf.add(
      this.#minLogVariance,
      tf.softplus(tf.sub(upper, this.#minLogVariance)),
    ) as tf.Tensor3D;
    return { mean, logVariance };
  }

  /**
   * Fits the ensemble on `count` rows of `inputs` (`count × inputDim`) and
   * `targets` (`count × outputDim`) and selects the elites.
   */
  fit(
    inputs: Float32Array,
    targets: Float32Array,
    count: number,
    fitOptions: FitOptions,
  ): FitReport {
    const { inputDim, outputDim, options } = this;
    if (inputs.length !== count * inputDim) {
      throw new Error(
        `ensemble.fit: inputs has ${inputs.length} values, expected ${count} × ${inputDim}`,
      );
    }
    if (targets.length !== count * outputDim) {
      throw new Error(
        `ensemble.fit: targets has ${targets.length} values, expected ${count} × ${outputDim}`,
      );
    }
    const holdoutSize = Math.min(Math.floor(count * options.holdoutFraction), options.maxHoldout);
    const trainSize = count - holdoutSize;
    if (holdoutSize < 1 || trainSize < 1) {
      throw new Error(`ensemble.fit: ${count} rows are too few for a held-out split`);
    }
    const rng = new Rng(fitOptions.seed);
    const order = rng.shuffle(Array.from({ length: count }, (_, i) => i));
    this.#inputStats = vectorStats(inputs, count, inputDim);
    this.#outputStats = vectorStats(targets, count, outputDim);
    const x = normalizeRows(inputs, count, inputDim, this.#inputStats);
    const y = normalizeRows(targets, count, outputDim, this.#outputStats);
    const holdoutIndices = order.slice(trainSize);
    const trainX = gatherRows(x, inputDim, order.slice(0, trainSize));
    const trainY = gatherRows(y, outputDim, order.slice(0, trainSize));
    const holdoutX = gatherRows(x, inputDim, holdoutIndices);
    const holdoutY = gatherRows(y, outputDim, holdoutIndices);

    const members = options.ensembleSize;
    const batchSize = Math.min(options.batchSize, trainSize);
    const stepsPerEpoch = Math.ceil(trainSize / batchSize);
    const variables = this.#variables();
    const optimizer = new Adam(variables, { learningRate: options.learningRate });
    const best = new Array(members).fill(Infinity);
    let snapshot = this.#readParameters();
    let epochsSinceProgress = 0;
    const trainLoss: number[] = [];
    let epoch = 0;
    let steps = 0;
    const bootstrap = new Int32Array(members * trainSize);
    while (true) {
      epoch++;
      // Each member trains on its own bootstrap resample of the training rows.
      rng.indices(trainSize, bootstrap);
      let lossSum = 0;
      for (let step = 0; step < stepsPerEpoch; step++) {
        const start = step * batchSize;
        const rows = Math.min(batchSize, trainSize - start);
        const batchX = new Float32Array(members * rows * inputDim);
        const batchY = new Float32Array(members * rows * outputDim);
        for (let k = 0; k < members; k++) {
          for (let i = 0; i < rows; i++) {
            const row = bootstrap[k * trainSize + start + i];
            const at = k * rows + i;
            batchX.set(trainX.subarray(row * inputDim, (row + 1) * inputDim), at * inputDim);
            batchY.set(trainY.subarray(row * outputDim, (row + 1) * outputDim), at * outputDim);
          }
        }
        const loss = tf.tidy(() => {
          const xs = tf.tensor3d(batchX, [members, rows, inputDim]);
          const ys = tf.tensor3d(batchY, [members, rows, outputDim]);
          const { value, grads } = tf.variableGrads(() => this.#loss(xs, ys), variables);
          optimizer.step(grads);
          return value;
        });
        lossSum += loss.dataSync()[0];
        loss.dispose();
        steps++;
      }
      trainLoss.push(lossSum / stepsPerEpoch);
      const holdout = this.#holdoutMse(holdoutX, holdoutY, holdoutSize);
      const improved: number[] = [];
      for (let k = 0; k < members; k++) {
        if (
          best[k] === Infinity ||
          (best[k] - holdout[k]) / best[k] > options.improvementThreshold
        ) {
          improved.push(k);
          best[k] = holdout[k];
        }
      }
      if (improved.length > 0) {
        snapshot = this.#keepMembers(snapshot, improved);
        epochsSinceProgress = 0;
      } else {
        epochsSinceProgress++;
      }
      fitOptions.onEpoch?.(epoch, holdout);
      if (epochsSinceProgress >= options.patience) break;
      if (options.maxEpochs !== null && epoch >= options.maxEpochs) break;
    }
    optimizer.dispose();
    this.#writeParameters(snapshot);
    this.holdoutMse = this.#holdoutMse(holdoutX, holdoutY, holdoutSize);
    this.elites = this.holdoutMse
      .map((mse, k) => ({ mse, k }))
      .sort((a, b) => a.mse - b.mse)
      .slice(0, options.eliteCount)
      .map((entry) => entry.k);
    return {
      epochs: epoch,
      steps,
      trainLoss,
      holdoutMse: [...this.holdoutMse],
      elites: [...this.elites],
    };
  }

  /** The training loss: Gaussian NLL per member (mean over rows and dims), weight decay, bound penalty. */
  #loss(inputs: tf.Tensor3D, targets: tf.Tensor3D): tf.Scalar {
    const { mean, logVariance } = this.#forward(inputs);
    const inverseVariance = tf.exp(tf.neg(logVariance));
    const squaredError = tf.mul(tf.square(tf.sub(mean, targets)), inverseVariance);
    // Σ_k [mean((μ−y)²/σ²) + mean(log σ²)]: the NLL up to constants.
    let loss = tf.add(tf.sum(tf.mean(squaredError, [1, 2])), tf.sum(tf.mean(logVariance, [1, 2])));
    this.#weights.forEach((weight, layer) => {
      const decay = this.options.weightDecays[layer];
      if (decay > 0) loss = tf.add(loss, tf.mul(0.5 * decay, tf.sum(tf.square(weight))));
    });
    const penalty = this.options.logVarianceBoundPenalty;
    loss = tf.add(
      loss,
      tf.mul(penalty, tf.sub(tf.sum(this.#maxLogVariance), tf.sum(this.#minLogVariance))),
    );
    return loss as tf.Scalar;
  }

  /**
   * `rows` input rows repeated for every member as `[K, rows, in]`. Copied in
   * JavaScript: the wasm backend's `tile` is far slower than the copy.
   */
  #sameForEveryMember(inputs: Float32Array, rows: number): tf.Tensor3D {
    const members = this.options.ensembleSize;
    const repeated = new Float32Array(members * rows * this.inputDim);
    for (let k = 0; k < members; k++) repeated.set(inputs, k * rows * this.inputDim);
    return tf.tensor3d(repeated, [members, rows, this.inputDim]);
  }

  /** Held-out MSE of each member's mean on normalised targets. */
  #holdoutMse(holdoutX: Float32Array, holdoutY: Float32Array, rows: number): number[] {
    return tf.tidy(() => {
      const xs = this.#sameForEveryMember(holdoutX, rows);
      const ys = tf.tensor3d(holdoutY, [1, rows, this.outputDim]);
      const { mean } = this.#forward(xs);
      return Array.from(tf.mean(tf.square(tf.sub(mean, ys)), [1, 2]).dataSync());
    });
  }

  #readParameters(): Float32Array[] {
    return this.#variables().map((variable) => variable.dataSync().slice() as Float32Array);
  }

  /** Copies the current weights of the `improved` members (and the shared bounds) into `snapshot`. */
  #keepMembers(snapshot: Float32Array[], improved: number[]): Float32Array[] {
    const current = this.#readParameters();
    const perMember = this.#weights.length * 2;
    return snapshot.map((saved, index) => {
      if (index >= perMember) return current[index];
      const memberLength = saved.length / this.options.ensembleSize;
      for (const k of improved) {
        saved.set(
          current[index].subarray(k * memberLength, (k + 1) * memberLength),
          k * memberLength,
        );
      }
      return saved;
    });
  }

  #writeParameters(values: Float32Array[]): void {
    this.#variables().forEach((variable, index) => {
      tf.tidy(() => variable.assign(tf.tensor(values[index], variable.shape)));
    });
  }

  /**
   * Every member's Gaussian for `count` input rows (`count × inputDim`, in the
   * inputs' own scale), in the targets' own scale.
   */
  predict(inputs: Float32Array, count: number): EnsemblePrediction {
    if (inputs.length !== count * this.inputDim) {
      throw new Error(
        `ensemble.predict: inputs has ${inputs.length} values, expected ${count} × ${this.inputDim}`,
      );
    }
    const members = this.options.ensembleSize;
    const normalized = normalizeRows(inputs, count, this.inputDim, this.#inputStats);
    const meanData = new Float32Array(members * count * this.outputDim);
    const logVarianceData = new Float32Array(members * count * this.outputDim);
    // Chunks bound the activations' memory (K × chunk × width) on large rollouts.
    for (let start = 0; start < count; start += PREDICT_CHUNK) {
      const rows = Math.min(PREDICT_CHUNK, count - start);
      const [chunkMean, chunkLogVariance] = tf.tidy(() => {
        const xs = this.#sameForEveryMember(
          normalized.subarray(start * this.inputDim, (start + rows) * this.inputDim),
          rows,
        );
        const { mean, logVariance } = this.#forward(xs);
        return [mean.dataSync() as Float32Array, logVariance.dataSync() as Float32Array];
      });
      for (let k = 0; k < members; k++) {
        const from = k * rows * this.outputDim;
        const to = (k * count + start) * this.outputDim;
        meanData.set(chunkMean.subarray(from, from + rows * this.outputDim), to);
        logVarianceData.set(chunkLogVariance.subarray(from, from + rows * this.outputDim), to);
      }
    }
    const { mean: outMean, std: outStd } = this.#outputStats;
    const dim = this.outputDim;
    const mean = new Float32Array(meanData.length);
    const variance = new Float32Array(meanData.length);
    for (let i = 0; i < meanData.length; i++) {
      const j = i % dim;
      mean[i] = meanData[i] * outStd[j] + outMean[j];
      variance[i] = Math.exp(logVarianceData[i]) * outStd[j] * outStd[j];
    }
    return { mean, variance };
  }

  /** A self-contained copy of the fitted ensemble. */
  snapshot(): EnsembleSnapshot {
    const values = this.#readParameters();
    const total = values.reduce((sum, value) => sum + value.length, 0);
    const parameters = new Float32Array(total);
    let offset = 0;
    for (const value of values) {
      parameters.set(value, offset);
      offset += value.length;
    }
    return {
      header: {
        inputDim: this.inputDim,
        outputDim: this.outputDim,
        options: this.options,
        inputStats: { mean: [...this.#inputStats.mean], std: [...this.#inputStats.std] },
        outputStats: { mean: [...this.#outputStats.mean], std: [...this.#outputStats.std] },
        elites: [...this.elites],
        holdoutMse: [...this.holdoutMse],
        shapes: this.#variables().map((variable) => [...variable.shape]),
      },
      parameters,
    };
  }

  /** Rebuilds an ensemble from {@link snapshot}'s output. */
  static restore(saved: EnsembleSnapshot): ProbabilisticEnsemble {
    const { header } = saved;
    const model = new ProbabilisticEnsemble(header.inputDim, header.outputDim, header.options, 0);
    const shapes = model.#variables().map((variable) => variable.shape);
    if (JSON.stringify(shapes) !== JSON.stringify(header.shapes)) {
      throw new Error("ensemble snapshot: parameter shapes do not match its options");
    }
    const values: Float32Array[] = [];
    let offset = 0;
    for (const shape of shapes) {
      const length = shape.reduce((a, b) => a * b, 1);
      values.push(saved.parameters.subarray(offset, offset + length));
      offset += length;
    }
    if (offset !== saved.parameters.length) {
      throw new Error(
        `ensemble snapshot: ${saved.parameters.length} parameters stored, ${offset} expected`,
      );
    }
    model.#writeParameters(values);
    model.#inputStats = {
      mean: Float32Array.from(header.inputStats.mean),
      std: Float32Array.from(header.inputStats.std),
    };
    model.#outputStats = {
      mean: Float32Array.from(header.outputStats.mean),
      std: Float32Array.from(header.outputStats.std),
    };
    model.elites = [...header.elites];
    model.holdoutMse = [...header.holdoutMse];
    return model;
  }

  /** Frees every tensor the ensemble holds. */
  dispose(): void {
    for (const variable of this.#variables()) variable.dispose();
  }
}
