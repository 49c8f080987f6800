/**
 * The denoiser network: a 1D U-Net over the time axis of a trajectory window
 * (paper Table 3). Tensors are `[batch, length, channels]`
 * (TF.js's NWC layout for `conv1d`).
 *
 * The network is a pure function of a parameter record, so the same code runs
 * the trained weights and their EMA copy.
 *
 * @module
 */
import {
  fusedUNet,
  fusedUNetAvailable,
  groupNorm as groupNormOp,
  tf,
  type UNetKernelShape,
} from "../core/compute.ts";
import { Rng } from "../core/rng.ts";

/** Sizes of the U-Net. */
export interface UNetConfig {
  /** Entries per window row (`observationDim + actionDim + 2`). */
  rowWidth: number;
  /** Width of the first level; level `i` has `features·2^i` (paper: 1024). */
  features: number;
  /** Number of levels (paper: 3). */
  numBlocks: number;
  /** Window length; must be divisible by `2^(numBlocks−1)` (paper: 16). */
  trajectoryLength: number;
  /**
   * GroupNorm statistics per time step (over one row's channel group), as the
   * authors' U-Net computes them under `vmap`; absent or false: per window,
   * over all its time steps (the usual U-Net).
   */
  normPerStep?: boolean;
}

/** Named parameters of the network. */
export type UNetParams = Record<string, tf.Tensor>;

/** Groups of every GroupNorm (paper's reference code: 8). */
export const normGroups = 8;

/** Added to every GroupNorm's variance (PyTorch's default). */
const normEpsilon = 1e-5;

/** Checks sizes; throws a clear error naming the field. */
export function validateUNetConfig(config: UNetConfig): void {
  const { rowWidth, features, numBlocks, trajectoryLength } = config;
  if (!Number.isInteger(rowWidth) || rowWidth < 1) {
    throw new Error(`unet1d: rowWidth must be a positive integer, got ${rowWidth}`);
  }
  if (!Number.isInteger(features) || features < normGroups || features % normGroups !== 0) {
    throw new Error(
      `unet1d: features must be a positive multiple of ${normGroups}, got ${features}`,
    );
  }
  if (!Number.isInteger(numBlocks) || numBlocks < 1) {
    throw new Error(`unet1d: numBlocks must be a positive integer, got ${numBlocks}`);
  }
  const factor = 2 ** (numBlocks - 1);
  if (!Number.isInteger(trajectoryLength) || trajectoryLength % factor !== 0) {
    throw new Error(
      `unet1d: trajectoryLength (${trajectoryLength}) must be divisible by 2^(numBlocks−1) = ${factor}`,
    );
  }
}

/** Width of level `level`. */
function levelWidth(config: UNetConfig, level: number): number {
  return config.features * 2 ** level;
}

/** Shapes of every parameter, in a fixed order (the order of saved weights). */
export function parameterShapes(config: UNetConfig): [string, number[]][] {
  validateUNetConfig(config);
  const { rowWidth, features, numBlocks } = config;
  const shapes: [string, number[]][] = [];
  const dense = (name: string, input: number, output: number) => {
    shapes.push([`${name}.w`, [input, output]], [`${name}.b`, [output]]);
  };
  const conv = (name: string, kernel: number, input: number, output: number) => {
    shapes.push([`${name}.w`, [kernel, input, output]], [`${name}.b`, [output]]);
  };
  const norm = (name: string, channels: number) => {
    shapes.push([`${name}.gamma`, [channels]], [`${name}.beta`, [channels]]);
  };
  dense("embed.0", features / 4, features);
  dense("embed.1", features, features);
  let channels = rowWidth;
  for (let level = 0; level < numBlocks; level++) {
    const width = levelWidth(config, level);
    conv(`down${level}.conv0`, 3, channels, width);
    dense(`down${level}.noise`, features, width);
    norm(`down${level}.norm0`, width);
    conv(`down${level}.conv1`, 3, width, width);
    norm(`down${level}.norm1`, width);
    channels = width;
  }
  for (let level = numBlocks - 2; level >= 0; level--) {
    const width = levelWidth(config, level);
    conv(`up${level}.conv0`, 2, channels, width);
    dense(`up${level}.noise`, features, width);
    norm(`up${level}.norm0`, width);
    conv(`up${level}.conv1`, 3, 2 * width, width);
    norm(`up${level}.norm1`, width);
    conv(`up${level}.conv2`, 3, width, width);
    norm(`up${level}.norm2`, width);
    channels = width;
  }
  conv("out", 1, channels, rowWidth);
  return shapes;
}

/** Number of scalar parameters. */
export function parameterCount(config: UNetConfig): number {
  return parameterShapes(config).reduce(
    (sum, [, shape]) => sum + shape.reduce((a, b) => a * b, 1),
    0,
  );
}

/**
 * Fresh parameters: weights and biases uniform in ±1/√fan_in (PyTorch's
 * default for linear and conv layers), GroupNorm scale 1 and shift 0.
 */
export function initUNetParams(config: UNetConfig, seed: number): Record<string, tf.Variable> {
  const rng = new Rng(seed);
  const params: Record<string, tf.Variable> = {};
  const shapes = parameterShapes(config);
  const fanIn = new Map<string, number>();
  for (const [name, shape] of shapes) {
    if (name.endsWith(".w")) {
      fanIn.set(
        name.slice(0, -2),
        shape.slice(0, -1).reduce((a, b) => a * b, 1),
      );
    }
  }
  for (const [name, shape] of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (name.endsWith(".gamma")) values.fill(1);
    else if (!name.endsWith(".beta")) {
      const bound = 1 / Math.sqrt(fanIn.get(name.slice(0, name.lastIndexOf(".")))!);
      for (let i = 0; i < size; i++) values[i] = rng.range(-bound, bound);
    }
    params[name] = tf.tidy(() => tf.variable(tf.tensor(values, shape), true));
  }
  return params;
}

function dense(params: UNetParams, name: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(x, params[`${name}.w`] as tf.Tensor2D), params[`${name}.b`]);
}

/**
 * How convolutions run: `conv1d` (TF.js's kernel, whose gradients the wasm
 * backend ships only when the project's kernels are installed), `slices`
 * (shifted slices and one matrix product, differentiable on any backend), or
 * `auto` (`conv1d` where the backend has its filter gradient).
 */
export let convolutionPath: "auto" | "conv1d" | "slices" = "auto";

/** Chooses how convolutions run (see {@link convolutionPath}); benchmarks compare the two. */
export function setConvolutionPath(path: "auto" | "conv1d" | "slices"): void {
  convolutionPath = path;
}

function hasConvolutionGradients(): boolean {
  return tf.getKernel("Conv2DBackpropFilter", tf.getBackend()) !== undefined;
}

/**
 * A 1-D convolution with "same" padding (as TF pads: `⌊(k−1)/2⌋` before,
 * the rest after), written as shifted slices and one matrix product: the
 * product's gradient is a matrix product too, and the wasm backend has no
 * gradient kernel for `conv1d`'s filter.
 */
function conv(params: UNetParams, name: string, x: tf.Tensor3D): tf.Tensor3D {
  return conv1dSame(x, params[`${name}.w`] as tf.Tensor3D, params[`${name}.b`] as tf.Tensor1D);
}

/**
 * `conv1d(x, weight, stride 1, "same") + bias` for `x` `[batch, length, in]`
 * and `weight` `[kernel, in, out]`, built from slices and one matrix product.
 */
export function conv1dSame(x: tf.Tensor3D, weight: tf.Tensor3D, bias: tf.Tensor1D): tf.Tensor3D {
  if (convolutionPath === "conv1d" || (convolutionPath === "auto" && hasConvolutionGradients())) {
    // As a 2-D convolution of height 1 with the bias fused in: one kernel forward.
    const [batch, length, inputChannels] = x.shape;
    const [kernel, , outputChannels] = weight.shape;
    const y = tf.fused.conv2d({
      x: tf.reshape(x, [batch, 1, length, inputChannels]) as tf.Tensor4D,
      filter: tf.reshape(weight, [1, kernel, inputChannels, outputChannels]) as tf.Tensor4D,
      strides: 1,
      pad: "same",
      bias,
    });
    return tf.reshape(y, [batch, length, outputChannels]);
  }
  const [kernel, inputChannels, outputChannels] = weight.shape;
  const [batch, length] = x.shape;
  let columns: tf.Tensor3D = x;
  if (kernel > 1) {
    const before = Math.floor((kernel - 1) / 2);
    const padded = tf.pad(x, [[0, 0], [before, kernel - 1 - before], [0, 0]]);
    const shifts = Array.from(
      { length: kernel },
      (_, j) => tf.slice(padded, [0, j, 0], [batch, length, inputChannels]),
    );
    columns = tf.concat(shifts, 2);
  }
  const product = tf.matMul(
    tf.reshape(columns, [batch * length, kernel * inputChannels]),
    tf.reshape(weight, [kernel * inputChannels, outputChannels]),
  );
  return tf.reshape(tf.add(product, bias), [batch, length, outputChannels]);
}

/**
 * GroupNorm(8) over the channels, scale and shift, then ReLU: one kernel each
 * way on wasm. Per step, each time step is normalised as a window of length 1.
 */
function groupNormRelu(
  params: UNetParams,
  name: string,
  x: tf.Tensor3D,
  perStep: boolean,
): tf.Tensor3D {
  const [batch, length, channels] = x.shape;
  const input = perStep ? tf.reshape(x, [batch * length, 1, channels]) as tf.Tensor3D : x;
  const output = groupNormOp(input, params[`${name}.gamma`], params[`${name}.beta`], normGroups, {
    epsilon: normEpsilon,
    relu: true,
  }) as tf.Tensor3D;
  return perStep ? tf.reshape(output, [batch, length, channels]) : output;
}

function swish(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(x, tf.sigmoid(x));
}

/** Max-pool by 2 along the time axis (lengths are even by construction). */
function maxPool2(x: tf.Tensor3D): tf.Tensor3D {
  const [batch, length, channels] = x.shape;
  // Even and odd steps side by side, then an element-wise maximum: its
  // gradient compares same-shaped tensors, where a max over an axis would
  // compare against a broadcast (several times slower on wasm).
  const [even, odd] = tf.split(tf.reshape(x, [batch, length / 2, 2 * channels]), 2, 2);
  return tf.maximum(even, odd);
}

/** Nearest resize ×2 along the time axis: every step repeated. */
function upsample2(x: tf.Tensor3D): tf.Tensor3D {
  const [batch, length, channels] = x.shape;
  const expanded = tf.expandDims(x, 2);
  return tf.reshape(tf.concat([expanded, expanded], 2), [batch, length * 2, channels]);
}

/** Sinusoidal features of `c_noise` (features/4 of them: half sines, half cosines). */
function noiseFeatures(cNoise: tf.Tensor1D, count: number): tf.Tensor2D {
  const half = count / 2;
  const frequencies = new Float32Array(half);
  for (let k = 0; k < half; k++) frequencies[k] = Math.exp((-Math.log(10000) * k) / half);
  const angles = tf.mul(tf.expandDims(cNoise, 1), tf.tensor2d(frequencies, [1, half]));
  return tf.concat([tf.sin(angles), tf.cos(angles)], 1) as tf.Tensor2D;
}

/**
 * How the network runs: `ops` (the composition of TF.js ops below, the
 * specification), or `auto` (the whole network as one kernel forward and one
 * backward, compute/kernels_unet.ts, where the backend has them: the wasm
 * backend's `blas` set, and its `wasm` set where the SIMD GEMM loads; else
 * `ops`). The two agree to float32 rounding, not bit for bit.
 */
export let unetPath: "auto" | "ops" = "auto";

/** Chooses how the network runs (see {@link unetPath}); tests and benchmarks compare the two. */
export function setUNetPath(path: "auto" | "ops"): void {
  unetPath = path;
}

/** Whether {@link unetForward} runs the whole-network kernels now. */
export function fusedUNetActive(): boolean {
  return unetPath === "auto" && fusedUNetAvailable();
}

/**
 * The whole-network kernels' view of `config`: its sizes, and the parameter
 * names in the order of {@link parameterShapes} (the order their gradients
 * come back in).
 */
export function unetKernelLayout(config: UNetConfig): { shape: UNetKernelShape; names: string[] } {
  return {
    shape: {
      rowWidth: config.rowWidth,
      features: config.features,
      numBlocks: config.numBlocks,
      trajectoryLength: config.trajectoryLength,
      normPerStep: config.normPerStep ?? false,
      groups: normGroups,
      epsilon: normEpsilon,
    },
    names: parameterShapes(config).map(([name]) => name),
  };
}

/**
 * The raw network `F_θ(x, c_noise)`: `x` is `[batch, length, rowWidth]`,
 * `cNoise` is `[batch]`; returns `[batch, length, rowWidth]`.
 * Call inside `tf.tidy` (or a gradient function).
 */
export function unetForward(
  config: UNetConfig,
  params: UNetParams,
  x: tf.Tensor3D,
  cNoise: tf.Tensor1D,
): tf.Tensor3D {
  if (fusedUNetActive()) {
    const { shape, names } = unetKernelLayout(config);
    return fusedUNet(shape, names, params, x, cNoise);
  }
  const { features, numBlocks } = config;
  const perStep = config.normPerStep ?? false;
  let embedding = dense(params, "embed.0", noiseFeatures(cNoise, features / 4));
  embedding = dense(params, "embed.1", swish(embedding));
  const embeddingActivated = swish(embedding);
  const projection = (name: string) => tf.expandDims(dense(params, name, embeddingActivated), 1);

  const skips: tf.Tensor3D[] = [];
  let h = x;
  for (let level = 0; level < numBlocks; level++) {
    h = tf.add(conv(params, `down${level}.conv0`, h), projection(`down${level}.noise`));
    h = groupNormRelu(params, `down${level}.norm0`, h, perStep);
    h = groupNormRelu(params, `down${level}.norm1`, conv(params, `down${level}.conv1`, h), perStep);
    skips.push(h);
    if (level < numBlocks - 1) h = maxPool2(h);
  }
  for (let level = numBlocks - 2; level >= 0; level--) {
    h = upsample2(h);
    h = tf.add(conv(params, `up${level}.conv0`, h), projection(`up${level}.noise`));
    h = groupNormRelu(params, `up${level}.norm0`, h, perStep);
    h = tf.concat([h, skips[level]], 2);
    h = groupNormRelu(params, `up${level}.norm1`, conv(params, `up${level}.conv1`, h), perStep);
    h = groupNormRelu(params, `up${level}.norm2`, conv(params, `up${level}.conv2`, h), perStep);
  }
  return conv(params, "out", h);
}
