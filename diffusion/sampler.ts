/**
 * The EDM stochastic sampler (Karras et al. 2022, Algorithm 2; paper Table 4)
 * with policy guidance added to the sample before churn at each step
 * (paper eq. 12: the guided score is the denoiser's score plus λ·∇ log q_target).
 *
 * The sampler knows nothing of U-Nets or policies: it is driven by a denoiser
 * function `D(x; σ)` and an optional guidance function.
 *
 * @module
 */
import { tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";

/** Sampler settings (Table 4; its values are `table4Sampler` in `diffusion/settings.ts`). */
export interface SamplerOptions {
  /** Denoising steps N (paper: 256). */
  steps: number;
  /** σ_max (80). */
  sigmaMax: number;
  /** σ_min (0.002). */
  sigmaMin: number;
  /** ρ of the noise-level spacing (7). */
  rho: number;
  /** S_churn (80). */
  churn: number;
  /** S_tmin: churn only at σ ≥ this (0.05). */
  churnSigmaMin: number;
  /** S_tmax: churn only at σ ≤ this (50). */
  churnSigmaMax: number;
  /** S_noise: inflation of the churn noise (1.003). */
  churnNoise: number;
  /** `heun` (2nd order, Table 4) or `euler` (1st order). */
  solver: "heun" | "euler";
}

/** `D(x; σ)` for a batch sharing one noise level. Called inside `tf.tidy`. */
export type DenoiserFn = (noisy: tf.Tensor3D, sigma: number) => tf.Tensor3D;

/**
 * The guidance term `λ_i·g` to add to the sample at step `stepIndex` of
 * `steps` (zeros outside the guided entries), or `null` for none this step.
 * Called inside `tf.tidy`.
 */
export type GuidanceFn = (
  sample: tf.Tensor3D,
  sigma: number,
  stepIndex: number,
  steps: number,
) => tf.Tensor3D | null;

/**
 * Noise levels `σ_i = (σmax^(1/ρ) + i/(N−1)·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ`
 * for i < N, then `σ_N = 0`.
 */
export function noiseLevels(options: SamplerOptions): Float64Array {
  const { steps, sigmaMax, sigmaMin, rho } = options;
  const levels = new Float64Array(steps + 1);
  const high = sigmaMax ** (1 / rho);
  const low = sigmaMin ** (1 / rho);
  for (let i = 0; i < steps; i++) {
    const t = steps === 1 ? 0 : i / (steps - 1);
    levels[i] = (high + t * (low - high)) ** rho;
  }
  levels[steps] = 0;
  return levels;
}

/** Checks sampler settings; throws a clear error naming the field. */
export function validateSamplerOptions(options: SamplerOptions): void {
  if (!Number.isInteger(options.steps) || options.steps < 1) {
    throw new Error(`sampler: steps must be a positive integer, got ${options.steps}`);
  }
  if (!(options.sigmaMax > options.sigmaMin && options.sigmaMin > 0)) {
    throw new Error(
      `sampler: need sigmaMax > sigmaMin > 0, got sigmaMax ${options.sigmaMax}, sigmaMin ${options.sigmaMin}`,
    );
  }
}

/**
 * One step of Algorithm 2 from `levels[stepIndex]` to `levels[stepIndex + 1]`:
 * add guidance, raise the noise by churn `γ = min(S_churn/N, √2 − 1)` inside
 * [S_tmin, S_tmax], take an Euler step and, unless σ_{i+1} = 0, Heun's
 * correction. Returns a new tensor; `sample` is left alone.
 */
export function samplerStep(
  denoiser: DenoiserFn,
  sample: tf.Tensor3D,
  levels: Float64Array,
  stepIndex: number,
  options: SamplerOptions,
  noiseSeed: number,
  guidance?: GuidanceFn,
): tf.Tensor3D {
  const steps = options.steps;
  const sigma = levels[stepIndex];
  const sigmaNext = levels[stepIndex + 1];
  return tf.tidy(() => {
    let current: tf.Tensor3D = sample;
    const guide = guidance?.(current, sigma, stepIndex, steps);
    if (guide) current = tf.add(current, guide) as tf.Tensor3D;
    const inChurnRange = sigma >= options.churnSigmaMin && sigma <= options.churnSigmaMax;
    const gamma = inChurnRange ? Math.min(options.churn / steps, Math.SQRT2 - 1) : 0;
    const sigmaHat = sigma * (1 + gamma);
    if (gamma > 0) {
      const extra = Math.sqrt(sigmaHat * sigmaHat - sigma * sigma) * options.churnNoise;
      const noise = tf.randomNormal(current.shape, 0, 1, "float32", noiseSeed);
      current = tf.add(current, tf.mul(noise, extra)) as tf.Tensor3D;
    }
    const slope = tf.div(tf.sub(current, denoiser(current, sigmaHat)), sigmaHat);
    let stepped = tf.add(current, tf.mul(slope, sigmaNext - sigmaHat)) as tf.Tensor3D;
    if (options.solver === "heun" && sigmaNext > 0) {
      const slopeNext = tf.div(tf.sub(stepped, denoiser(stepped, sigmaNext)), sigmaNext);
      stepped = tf.add(
        current,
        tf.mul(tf.add(slope, slopeNext), 0.5 * (sigmaNext - sigmaHat)),
      ) as tf.Tensor3D;
    }
    return stepped;
  });
}

/**
 * Draws `shape[0]` samples by Algorithm 2 of Karras et al. (2022): start from
 * N(0, σ_max²), then {@link samplerStep} N times. Returns the final sample.
 */
export function sampleEdm(
  denoiser: DenoiserFn,
  shape: [number, number, number],
  options: SamplerOptions,
  seed: number,
  guidance?: GuidanceFn,
  onStep?: (stepIndex: number) => void,
): Float32Array {
  validateSamplerOptions(options);
  const rng = new Rng(seed);
  const levels = noiseLevels(options);
  let x = tf.tidy(() =>
    tf.mul(tf.randomNormal(shape, 0, 1, "float32", rng.seed()), levels[0])
  ) as tf.Tensor3D;
  for (let i = 0; i < options.steps; i++) {
    const next = samplerStep(denoiser, x, levels, i, options, rng.seed(), guidance);
    x.dispose();
    x = next;
    onStep?.(i);
  }
  const out = x.dataSync() as Float32Array;
  x.dispose();
  return new Float32Array(out);
}
