/**
 * The compute backend, chosen once per process. No other module names a
 * backend: they import TF.js from here.
 *
 * On the `wasm` backend the kernels that dominate training (products and
 * convolutions, slices, comparisons, tanh, reductions over the batch axis)
 * are replaced by faster ones: products on the system BLAS through Deno's
 * FFI where a library is found (OpenBLAS, MKL, Accelerate), in wasm and
 * TypeScript otherwise (see compute/). Fused optimiser and normalisation ops
 * (`FusedAdam`, `lerpInPlace`, `groupNorm`, …) run as single kernels there,
 * and as plain TF.js ops on every other backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { type BlasVendor, findBlas } from "../compute/blas.ts";
import { asWasmBackend } from "../compute/heap.ts";
import { heapLoops } from "../compute/simd.ts";
import {
  activeKernelSet,
  hasBlasKernels,
  installKernelSets,
  type KernelSet,
  useKernelSet,
} from "../compute/kernel_sets.ts";

export { tf };
export type { KernelSet };
export {
  adamStep,
  type AdamStepOptions,
  type AdamStepResult,
  FusedAdam,
  type FusedAdamOptions,
  lerp,
  lerpInPlace,
} from "../compute/fused_ops.ts";
export { groupNorm } from "../compute/group_norm.ts";
export {
  fusedUNet,
  fusedUNetAvailable,
  fusedUNetBackward,
  fusedUNetForward,
  type UNetKernelShape,
  unetKernelsVersion,
} from "../compute/fused_unet.ts";
export {
  fusedMlp,
  fusedMlpAvailable,
  fusedMlpBackward,
  fusedMlpForward,
  type FusedMlpGradients,
} from "../compute/fused_mlp.ts";

/** The compute backends a user may choose. */
export const backendNames = ["wasm", "cpu", "webgpu", "tensorflow"] as const;

/** One of {@link backendNames}. */
export type BackendName = (typeof backendNames)[number];

/** Zod schema of a backend name. */
export const backendSchema = z.enum(backendNames);

/** What {@link initCompute} set up. */
export interface ComputeInfo {
  /** The backend in use. */
  backend: BackendName;
  /** A one-line description of the path (e.g. which BLAS library, if any). */
  path: string;
  /** The native BLAS library in use (wasm backend only). */
  blas?: { vendor: BlasVendor; path: string };
  /** Whether the WebAssembly SIMD loops run on the heap (wasm backend only). */
  simd?: boolean;
  /** A one-line suggestion to make this path faster, if there is one. */
  hint?: string;
}

/** How {@link initCompute} treats the native BLAS on the wasm backend. */
export interface ComputeOptions {
  /**
   * `false` keeps the pure-wasm path even where a BLAS library exists.
   * Default: on, unless the environment sets `PGD_BLAS=off`.
   */
  blas?: boolean;
  /** An explicit BLAS library file. Default: the environment's `PGD_BLAS_LIB`, else a search. */
  blasLibrary?: string;
}

/** The one-line suggestion shown when no BLAS library is found. */
export const blasInstallHint =
  "install a system BLAS for runs about 3x faster (measured end to end on 2 cores): " +
  "apt install libopenblas0 (Debian/Ubuntu), Intel MKL (libmkl_rt), or macOS (Accelerate)";

/** The one-line suggestion shown when FFI is not permitted. */
export const ffiPermissionHint =
  "the system BLAS needs FFI: run with --allow-ffi (or --allow-all) for about 3x faster runs";

let active: ComputeInfo | undefined;

/** The compute set up by {@link initCompute}, if any. */
export function computeInfo(): ComputeInfo | undefined {
  return active;
}

/**
 * The hint a CLI prints once at start-up (e.g. how to get the BLAS path), or
 * `undefined` when the fastest path available is already in use.
 */
export function computeHint(): string | undefined {
  return active?.hint;
}

function wasmDistFolder(): string {
  const entry = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
  const path = entry.startsWith("file:") ? fileURLToPath(entry) : entry;
  return path.slice(0, path.lastIndexOf("/dist/") + "/dist/".length);
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Whether FFI is permitted: in whole, or (in a worker) for the library the
 * scheduler named in `PGD_BLAS_LIB`.
 */
function ffiPermitted(): boolean {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") return true;
    const library = readEnv("PGD_BLAS_LIB");
    return library !== undefined &&
      Deno.permissions.querySync({ name: "ffi", path: library }).state === "granted";
  } catch {
    return false;
  }
}

function blasWanted(options: ComputeOptions): boolean {
  if (options.blas !== undefined) return options.blas;
  const setting = readEnv("PGD_BLAS")?.trim().toLowerCase();
  return !(setting === "off" || setting === "0" || setting === "false" || setting === "no");
}

async function startWasm(options: ComputeOptions): Promise<ComputeInfo> {
  setWasmPaths(wasmDistFolder());
  await tf.setBackend("wasm");
  await tf.ready();
  const info = startWasmKernels(options);
  const simd = heapLoops(asWasmBackend(tf.backend())).simd;
  // Said only when missing: every runtime Deno supports has wasm SIMD.
  return {
    ...info,
    simd,
    path: simd ? info.path : `${info.path}; no wasm SIMD, scalar loops`,
  };
}

function startWasmKernels(options: ComputeOptions): ComputeInfo {
  if (!blasWanted(options)) {
    installKernelSets(undefined);
    useKernelSet("wasm");
    return { backend: "wasm", path: "wasm (native BLAS turned off)" };
  }
  if (!ffiPermitted()) {
    installKernelSets(undefined);
    useKernelSet("wasm");
    return {
      backend: "wasm",
      path: "wasm (native BLAS needs --allow-ffi)",
      hint: ffiPermissionHint,
    };
  }
  const blas = findBlas({ libraryPath: options.blasLibrary ?? readEnv("PGD_BLAS_LIB") });
  installKernelSets(blas);
  if (!blas) {
    useKernelSet("wasm");
    return {
      backend: "wasm",
      path: "wasm (no BLAS library found)",
      hint: blasInstallHint,
    };
  }
  useKernelSet("blas");
  return {
    backend: "wasm",
    path: `wasm + ${blas.vendor} (${blas.path})`,
    blas: { vendor: blas.vendor, path: blas.path },
  };
}

/**
 * The file of the BLAS library this process would use on the wasm backend
 * (`PGD_BLAS_LIB`, else the first candidate that opens), or `undefined` when
 * the native BLAS is turned off, not permitted or not found. A worker
 * process may open this one file through FFI and no other; a library found
 * by its bare name (through the loader's search path) is named by the file
 * the loader mapped, where the system shows it.
 */
export function locateBlas(): string | undefined {
  if (!blasWanted({}) || !ffiPermitted()) return undefined;
  let blas;
  try {
    blas = findBlas({ libraryPath: readEnv("PGD_BLAS_LIB") });
  } catch {
    // An explicit library that does not open: the worker says so itself.
    return readEnv("PGD_BLAS_LIB");
  }
  if (!blas) return undefined;
  let path = blas.path;
  if (!path.startsWith("/")) path = mappedFile(path) ?? path;
  blas.close();
  return path;
}

/** The file a loaded library `name` was mapped from (Linux's `/proc/self/maps`). */
function mappedFile(name: string): string | undefined {
  try {
    const stem = name.replace(/\.so.*$/, ".so");
    return Deno.readTextFileSync("/proc/self/maps").split("\n")
      .map((line) => line.slice(line.indexOf("/")))
      .find((file) => file.includes("/") && file.split("/").pop()!.startsWith(stem));
  } catch {
    return undefined;
  }
}

async function startWebGpu(): Promise<string> {
  if (!("gpu" in navigator) || !navigator.gpu) {
    throw new Error("compute: backend 'webgpu' needs navigator.gpu, which this runtime lacks");
  }
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) {
    throw new Error("compute: backend 'webgpu' failed to start (no WebGPU adapter found)");
  }
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) {
    throw new Error("compute: backend 'webgpu' failed to start (TF.js could not use the adapter)");
  }
  const description = adapter.info?.description || adapter.info?.vendor || "unknown adapter";
  const software = adapter.info?.isFallbackAdapter ? ", software" : "";
  return `webgpu (${description}${software})`;
}

async function startTensorflow(): Promise<string> {
  const names = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];
  let loaded = "";
  for (const name of names) {
    try {
      await import(`npm:${name}@4.22.0`);
      loaded = name;
      break;
    } catch {
      // try the next package
    }
  }
  if (!loaded || !(await tf.setBackend("tensorflow"))) {
    throw new Error(
      "compute: backend 'tensorflow' needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu 4.22.0; " +
        "install one where libtensorflow can be downloaded (npm install @tensorflow/tfjs-node), " +
        "or choose --backend wasm",
    );
  }
  return `tensorflow (${loaded})`;
}

/**
 * Selects and starts a backend. Call once, before any tensor op; later calls
 * with the same backend return the same info. On `wasm`, finds the system
 * BLAS (see {@link ComputeOptions}; `PGD_BLAS=off` and `PGD_BLAS_LIB=/path`
 * in the environment) and installs the faster kernels.
 */
export async function initCompute(
  backend: BackendName = "wasm",
  options: ComputeOptions = {},
): Promise<ComputeInfo> {
  if (active) {
    if (active.backend !== backend) {
      throw new Error(
        `compute: backend '${active.backend}' is already in use in this process; cannot switch to '${backend}'`,
      );
    }
    return active;
  }
  const parsed = backendSchema.safeParse(backend);
  if (!parsed.success) {
    throw new Error(
      `compute: unknown backend '${String(backend)}'; expected one of ${backendNames.join(", ")}`,
    );
  }
  let info: ComputeInfo;
  if (backend === "wasm") {
    info = await startWasm(options);
  } else if (backend === "cpu") {
    await tf.setBackend("cpu");
    info = { backend, path: "cpu (TF.js reference kernels, slow)" };
  } else if (backend === "webgpu") {
    info = { backend, path: await startWebGpu() };
  } else {
    info = { backend, path: await startTensorflow() };
  }
  await tf.ready();
  active = info;
  return active;
}

/**
 * The compute in use, started on `backend` (default `wasm`, with the
 * environment's BLAS settings) if nothing has started one yet. Library code
 * that trains or builds networks calls this before its first tensor op, so it
 * works whether or not the program that called it set compute up first.
 */
export async function ensureCompute(backend: BackendName = "wasm"): Promise<ComputeInfo> {
  return active ?? await initCompute(backend);
}

/**
 * Switches the wasm backend's kernels inside this process: `blas` (native
 * products, where a library was found), `wasm` (pure-wasm replacements) or
 * `shipped` (TF.js as released). For benchmarks and tests that compare paths.
 */
export function setKernelSet(set: KernelSet): void {
  if (active?.backend !== "wasm") {
    throw new Error(
      "compute: kernel sets exist on the wasm backend only (initCompute('wasm') first)",
    );
  }
  useKernelSet(set);
}

/**
 * What of the compute path changes a trained artefact's bytes: the backend
 * and, on wasm, the kernel set (`wasm/blas` and `wasm/wasm` round
 * differently). Cache keys include it; library paths and hosts do not.
 */
export function computeKey(): string {
  if (!active) return "none";
  return active.backend === "wasm" ? `wasm/${activeKernelSet()}` : active.backend;
}

/** The wasm kernel set in use, or `undefined` on other backends. */
export function kernelSet(): KernelSet | undefined {
  return active?.backend === "wasm" ? activeKernelSet() : undefined;
}

/** Whether native-BLAS kernels are available in this process. */
export function nativeKernelsAvailable(): boolean {
  return active?.backend === "wasm" && hasBlasKernels();
}

/**
 * The kernel sets that run the fused networks in this process, fastest
 * first: `blas` where a BLAS library was found, then `wasm`. Benchmarks and
 * tests compare paths over this list.
 */
export function fusedKernelSets(): KernelSet[] {
  return nativeKernelsAvailable() ? ["blas", "wasm"] : ["wasm"];
}
