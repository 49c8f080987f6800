/**
 * EDM preconditioning and training loss (Karras et al. 2022, Table 1),
 * with the EDM settings the paper's denoiser uses (Table 3): σ_data = 1, ln σ ~ N(−1.2, 1.2²),
 * loss weight `(σ² + σd²)/(σ·σd)²`.
 *
 * @module
 */
import { tf } from "../core/compute.ts";
import { type UNetConfig, unetForward, type UNetParams } from "./unet1d.ts";

/** Standard deviation of the (z-scored) data. */
export const sigmaData = 1;

/** The four preconditioning factors for one noise level. */
export interface Preconditioning {
  /** `σd² / (σ² + σd²)`: how much of the noisy input passes straight through. */
  cSkip: number;
  /** `σ·σd / √(σ² + σd²)`: scale of the network's output. */
  cOut: number;
  /** `1 / √(σ² + σd²)`: scale of the network's input. */
  cIn: number;
  /** `ln(σ)/4`: what the network is told of the noise level. */
  cNoise: number;
}

/** Preconditioning factors at noise level `sigma`. */
export function preconditioning(sigma: number): Preconditioning {
  const total = sigma * sigma + sigmaData * sigmaData;
  return {
    cSkip: (sigmaData * sigmaData) / total,
    cOut: (sigma * sigmaData) / Math.sqrt(total),
    cIn: 1 / Math.sqrt(total),
    cNoise: Math.log(sigma) / 4,
  };
}

/**
 * The denoiser `D(x; σ) = c_skip·x + c_out·F(c_in·x, c_noise)` with one σ per
 * window (`sigma` is `[batch]`). Call inside `tf.tidy` or a gradient function.
 */
export function denoise(
  config: UNetConfig,
  params: UNetParams,
  noisy: tf.Tensor3D,
  sigma: tf.Tensor1D,
): tf.Tensor3D {
  const sigmaSquared = tf.square(sigma);
  const total = tf.add(sigmaSquared, sigmaData * sigmaData);
  const perWindow = (t: tf.Tensor) => tf.reshape(t, [-1, 1, 1]);
  const cSkip = perWindow(tf.div(sigmaData * sigmaData, total));
  const cOut = perWindow(tf.div(tf.mul(sigma, sigmaData), tf.sqrt(total)));
  const cIn = perWindow(tf.rsqrt(total));
  const cNoise = tf.div(tf.log(sigma), 4) as tf.Tensor1D;
  const output = unetForward(config, params, tf.mul(noisy, cIn), cNoise);
  return tf.add(tf.mul(noisy, cSkip), tf.mul(output, cOut));
}

/**
 * The EDM loss of a batch: `mean(λ(σ)·(D(x + σ·n; σ) − x)²)` with
 * `λ(σ) = (σ² + σd²)/(σ·σd)²`, averaged over every entry.
 * `clean` and `noise` are `[batch, length, rowWidth]`, `sigma` is `[batch]`.
 */
export function edmLoss(
  config: UNetConfig,
  params: UNetParams,
  clean: tf.Tensor3D,
  sigma: tf.Tensor1D,
  noise: tf.Tensor3D,
): tf.Scalar {
  const perWindow = (t: tf.Tensor) => tf.reshape(t, [-1, 1, 1]);
  const noisy = tf.add(clean, tf.mul(noise, perWindow(sigma))) as tf.Tensor3D;
  const denoised = denoise(config, params, noisy, sigma);
  const sigmaSquared = tf.square(sigma);
  const weight = tf.div(
    tf.add(sigmaSquared, sigmaData * sigmaData),
    tf.mul(sigmaSquared, sigmaData * sigmaData),
  );
  return tf.mean(tf.mul(tf.square(tf.sub(denoised, clean)), perWindow(weight)));
}
