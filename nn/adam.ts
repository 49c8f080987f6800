/**
 * Adam with PyTorch's semantics (bias-corrected moments, `eps` added to the
 * corrected `√v̂`) over a list of variables. The arithmetic is one fused
 * kernel per variable ({@link FusedAdam}): with native kernels active the
 * variables move in place on the heap, without a single TF.js op.
 *
 * @module
 */
import { FusedAdam, type tf } from "../core/compute.ts";
import { checkSameShapes } from "./flat.ts";

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
  readonly #fused: FusedAdam;

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
    this.#fused = new FusedAdam(this.variables, { learningRate, beta1, beta2, epsilon });
  }

  /** Default step size. */
  get learningRate(): number {
    return this.#fused.learningRate;
  }

  set learningRate(value: number) {
    this.#fused.learningRate = value;
  }

  /** Steps taken so far. */
  get iterations(): number {
    return this.#fused.iterations;
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
    this.#fused.step(list, learningRate);
  }

  /** Frees the moment buffers (not the variables). */
  dispose(): void {
    this.#fused.dispose();
  }
}
