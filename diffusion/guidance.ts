/**
 * Policy guidance (paper Sections 4.1–4.2, eq. 11–14): the gradient of
 * `Σ_t log π_target(a_t | s_t)` with respect to the action block of a
 * z-scored window, with states held fixed.
 *
 * In a window row, the action entry `x` is z-scored `atanh(a)` (the default
 * action transform), so the environment action is `a = tanh(x·std + mean)`.
 * The policy gives a Gaussian `N(μ(s), σ(s))` over `a` (TD3+BC: `N(π(s), 1)`;
 * IQL: its Gaussian actor, no tanh Jacobian), hence, per entry,
 * `∂/∂x log N(a | μ, σ) = −(a − μ)/σ² · (1 − a²) · std`; another transform
 * puts its own slope `da/dy` in place of `1 − a²`.
 *
 * @module
 */
import { tf } from "../core/compute.ts";
import type { PolicyView } from "../core/types.ts";
import type { DenoiserFn, GuidanceFn } from "./sampler.ts";
import type { RowLayout, RowStats } from "./windows.ts";

/** How guidance is applied. */
export interface GuidanceOptions {
  /** Guidance coefficient λ (0: unguided; paper's results: 1). */
  strength: number;
  /**
   * `cosine` (reference code): `λ_i = λ·[(1 − i/N) + β·sin(π(i+1)/N)]`, none on the last step;
   * `eq14` (paper): `λ_i = λ·(σ_i + β·σ_max·sin(π·i/N))`;
   * `constant`: `λ_i = λ`.
   */
  schedule: "cosine" | "eq14" | "constant";
  /** Cosine weight β (0.3). */
  cosineWeight: number;
  /** Take the gradient at the denoiser's estimate of the clean window (paper 4.2), not the noisy sample. */
  atDenoisedEstimate: boolean;
  /** Scale each window's gradient to unit norm (paper 4.2). */
  normalize: boolean;
}

/** λ_i at step `stepIndex` of `steps`, at noise level `sigma` (eq. 14 and the code's form). */
export function guidanceWeight(
  options: GuidanceOptions,
  stepIndex: number,
  steps: number,
  sigma: number,
  sigmaMax: number,
): number {
  const { strength, cosineWeight } = options;
  if (options.schedule === "constant") return strength;
  if (options.schedule === "eq14") {
    // Eq. 14 with the paper's σ_N read as the first (largest) noise level.
    return strength * (sigma + cosineWeight * sigmaMax * Math.sin((Math.PI * stepIndex) / steps));
  }
  if (stepIndex === steps - 1) return 0;
  return strength *
    (1 - stepIndex / steps + cosineWeight * Math.sin((Math.PI * (stepIndex + 1)) / steps));
}

/** Log-likelihood and its gradient over the action block of windows. */
export interface ActionScore {
  /** Same shape as the windows; zeros outside the action block. */
  gradient: Float32Array;
  /** Mean over steps of `Σ_dims log π(a_t|s_t)` (per-step log-likelihood). */
  meanLogLikelihood: number;
}

/**
 * `∇_x Σ_t log π(a_t | s_t)` over the action entries of z-scored windows
 * (`count × length × rowWidth`), with `s_t` the un-normalised observation of
 * the same row (held fixed) and `a_t` the decoded un-normalised action.
 */
export function actionScore(
  windows: Float32Array,
  rows: number,
  layout: RowLayout,
  stats: RowStats,
  policy: PolicyView,
): ActionScore {
  const { rowWidth, observationDim, actionDim, actionOffset } = layout;
  const { decode, slope } = layout.actionTransform;
  const observations = new Float32Array(rows * observationDim);
  for (let row = 0; row < rows; row++) {
    for (let j = 0; j < observationDim; j++) {
      observations[row * observationDim + j] = windows[row * rowWidth + j] * stats.std[j] +
        stats.mean[j];
    }
  }
  const { mean, std } = policy.actionDistribution(observations, rows);
  if (mean.length !== rows * actionDim || std.length !== rows * actionDim) {
    throw new Error(
      `guidance: actionDistribution returned ${mean.length} means and ${std.length} stds; expected ${rows}×${actionDim}`,
    );
  }
  const gradient = new Float32Array(windows.length);
  let logLikelihood = 0;
  const halfLogTwoPi = 0.5 * Math.log(2 * Math.PI);
  for (let row = 0; row < rows; row++) {
    for (let j = 0; j < actionDim; j++) {
      const column = actionOffset + j;
      const index = row * rowWidth + column;
      const stored = windows[index] * stats.std[column] + stats.mean[column];
      const action = decode(stored);
      const mu = mean[row * actionDim + j];
      const sd = std[row * actionDim + j];
      if (!(sd > 0)) {
        throw new Error(
          `guidance: actionDistribution returned std ${sd} at state ${row}, dimension ${j}; expected > 0`,
        );
      }
      const z = (action - mu) / sd;
      logLikelihood += -0.5 * z * z - Math.log(sd) - halfLogTwoPi;
      gradient[index] = (-z / sd) * slope(stored) * stats.std[column];
    }
  }
  return { gradient, meanLogLikelihood: logLikelihood / rows };
}

/** Scales each window's gradient to unit L2 norm (windows with a zero gradient stay zero). */
export function normalizePerWindow(gradient: Float32Array, count: number): void {
  const size = gradient.length / count;
  for (let w = 0; w < count; w++) {
    const block = gradient.subarray(w * size, (w + 1) * size);
    let squares = 0;
    for (let i = 0; i < size; i++) squares += block[i] * block[i];
    if (squares > 0) {
      const scale = 1 / Math.sqrt(squares);
      for (let i = 0; i < size; i++) block[i] *= scale;
    }
  }
}

/**
 * A {@link GuidanceFn} for the sampler: at step i it reads the windows (or the
 * denoiser's estimate of them, one extra forward pass), asks the policy for
 * its action distribution, and returns `λ_i·g` on the action block.
 */
export function policyGuidance(
  policy: PolicyView,
  layout: RowLayout,
  stats: RowStats,
  denoiser: DenoiserFn,
  options: GuidanceOptions,
  sigmaMax: number,
): GuidanceFn {
  return (sample, sigma, stepIndex, steps) => {
    const weight = guidanceWeight(options, stepIndex, steps, sigma, sigmaMax);
    if (weight === 0) return null;
    const [count, length, width] = sample.shape;
    const at = options.atDenoisedEstimate ? denoiser(sample, sigma) : sample;
    const { gradient } = actionScore(
      at.dataSync() as Float32Array,
      count * length,
      layout,
      stats,
      policy,
    );
    if (options.normalize) normalizePerWindow(gradient, count);
    return tf.mul(tf.tensor3d(gradient, [count, length, width]), weight);
  };
}
