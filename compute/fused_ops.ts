/**
 * Optimiser arithmetic as single kernels: one Adam step over a flat
 * parameter vector, and a linear interpolation (Polyak averaging of target
 * networks). Composed of TF.js ops, each would be a dozen passes over every
 * parameter, each with its own dispatch; on the wasm backend they run as one
 * pass over the heap. Other backends get the same arithmetic as TF.js ops.
 *
 * @module
 */
import { tf } from "./tf.ts";
import { asWasmBackend, floatOffset, sizeOf, type WasmBackend } from "./heap.ts";
import { heapLoops } from "./simd.ts";

type TensorInfo = tf.TensorInfo;

/** Kernel name of the fused Adam step. */
export const adamKernelName = "PgdAdamStep";
/** Kernel name of the fused interpolation. */
export const lerpKernelName = "PgdLerp";

/** Hyperparameters of one {@link adamStep} (PyTorch's semantics). */
export interface AdamStepOptions {
  /** Step size. */
  learningRate: number;
  /** First-moment decay (PyTorch's default 0.9). */
  beta1: number;
  /** Second-moment decay (PyTorch's default 0.999). */
  beta2: number;
  /** Added to the corrected `√v̂` (PyTorch's default 1e-8). */
  epsilon: number;
  /** The step number, from 1 (for the bias corrections). */
  step: number;
}

/** The tensors one Adam step produces. */
export interface AdamStepResult {
  /** Updated parameters. */
  param: tf.Tensor;
  /** Updated first moment. */
  m: tf.Tensor;
  /** Updated second moment. */
  v: tf.Tensor;
}

interface AdamAttrs {
  beta1: number;
  beta2: number;
  epsilon: number;
  stepSize: number;
  inverseRootCorrection2: number;
}

function adamAttrs(options: AdamStepOptions): AdamAttrs {
  const { learningRate, beta1, beta2, epsilon, step } = options;
  if (!(step >= 1) || !Number.isInteger(step)) {
    throw new Error(`adamStep: 'step' must be an integer ≥ 1, got ${step}`);
  }
  return {
    beta1,
    beta2,
    epsilon,
    stepSize: learningRate / (1 - beta1 ** step),
    inverseRootCorrection2: 1 / Math.sqrt(1 - beta2 ** step),
  };
}

const wasmAdam: tf.KernelFunc = (args) => {
  const { param, grad, m, v } = args.inputs as Record<string, TensorInfo>;
  const { beta1, beta2, epsilon, stepSize, inverseRootCorrection2 } = args
    .attrs as unknown as AdamAttrs;
  const backend = asWasmBackend(args.backend);
  const shape = [...param.shape];
  const outParam = backend.makeOutput(shape, "float32");
  const outM = backend.makeOutput(shape, "float32");
  const outV = backend.makeOutput(shape, "float32");
  heapLoops(backend).adam(
    floatOffset(backend, param),
    floatOffset(backend, grad),
    floatOffset(backend, m),
    floatOffset(backend, v),
    floatOffset(backend, outParam),
    floatOffset(backend, outM),
    floatOffset(backend, outV),
    sizeOf(shape),
    { beta1, beta2, epsilon, stepSize, inverseRootCorrection2 },
  );
  return [outParam, outM, outV];
};

const wasmLerp: tf.KernelFunc = (args) => {
  const { a, b } = args.inputs as Record<string, TensorInfo>;
  const { weight } = args.attrs as unknown as { weight: number };
  const backend = asWasmBackend(args.backend);
  const out = backend.makeOutput([...a.shape], "float32");
  heapLoops(backend).lerp(
    floatOffset(backend, a),
    floatOffset(backend, b),
    floatOffset(backend, out),
    sizeOf(a.shape),
    weight,
  );
  return out;
};

/** The fused kernels for the wasm backend, by kernel name (they replace nothing shipped). */
export function makeFusedKernels(): Map<string, tf.KernelFunc> {
  return new Map([[adamKernelName, wasmAdam], [lerpKernelName, wasmLerp]]);
}

function checkSameShape(where: string, tensors: Record<string, tf.Tensor>): void {
  const [first, ...rest] = Object.entries(tensors);
  for (const [name, tensor] of rest) {
    if (!tf.util.arraysEqual(tensor.shape, first[1].shape) || tensor.dtype !== "float32") {
      throw new Error(
        `${where}: '${name}' has shape [${tensor.shape}] (${tensor.dtype}), expected float32 [${
          first[1].shape
        }] like '${first[0]}'`,
      );
    }
  }
}

function usesFusedKernel(kernelName: string): boolean {
  return tf.getBackend() === "wasm" && tf.getKernel(kernelName, "wasm") !== undefined;
}

/**
 * One Adam step, `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
 * `θ ← θ − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`, on same-shaped tensors
 * (typically whole parameter lists flattened into one vector). Returns new
 * tensors; the inputs are left as they are.
 */
export function adamStep(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  options: AdamStepOptions,
): AdamStepResult {
  checkSameShape("adamStep", { param, grad, m, v });
  const attrs = adamAttrs(options);
  if (usesFusedKernel(adamKernelName)) {
    const [p, m1, v1] = tf.engine().runKernel(
      adamKernelName,
      { param, grad, m, v },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    return { param: p, m: m1, v: v1 };
  }
  return tf.tidy(() => {
    const m1 = tf.add(tf.mul(m, attrs.beta1), tf.mul(grad, 1 - attrs.beta1));
    const v1 = tf.add(tf.mul(v, attrs.beta2), tf.mul(tf.square(grad), 1 - attrs.beta2));
    const denominator = tf.add(tf.mul(tf.sqrt(v1), attrs.inverseRootCorrection2), attrs.epsilon);
    const p = tf.sub(param, tf.mul(tf.div(m1, denominator), attrs.stepSize));
    return { param: p, m: m1, v: v1 };
  });
}

/** `a + weight·(b − a)` on same-shaped float tensors (Polyak averaging with `weight` = τ). */
export function lerp(a: tf.Tensor, b: tf.Tensor, weight: number): tf.Tensor {
  checkSameShape("lerp", { a, b });
  if (usesFusedKernel(lerpKernelName)) {
    return tf.engine().runKernel(lerpKernelName, { a, b }, { weight }) as tf.Tensor;
  }
  return tf.tidy(() => tf.add(a, tf.mul(tf.sub(b, a), weight)));
}

/** Options of {@link FusedAdam} (PyTorch's defaults). */
export interface FusedAdamOptions {
  /** Default step size. */
  learningRate: number;
  /** First-moment decay; default 0.9. */
  beta1?: number;
  /** Second-moment decay; default 0.999. */
  beta2?: number;
  /** Added to the corrected `√v̂`; default 1e-8. */
  epsilon?: number;
}

interface HeapBackend {
  refCount(dataId: object): number;
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  wasm: { HEAPF32: Float32Array };
}

let inPlaceUpdates = false;

/**
 * Allows or forbids updating variables in place on the heap. Only safe where
 * no active kernel caches anything by tensor id: the shipped XNNPACK products
 * and convolutions keep weights packed per tensor id, so a weight changed in
 * place would be read stale. The kernel sets turn this on for the `blas` set
 * only, whose products and convolutions read the heap afresh on every call.
 */
export function setInPlaceUpdates(enabled: boolean): void {
  inPlaceUpdates = enabled;
}

/** The wasm backend, when in-place updates are allowed on it. */
function activeWasmBackend(): HeapBackend | undefined {
  if (!inPlaceUpdates || tf.getBackend() !== "wasm") return undefined;
  return tf.backend() as unknown as HeapBackend;
}

/**
 * Gives `variable` data of its own, so that writing it in place cannot change
 * another tensor that shares its buffer (TF.js shares buffers between a
 * variable and the tensor it was made from or last assigned).
 */
function ownData(backend: HeapBackend, variable: tf.Variable): void {
  if (backend.refCount(variable.dataId) > 1) {
    tf.tidy(() => variable.assign(tf.mul(variable, 1)));
  }
}

function offsetOf(backend: HeapBackend, tensor: tf.Tensor): number {
  return backend.dataIdMap.get(tensor.dataId).memoryOffset >>> 2;
}

/**
 * Adam over a fixed list of variables. With native BLAS kernels active the
 * variables are updated in place, one pass over the heap per step with no
 * new tensors; elsewhere {@link adamStep} per variable and `assign` (itself
 * one kernel on the wasm backend). Same arithmetic either way.
 */
export class FusedAdam {
  /** The variables updated, in order. */
  readonly variables: readonly tf.Variable[];
  /** Default step size. */
  learningRate: number;
  readonly #beta1: number;
  readonly #beta2: number;
  readonly #epsilon: number;
  readonly #m: tf.Tensor[];
  readonly #v: tf.Tensor[];
  #step = 0;

  /** Makes an optimiser for `variables`, with zero moments. */
  constructor(variables: readonly tf.Variable[], options: FusedAdamOptions) {
    const { learningRate, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 } = options;
    if (variables.length === 0) throw new Error("FusedAdam: no variables to optimise");
    if (
      !(learningRate >= 0) || !(epsilon >= 0) || !(beta1 >= 0 && beta1 < 1) ||
      !(beta2 >= 0 && beta2 < 1)
    ) {
      throw new Error(
        `FusedAdam: expected learningRate ≥ 0, epsilon ≥ 0 and betas in [0, 1); got ${
          JSON.stringify({ learningRate, beta1, beta2, epsilon })
        }`,
      );
    }
    for (const variable of variables) {
      if (variable.dtype !== "float32") {
        throw new Error(
          `FusedAdam: variable '${variable.name}' is ${variable.dtype}, expected float32`,
        );
      }
    }
    this.variables = [...variables];
    this.learningRate = learningRate;
    this.#beta1 = beta1;
    this.#beta2 = beta2;
    this.#epsilon = epsilon;
    this.#m = variables.map((variable) => tf.zeros(variable.shape));
    this.#v = variables.map((variable) => tf.zeros(variable.shape));
  }

  /** Steps taken so far. */
  get iterations(): number {
    return this.#step;
  }

  /**
   * One step from gradients in the order of {@link variables}, or keyed by
   * variable name as `tf.variableGrads` gives them. Gradients are not disposed.
   */
  step(
    gradients: readonly tf.Tensor[] | tf.NamedTensorMap,
    learningRate = this.learningRate,
  ): void {
    const list = this.variables.map((variable, i) => {
      const gradient = Array.isArray(gradients)
        ? (gradients as readonly tf.Tensor[])[i]
        : (gradients as tf.NamedTensorMap)[variable.name];
      if (!gradient || !tf.util.arraysEqual(gradient.shape, variable.shape)) {
        throw new Error(
          `FusedAdam: gradient ${i} for '${variable.name}' has shape [${
            gradient?.shape ?? "missing"
          }], expected [${variable.shape}]`,
        );
      }
      return gradient;
    });
    this.#step += 1;
    const options = {
      learningRate,
      beta1: this.#beta1,
      beta2: this.#beta2,
      epsilon: this.#epsilon,
      step: this.#step,
    };
    const backend = activeWasmBackend();
    if (!backend) {
      this.variables.forEach((variable, i) => {
        const next = adamStep(variable, list[i], this.#m[i], this.#v[i], options);
        variable.assign(next.param);
        next.param.dispose();
        this.#m[i].dispose();
        this.#v[i].dispose();
        // Kept: a step may run inside the caller's tf.tidy.
        this.#m[i] = tf.keep(next.m);
        this.#v[i] = tf.keep(next.v);
      });
      return;
    }
    const attrs = adamAttrs(options);
    const loops = heapLoops(backend as unknown as WasmBackend);
    this.variables.forEach((variable, i) => {
      ownData(backend, variable);
      const p = offsetOf(backend, variable);
      const g = offsetOf(backend, list[i]);
      const m = offsetOf(backend, this.#m[i]);
      const v = offsetOf(backend, this.#v[i]);
      loops.adam(p, g, m, v, p, m, v, variable.size, attrs);
    });
  }

  /** Frees the moment buffers (not the variables). */
  dispose(): void {
    tf.dispose([...this.#m, ...this.#v]);
  }
}

/**
 * Polyak averaging, `target ← target + weight·(source − target)`, over two
 * same-shaped variable lists: in place on the heap with native BLAS kernels
 * active (see {@link FusedAdam}); elsewhere {@link lerp} and `assign`.
 */
export function lerpInPlace(
  targets: readonly tf.Variable[],
  sources: readonly tf.Tensor[],
  weight: number,
): void {
  if (targets.length !== sources.length) {
    throw new Error(`lerpInPlace: ${targets.length} targets against ${sources.length} sources`);
  }
  targets.forEach((target, i) => checkSameShape("lerpInPlace", { target, source: sources[i] }));
  const backend = activeWasmBackend();
  if (!backend) {
    targets.forEach((target, i) => tf.tidy(() => target.assign(lerp(target, sources[i], weight))));
    return;
  }
  const loops = heapLoops(backend as unknown as WasmBackend);
  targets.forEach((target, i) => {
    ownData(backend, target);
    const t = offsetOf(backend, target);
    loops.lerp(t, offsetOf(backend, sources[i]), t, target.size, weight);
  });
}
