/**
 * Adam with PyTorch's semantics (bias-corrected moments, `eps` added to the
 * corrected `√v̂`), run over a whole variable list as one flat vector: about
 * fifteen ops per step whatever the number of variables.
 *
 * @module
 */
import { tf } from "../core/compute.ts";
import {
  assignFlat,
  checkSameShapes,
  flatten,
  flatValues,
  releaseFlat,
  variableFrom,
} from "./flat.ts";

/** Hyperparameters of {@link Adam}. */
export interface AdamOptions {
  /** Step size (may be overridden per step, e.g. by a schedule). */
  learningRate: number;
  /** Decay of the first moment; PyTorch's default 0.9. */
  beta1?: number;
  /** Decay of the second moment; PyTorch's default 0.999. */
  beta2?: number;
  /** Added to `√v̂`; PyTorch's default 1e-8. */
  epsilon?: number;
}

/**
 * Adam over a fixed list of variables:
 * `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
 * `θ ← θ − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`.
 */
export class Adam {
  /** The variables this optimiser updates, in order. */
  readonly variables: readonly tf.Variable[];
  /** Default step size. */
  learningRate: number;
  readonly #beta1: number;
  readonly #beta2: number;
  readonly #epsilon: number;
  readonly #firstMoment: tf.Variable<tf.Rank.R1>;
  readonly #secondMoment: tf.Variable<tf.Rank.R1>;
  #step = 0;

  /** Makes an optimiser for `variables`, with zero moments. */
  constructor(variables: readonly tf.Variable[], options: AdamOptions) {
    if (variables.length === 0) throw new Error("Adam: no variables to optimise");
    const { learningRate, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 } = options;
    for (const [field, value] of Object.entries({ learningRate, epsilon })) {
      if (!(value >= 0) || !Number.isFinite(value)) {
        throw new Error(`Adam: '${field}' must be a finite number ≥ 0, got ${value}`);
      }
    }
    for (const [field, value] of Object.entries({ beta1, beta2 })) {
      if (!(value >= 0 && value < 1)) {
        throw new Error(`Adam: '${field}' must lie in [0, 1), got ${value}`);
      }
    }
    this.variables = [...variables];
    this.learningRate = learningRate;
    this.#beta1 = beta1;
    this.#beta2 = beta2;
    this.#epsilon = epsilon;
    const size = variables.reduce((count, variable) => count + variable.size, 0);
    this.#firstMoment = variableFrom(tf.zeros([size]), false);
    this.#secondMoment = variableFrom(tf.zeros([size]), false);
  }

  /** Steps taken so far. */
  get iterations(): number {
    return this.#step;
  }

  /**
   * One step from gradients given in the order of {@link variables}, or as
   * the map `tf.variableGrads` returns (keyed by variable name). The
   * gradients are not disposed.
   */
  step(
    gradients: readonly tf.Tensor[] | tf.NamedTensorMap,
    learningRate: number = this.learningRate,
  ): void {
    const list = Array.isArray(gradients)
      ? gradients as readonly tf.Tensor[]
      : this.variables.map((variable) => {
        const gradient = (gradients as tf.NamedTensorMap)[variable.name];
        if (!gradient) throw new Error(`Adam: no gradient for variable '${variable.name}'`);
        return gradient;
      });
    checkSameShapes("Adam.step gradients", this.variables as tf.Variable[], list as tf.Variable[]);
    this.#step += 1;
    const correction1 = 1 - this.#beta1 ** this.#step;
    const correction2 = 1 - this.#beta2 ** this.#step;
    tf.tidy(() => {
      const gradient = flatten(list);
      const m = tf.add(tf.mul(this.#firstMoment, this.#beta1), tf.mul(gradient, 1 - this.#beta1));
      const v = tf.add(
        tf.mul(this.#secondMoment, this.#beta2),
        tf.mul(tf.square(gradient), 1 - this.#beta2),
      );
      this.#firstMoment.assign(m as tf.Tensor1D);
      this.#secondMoment.assign(v as tf.Tensor1D);
      const denominator = tf.add(tf.mul(tf.sqrt(v), 1 / Math.sqrt(correction2)), this.#epsilon);
      const update = tf.mul(tf.div(m, denominator), learningRate / correction1);
      assignFlat(this.variables, tf.sub(flatValues(this.variables), update) as tf.Tensor1D);
    });
  }

  /** Frees the moment buffers and kept flat copies (not the variables). */
  dispose(): void {
    releaseFlat(this.variables);
    this.#firstMoment.dispose();
    this.#secondMoment.dispose();
  }
}
