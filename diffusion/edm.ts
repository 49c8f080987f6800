/**
 * EDM preconditioning and training loss (Karras et al. 2022, Table 1),
 * with the EDM settings the paper's denoiser uses (Table 3): σ_data = 1, ln σ ~ N(−1.2, 1.2²),
 * loss weight `(σ² + σd²)/(σ·σd)²`.
 *
 * @module
 */
import { fusedUNetBackward, fusedUNetForward, tf } from "../core/compute.ts";
import { type UNetConfig, unetForward, unetKernelLayout, type UNetParams } from "./unet1d.ts";

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

/** A batch's loss and the gradient of every parameter (see {@link edmLossAndGradients}). */
export interface LossAndGradients {
  /** The batch's EDM loss. */
  loss: number;
  /** Gradients in the order of diffusion/unet1d.ts's parameter list (owned by the caller). */
  gradients: tf.Tensor[];
}

/**
 * {@link edmLoss} and its gradient with respect to every parameter, without a
 * gradient tape: the network's whole-network kernels forward and backward
 * (only where unet1d.ts's `fusedUNetActive()`), the preconditioning and the
 * loss around them on the host. Of the dozens of TF.js ops and the tape's
 * bookkeeping around one network node, which took a sixth of a `quick`
 * training step, this leaves two kernel calls and a few thousand values
 * computed in plain arithmetic. `clean` and `noise` are
 * `[batch, length, rowWidth]` row-major and `sigma` is `[batch]`, as the
 * trainer draws them. {@link edmLoss} stays the specification: the two agree
 * to float32 rounding (each step here is rounded to float32 as the op it
 * stands for, from preconditioning factors in float64, and the mean is taken
 * in float64).
 */
export function edmLossAndGradients(
  config: UNetConfig,
  params: UNetParams,
  clean: Float32Array,
  sigma: Float32Array,
  noise: Float32Array,
): LossAndGradients {
  const { shape, names } = unetKernelLayout(config);
  const batch = sigma.length;
  const size = clean.length / batch;
  const f32 = Math.fround;
  const noisy = new Float32Array(clean.length);
  const input = new Float32Array(clean.length);
  const cNoise = new Float32Array(batch);
  const factors = Array.from(sigma, preconditioning);
  for (let b = 0; b < batch; b++) {
    const { cIn } = factors[b];
    cNoise[b] = factors[b].cNoise;
    for (let i = b * size; i < (b + 1) * size; i++) {
      noisy[i] = clean[i] + f32(noise[i] * sigma[b]);
      input[i] = noisy[i] * cIn;
    }
  }
  return tf.tidy(() => {
    const windows: [number, number, number] = [batch, config.trajectoryLength, config.rowWidth];
    const parameters = names.map((name) => params[name]);
    const cNoiseTensor = tf.tensor1d(cNoise);
    const { output, workspace } = fusedUNetForward(
      shape,
      names,
      parameters,
      tf.tensor3d(input, windows),
      cNoiseTensor,
      true,
    );
    const out = output.dataSync();
    // D = c_skip·noisy + c_out·F; loss = mean(λ·(D − clean)²), so
    // ∂loss/∂F = 2·λ·(D − clean)·c_out / count.
    const outputGradient = new Float32Array(clean.length);
    let total = 0;
    for (let b = 0; b < batch; b++) {
      const { cSkip, cOut } = factors[b];
      const variance = sigma[b] * sigma[b];
      const weight = f32((variance + sigmaData * sigmaData) / (variance * sigmaData * sigmaData));
      for (let i = b * size; i < (b + 1) * size; i++) {
        const error = f32(f32(f32(noisy[i] * cSkip) + f32(out[i] * cOut)) - clean[i]);
        total += weight * error * error;
        outputGradient[i] = (2 * weight * error * cOut) / clean.length;
      }
    }
    const { gradients } = fusedUNetBackward(
      shape,
      names,
      parameters,
      tf.tensor3d(outputGradient, windows),
      cNoiseTensor,
      workspace!,
    );
    return { loss: total / clean.length, gradients };
  });
}
