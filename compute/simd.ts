/**
 * Element-wise loops in WebAssembly SIMD, run directly on the wasm backend's
 * memory (the module imports it): the ReLU gradient mask, row sums, bias
 * and activation, Adam, linear interpolation, GroupNorm, block copies,
 * im2col, the U-Net's row convolutions and max-pooling, maximum and
 * minimum, and a GEMM. Source: compute/simd/kernels.c,
 * built by scripts/build_simd.sh.
 *
 * Where the module cannot be instantiated (no SIMD, a shared memory), every
 * loop but the GEMM has a TypeScript twin with the same arithmetic, so
 * callers never branch on it (products then go to the backend's own kernel). Offsets and counts are in floats, as in compute/heap.ts.
 *
 * @module
 */
import { simdKernelsWasm } from "./simd/kernels_wasm.ts";
import type { WasmBackend } from "./heap.ts";
import { type ConvGeometry, im2col } from "./im2col.ts";
import { col2imRows, im2colRows, maxPairs, maxPairsBackward, type RowColumns } from "./rows.ts";

/** Hyperparameters of one fused Adam pass, bias corrections folded in. */
export interface AdamPass {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** `lr / (1 − β₁ᵗ)`. */
  stepSize: number;
  /** `1 / √(1 − β₂ᵗ)`. */
  inverseRootCorrection2: number;
}

/** The loops, on float offsets into the backend's heap. */
export interface HeapLoops {
  /** Whether these run as wasm SIMD (false: the TypeScript twins). */
  readonly simd: boolean;
  /** `out ← hidden > 0 ? gradient : 0` (hidden a ReLU output); `out` may be `gradient`. */
  reluMask(gradient: number, hidden: number, out: number, count: number): void;
  /** `out[m][j] ← Σ_r source[m][r][j]` for `members` blocks of `rows × cols`. */
  sumRows(source: number, members: number, rows: number, cols: number, out: number): void;
  /** One Adam pass over `count` parameters; outputs may be the inputs. */
  adam(
    param: number,
    gradient: number,
    m: number,
    v: number,
    paramOut: number,
    mOut: number,
    vOut: number,
    count: number,
    pass: AdamPass,
  ): void;
  /** `out ← a + weight·(b − a)`; `out` may be `a`. */
  lerp(a: number, b: number, out: number, count: number, weight: number): void;
  /**
   * GroupNorm forward over `[batch, positions, channels]` rows (groups of
   * `shape.groupSize` contiguous channels): `y`, and per (example, group) the
   * mean and 1/σ. `scratch` holds 4·channels floats.
   */
  groupNormForward(shape: GroupNormShape, buffers: GroupNormForwardBuffers): void;
  /** GroupNorm backward: `dx`, and `dGamma`, `dBeta` (overwritten). `scratch` holds 6·channels floats. */
  groupNormBackward(shape: GroupNormShape, buffers: GroupNormBackwardBuffers): void;
  /**
   * `out[m][r][j] ← out[m][r][j] + bias[m·stride + j]`, then ReLU when asked, over
   * `members` blocks of `rows × cols` (`stride` 0: one bias row for all).
   */
  biasActivation(
    out: number,
    bias: number,
    stride: number,
    members: number,
    rows: number,
    cols: number,
    relu: boolean,
  ): void;
  /** `rows` blocks of `length` floats: `dst[r·dstStride + i] ← src[r·srcStride + i]`. */
  copyBlocks(
    src: number,
    srcStride: number,
    dst: number,
    dstStride: number,
    rows: number,
    length: number,
  ): void;
  /** The column matrix of a channels-last convolution (see compute/im2col.ts). */
  im2col(geometry: ConvGeometry, input: number, columns: number): void;
  /** One part of a 1-D convolution's column matrix (see compute/rows.ts). */
  im2colRows(geometry: RowColumns, source: number, columns: number): void;
  /** The adjoint of {@link im2colRows} (`repeat` 1), written to `out`. */
  col2imRows(geometry: RowColumns, columns: number, out: number): void;
  /** `out[r] ← max(x[2r], x[2r + 1])` over rows of `channels` floats. */
  maxPairs(x: number, pairs: number, channels: number, out: number): void;
  /** The gradient of {@link maxPairs} into `dx` (added when `accumulate`). */
  maxPairsBackward(
    x: number,
    dy: number,
    pairs: number,
    channels: number,
    accumulate: boolean,
    dx: number,
  ): void;
  /** `out[i] ← max(a[i·strideA], b[i·strideB])`, strides 0 or 1, NaN propagating. */
  maximum(a: number, strideA: number, b: number, strideB: number, out: number, count: number): void;
  /** `out[i] ← min(a[i·strideA], b[i·strideB])`, strides 0 or 1, NaN propagating. */
  minimum(a: number, strideA: number, b: number, strideB: number, out: number, count: number): void;
  /**
   * `c = op(a)·op(b) + beta·c` (row-major, op(a) m×k, op(b) k×n), with
   * `pack` scratch of {@link sgemmPackSize} floats. SIMD only: absent from
   * the TypeScript twins, where a product goes to the backend's own kernel.
   */
  sgemm?(
    transposeA: boolean,
    transposeB: boolean,
    m: number,
    n: number,
    k: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    beta: number,
    c: number,
    ldc: number,
    pack: number,
  ): void;
}

/** Floats of scratch {@link HeapLoops.sgemm} needs for an m×k by k×n product. */
export function sgemmPackSize(m: number, k: number): number {
  return Math.ceil(m / 6) * 6 * k + 8 * k + 48;
}

/** Sizes of a GroupNorm pass. */
export interface GroupNormShape {
  batch: number;
  positions: number;
  channels: number;
  groupSize: number;
  epsilon: number;
  /** ReLU after the affine map (forward), the ReLU's mask on `dy` (backward). */
  relu: boolean;
}

/** Heap offsets of a GroupNorm forward pass. */
export interface GroupNormForwardBuffers {
  x: number;
  gamma: number;
  beta: number;
  y: number;
  mean: number;
  inverseStd: number;
  scratch: number;
}

/** Heap offsets of a GroupNorm backward pass. */
export interface GroupNormBackwardBuffers {
  dy: number;
  x: number;
  gamma: number;
  mean: number;
  inverseStd: number;
  /** The forward output (read for the ReLU's mask; any valid offset without ReLU). */
  y: number;
  dx: number;
  dGamma: number;
  dBeta: number;
  scratch: number;
}

type BinaryExport = (
  a: number,
  strideA: number,
  b: number,
  strideB: number,
  out: number,
  n: number,
) => void;

interface SimdExports {
  bias_activation(
    out: number,
    bias: number,
    stride: number,
    members: number,
    rows: number,
    cols: number,
    relu: number,
  ): void;
  copy_blocks(
    src: number,
    srcStride: number,
    dst: number,
    dstStride: number,
    rows: number,
    length: number,
  ): void;
  im2col(
    input: number,
    batch: number,
    inH: number,
    inW: number,
    channels: number,
    outH: number,
    outW: number,
    filterH: number,
    filterW: number,
    strideH: number,
    strideW: number,
    dilationH: number,
    dilationW: number,
    padTop: number,
    padLeft: number,
    columns: number,
  ): void;
  im2col_rows(
    src: number,
    batch: number,
    length: number,
    repeat: number,
    channels: number,
    taps: number,
    before: number,
    total: number,
    offset: number,
    columns: number,
  ): void;
  col2im_rows(
    columns: number,
    batch: number,
    length: number,
    channels: number,
    taps: number,
    before: number,
    total: number,
    offset: number,
    out: number,
  ): void;
  max_pairs(x: number, pairs: number, channels: number, out: number): void;
  max_pairs_backward(
    x: number,
    dy: number,
    pairs: number,
    channels: number,
    accumulate: number,
    dx: number,
  ): void;
  maximum: BinaryExport;
  minimum: BinaryExport;
  relu_mask(grad: number, hidden: number, out: number, n: number): void;
  sum_rows(src: number, members: number, rows: number, cols: number, out: number): void;
  adam(
    param: number,
    grad: number,
    m: number,
    v: number,
    paramOut: number,
    mOut: number,
    vOut: number,
    n: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    stepSize: number,
    inverseRootCorrection2: number,
  ): void;
  lerp(a: number, b: number, out: number, n: number, weight: number): void;
  sgemm(
    transA: number,
    transB: number,
    m: number,
    n: number,
    k: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    beta: number,
    c: number,
    ldc: number,
    pack: number,
  ): void;
  group_norm_forward(
    x: number,
    gamma: number,
    beta: number,
    batch: number,
    positions: number,
    channels: number,
    groupSize: number,
    epsilon: number,
    relu: number,
    y: number,
    mean: number,
    inverseStd: number,
    scratch: number,
  ): void;
  group_norm_backward(
    dy: number,
    x: number,
    gamma: number,
    mean: number,
    inverseStd: number,
    y: number,
    relu: number,
    batch: number,
    positions: number,
    channels: number,
    groupSize: number,
    dx: number,
    dGamma: number,
    dBeta: number,
    scratch: number,
  ): void;
}

interface EmscriptenModule {
  asm?: { memory?: WebAssembly.Memory };
  wasmMemory?: WebAssembly.Memory;
}

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

let compiled: WebAssembly.Module | null | undefined;

function compiledModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(decodeBase64(simdKernelsWasm) as Uint8Array<ArrayBuffer>);
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

function simdLoops(memory: WebAssembly.Memory): HeapLoops | undefined {
  const module = compiledModule();
  if (!module) return undefined;
  let exports: SimdExports;
  try {
    exports = new WebAssembly.Instance(module, { env: { memory } })
      .exports as unknown as SimdExports;
  } catch {
    return undefined;
  }
  const b = (offset: number) => offset * 4;
  return {
    simd: true,
    reluMask: (gradient, hidden, out, count) =>
      exports.relu_mask(b(gradient), b(hidden), b(out), count),
    sumRows: (source, members, rows, cols, out) =>
      exports.sum_rows(b(source), members, rows, cols, b(out)),
    adam: (param, gradient, m, v, paramOut, mOut, vOut, count, pass) =>
      exports.adam(
        b(param),
        b(gradient),
        b(m),
        b(v),
        b(paramOut),
        b(mOut),
        b(vOut),
        count,
        pass.beta1,
        pass.beta2,
        pass.epsilon,
        pass.stepSize,
        pass.inverseRootCorrection2,
      ),
    lerp: (a, bOffset, out, count, weight) => exports.lerp(b(a), b(bOffset), b(out), count, weight),
    biasActivation: (out, bias, stride, members, rows, cols, relu) =>
      exports.bias_activation(b(out), b(bias), stride, members, rows, cols, relu ? 1 : 0),
    copyBlocks: (src, srcStride, dst, dstStride, rows, length) =>
      exports.copy_blocks(b(src), srcStride, b(dst), dstStride, rows, length),
    im2col: (g, input, columns) =>
      exports.im2col(
        b(input),
        g.batchSize,
        g.inHeight,
        g.inWidth,
        g.inChannels,
        g.outHeight,
        g.outWidth,
        g.filterHeight,
        g.filterWidth,
        g.strideHeight,
        g.strideWidth,
        g.dilationHeight,
        g.dilationWidth,
        g.padInfo.top,
        g.padInfo.left,
        b(columns),
      ),
    im2colRows: (g, source, columns) =>
      exports.im2col_rows(
        b(source),
        g.batch,
        g.length,
        g.repeat,
        g.channels,
        g.taps,
        g.before,
        g.total,
        g.offset,
        b(columns),
      ),
    col2imRows: (g, columns, out) =>
      exports.col2im_rows(
        b(columns),
        g.batch,
        g.length,
        g.channels,
        g.taps,
        g.before,
        g.total,
        g.offset,
        b(out),
      ),
    maxPairs: (x, pairs, channels, out) => exports.max_pairs(b(x), pairs, channels, b(out)),
    maxPairsBackward: (x, dy, pairs, channels, accumulate, dx) =>
      exports.max_pairs_backward(b(x), b(dy), pairs, channels, accumulate ? 1 : 0, b(dx)),
    maximum: (a, strideA, bOffset, strideB, out, count) =>
      exports.maximum(b(a), strideA, b(bOffset), strideB, b(out), count),
    minimum: (a, strideA, bOffset, strideB, out, count) =>
      exports.minimum(b(a), strideA, b(bOffset), strideB, b(out), count),
    sgemm: (transposeA, transposeB, m, n, k, a, lda, bOffset, ldb, beta, c, ldc, pack) =>
      exports.sgemm(
        transposeA ? 1 : 0,
        transposeB ? 1 : 0,
        m,
        n,
        k,
        b(a),
        lda,
        b(bOffset),
        ldb,
        beta,
        b(c),
        ldc,
        b(pack),
      ),
    groupNormForward: (shape, o) =>
      exports.group_norm_forward(
        b(o.x),
        b(o.gamma),
        b(o.beta),
        shape.batch,
        shape.positions,
        shape.channels,
        shape.groupSize,
        shape.epsilon,
        shape.relu ? 1 : 0,
        b(o.y),
        b(o.mean),
        b(o.inverseStd),
        b(o.scratch),
      ),
    groupNormBackward: (shape, o) =>
      exports.group_norm_backward(
        b(o.dy),
        b(o.x),
        b(o.gamma),
        b(o.mean),
        b(o.inverseStd),
        b(o.y),
        shape.relu ? 1 : 0,
        shape.batch,
        shape.positions,
        shape.channels,
        shape.groupSize,
        b(o.dx),
        b(o.dGamma),
        b(o.dBeta),
        b(o.scratch),
      ),
  };
}

/** The same loops in TypeScript, on the heap as it is at each call. */
export function scriptLoops(heapOf: () => Float32Array): HeapLoops {
  const bitsOf = () => {
    const heap = heapOf();
    return new Int32Array(heap.buffer, heap.byteOffset, heap.length);
  };
  return {
    simd: false,
    reluMask: (gradient, hidden, out, count) => {
      const bits = bitsOf();
      for (let i = 0; i < count; i++) {
        bits[out + i] = bits[gradient + i] & (-bits[hidden + i] >> 31);
      }
    },
    sumRows: (source, members, rows, cols, out) => {
      const heap = heapOf();
      for (let m = 0; m < members; m++) {
        const target = out + m * cols;
        heap.fill(0, target, target + cols);
        for (let r = 0; r < rows; r++) {
          const row = source + (m * rows + r) * cols;
          for (let j = 0; j < cols; j++) heap[target + j] += heap[row + j];
        }
      }
    },
    adam: (param, gradient, m, v, paramOut, mOut, vOut, count, pass) => {
      const heap = heapOf();
      const { beta1, beta2, epsilon, stepSize, inverseRootCorrection2 } = pass;
      for (let i = 0; i < count; i++) {
        const g = heap[gradient + i];
        const first = beta1 * heap[m + i] + (1 - beta1) * g;
        const second = beta2 * heap[v + i] + (1 - beta2) * g * g;
        heap[mOut + i] = first;
        heap[vOut + i] = second;
        heap[paramOut + i] = heap[param + i] -
          stepSize * first / (Math.sqrt(second) * inverseRootCorrection2 + epsilon);
      }
    },
    lerp: (a, b, out, count, weight) => {
      const heap = heapOf();
      for (let i = 0; i < count; i++) {
        heap[out + i] = heap[a + i] + weight * (heap[b + i] - heap[a + i]);
      }
    },
    biasActivation: (out, bias, stride, members, rows, cols, relu) => {
      const heap = heapOf();
      for (let m = 0; m < members; m++) {
        for (let r = 0; r < rows; r++) {
          const row = out + (m * rows + r) * cols;
          for (let j = 0; j < cols; j++) {
            const value = heap[row + j] + heap[bias + m * stride + j];
            heap[row + j] = relu ? Math.max(value, 0) : value;
          }
        }
      }
    },
    copyBlocks: (src, srcStride, dst, dstStride, rows, length) => {
      const heap = heapOf();
      for (let r = 0; r < rows; r++) {
        heap.copyWithin(dst + r * dstStride, src + r * srcStride, src + r * srcStride + length);
      }
    },
    im2col: (g, input, columns) => im2col(heapOf(), input, g, columns),
    im2colRows: (g, source, columns) => im2colRows(heapOf(), source, g, columns),
    col2imRows: (g, columns, out) => col2imRows(heapOf(), columns, g, out),
    maxPairs: (x, pairs, channels, out) => maxPairs(heapOf(), x, pairs, channels, out),
    maxPairsBackward: (x, dy, pairs, channels, accumulate, dx) =>
      maxPairsBackward(heapOf(), x, dy, pairs, channels, accumulate, dx),
    maximum: (a, strideA, b, strideB, out, count) => {
      const heap = heapOf();
      for (let i = 0; i < count; i++) {
        heap[out + i] = Math.max(heap[a + i * strideA], heap[b + i * strideB]);
      }
    },
    minimum: (a, strideA, b, strideB, out, count) => {
      const heap = heapOf();
      for (let i = 0; i < count; i++) {
        heap[out + i] = Math.min(heap[a + i * strideA], heap[b + i * strideB]);
      }
    },
    groupNormForward: (shape, o) => groupNormForwardScript(heapOf(), shape, o),
    groupNormBackward: (shape, o) => groupNormBackwardScript(heapOf(), shape, o),
  };
}

// The GroupNorm twins follow kernels.c loop for loop.

function groupNormForwardScript(
  heap: Float32Array,
  { batch, positions, channels, groupSize, epsilon, relu }: GroupNormShape,
  o: GroupNormForwardBuffers,
): void {
  const groups = channels / groupSize;
  const count = positions * groupSize;
  const [channelSum, channelMean, scale, shift] = [0, 1, 2, 3].map((i) => o.scratch + i * channels);
  for (let n = 0; n < batch; n++) {
    const xs = o.x + n * positions * channels;
    const ys = o.y + n * positions * channels;
    heap.fill(0, channelSum, channelSum + channels);
    for (let p = 0; p < positions; p++) {
      for (let c = 0; c < channels; c++) heap[channelSum + c] += heap[xs + p * channels + c];
    }
    for (let g = 0; g < groups; g++) {
      let sum = 0;
      for (let c = g * groupSize; c < (g + 1) * groupSize; c++) sum += heap[channelSum + c];
      heap[o.mean + n * groups + g] = sum / count;
      heap.fill(
        heap[o.mean + n * groups + g],
        channelMean + g * groupSize,
        channelMean + (g + 1) * groupSize,
      );
    }
    heap.fill(0, channelSum, channelSum + channels);
    for (let p = 0; p < positions; p++) {
      for (let c = 0; c < channels; c++) {
        const d = heap[xs + p * channels + c] - heap[channelMean + c];
        heap[channelSum + c] += d * d;
      }
    }
    for (let g = 0; g < groups; g++) {
      let sum = 0;
      for (let c = g * groupSize; c < (g + 1) * groupSize; c++) sum += heap[channelSum + c];
      const r = 1 / Math.sqrt(sum / count + epsilon);
      heap[o.inverseStd + n * groups + g] = r;
      for (let c = g * groupSize; c < (g + 1) * groupSize; c++) {
        heap[scale + c] = heap[o.gamma + c] * r;
        heap[shift + c] = heap[o.beta + c] - heap[channelMean + c] * heap[scale + c];
      }
    }
    for (let p = 0; p < positions; p++) {
      for (let c = 0; c < channels; c++) {
        const i = p * channels + c;
        const value = heap[xs + i] * heap[scale + c] + heap[shift + c];
        heap[ys + i] = relu ? Math.max(value, 0) : value;
      }
    }
  }
}

function groupNormBackwardScript(
  heap: Float32Array,
  { batch, positions, channels, groupSize, relu }: GroupNormShape,
  o: GroupNormBackwardBuffers,
): void {
  const groups = channels / groupSize;
  const count = positions * groupSize;
  const [mu, rs, sumDy, sumDyXHat, a, b] = [0, 1, 2, 3, 4, 5].map((i) => o.scratch + i * channels);
  heap.fill(0, o.dGamma, o.dGamma + channels);
  heap.fill(0, o.dBeta, o.dBeta + channels);
  for (let n = 0; n < batch; n++) {
    const dys = o.dy + n * positions * channels;
    const xs = o.x + n * positions * channels;
    const dxs = o.dx + n * positions * channels;
    const yvs = o.y + n * positions * channels;
    // dy through the ReLU's mask, read off the forward output.
    const gradientAt = (i: number) => relu && !(heap[yvs + i] > 0) ? 0 : heap[dys + i];
    for (let g = 0; g < groups; g++) {
      heap.fill(heap[o.mean + n * groups + g], mu + g * groupSize, mu + (g + 1) * groupSize);
      heap.fill(heap[o.inverseStd + n * groups + g], rs + g * groupSize, rs + (g + 1) * groupSize);
    }
    heap.fill(0, sumDy, sumDy + channels);
    heap.fill(0, sumDyXHat, sumDyXHat + channels);
    for (let p = 0; p < positions; p++) {
      for (let c = 0; c < channels; c++) {
        const gradient = gradientAt(p * channels + c);
        heap[sumDy + c] += gradient;
        heap[sumDyXHat + c] += gradient * (heap[xs + p * channels + c] - heap[mu + c]) *
          heap[rs + c];
      }
    }
    for (let g = 0; g < groups; g++) {
      let m1 = 0;
      let m2 = 0;
      for (let c = g * groupSize; c < (g + 1) * groupSize; c++) {
        m1 += Math.fround(heap[o.gamma + c] * heap[sumDy + c]);
        m2 += heap[o.gamma + c] * heap[sumDyXHat + c];
      }
      m1 /= count;
      m2 /= count;
      heap.fill(m1, a + g * groupSize, a + (g + 1) * groupSize);
      heap.fill(m2, b + g * groupSize, b + (g + 1) * groupSize);
    }
    for (let c = 0; c < channels; c++) {
      heap[o.dBeta + c] += heap[sumDy + c];
      heap[o.dGamma + c] += heap[sumDyXHat + c];
    }
    for (let p = 0; p < positions; p++) {
      for (let c = 0; c < channels; c++) {
        const i = p * channels + c;
        const xHat = (heap[xs + i] - heap[mu + c]) * heap[rs + c];
        // Rounded as float32 arithmetic rounds it, so equal values cancel exactly.
        const dxHat = Math.fround(gradientAt(i) * heap[o.gamma + c]);
        heap[dxs + i] = heap[rs + c] * (dxHat - heap[a + c] - xHat * heap[b + c]);
      }
    }
  }
}

const loopsByBackend = new WeakMap<object, { loops: HeapLoops; script: boolean }>();
let forceScript = false;

/** Uses the TypeScript twins even where SIMD would load (tests compare the two). */
export function preferScriptLoops(enabled: boolean): void {
  forceScript = enabled;
}

/** The loops for a wasm backend: SIMD on its memory where possible, else TypeScript. */
export function heapLoops(backend: WasmBackend): HeapLoops {
  const cached = loopsByBackend.get(backend);
  if (cached && cached.script === forceScript) return cached.loops;
  const module = (backend as unknown as { wasm: EmscriptenModule }).wasm;
  const memory = module.asm?.memory ?? module.wasmMemory;
  const loops = (!forceScript && memory ? simdLoops(memory) : undefined) ??
    scriptLoops(() => backend.wasm.HEAPF32);
  loopsByBackend.set(backend, { loops, script: forceScript });
  return loops;
}
