/**
 * The three kernel sets of the wasm backend, switchable inside one process:
 *
 * - `shipped`: TF.js's wasm kernels as released (the reference in tests and
 *   benchmarks);
 * - `wasm`: replacements for the shipped kernels that are slow at training
 *   sizes (transposed and batched products on a wasm SIMD gemm, tanh,
 *   minimum/maximum, reductions over the batch axis, slices and splits), in
 *   wasm and TypeScript, and whole-network MLP kernels;
 * - `blas`: the `wasm` set plus products and convolutions on native BLAS.
 *
 * Kernels are swapped in TF.js's kernel registry, which is process-wide;
 * gradients find the active kernels since they are looked up per call.
 *
 * @module
 */
import { tf } from "./tf.ts";
import type { BlasLibrary } from "./blas.ts";
import { blasHeapGemm, type HeapGemm, simdHeapGemm, wasmHeapGemm } from "./gemm.ts";
import { asWasmBackend } from "./heap.ts";
import {
  makeBatchMatMul,
  makeFusedMatMul,
  neverShipped,
  type PreferShipped,
  shippedWhenPlain,
} from "./kernels_matmul.ts";
import { makeConvKernels } from "./kernels_conv.ts";
import { makeElementwiseKernels } from "./kernels_elementwise.ts";
import { makeSliceKernels } from "./kernels_slice.ts";
import { makeFusedKernels, setInPlaceUpdates } from "./fused_ops.ts";
import { makeGroupNormKernels } from "./group_norm.ts";
import { makeMlpKernels } from "./kernels_mlp.ts";
import { makeUNetKernels } from "./kernels_unet.ts";

/** Which kernels the wasm backend runs. */
export type KernelSet = "shipped" | "wasm" | "blas";

const backendName = "wasm";

/** Kernel functions by kernel name; `undefined` means "not registered". */
type KernelTable = Map<string, tf.KernelFunc | undefined>;

interface Installed {
  shipped: KernelTable;
  wasm: KernelTable;
  blas: KernelTable | undefined;
  active: KernelSet;
}

let installed: Installed | undefined;

function shippedKernel(name: string): tf.KernelFunc | undefined {
  return tf.getKernel(name, backendName)?.kernelFunc;
}

/** A shipped kernel that must exist (the replacements defer to it). */
function requireShipped(name: string): tf.KernelFunc {
  const kernel = shippedKernel(name);
  if (!kernel) throw new Error(`compute: the wasm backend has no '${name}' kernel to extend`);
  return kernel;
}

/** What a set runs on its gemm beyond products. */
interface SetOptions {
  /** Forward convolutions on the gemm (else the shipped XNNPACK ones). */
  convolutionsOnGemm: boolean;
  /**
   * Whole-network MLP and U-Net kernels: only where the gemm reads the heap
   * in place; on the XNNPACK product every operand would be copied (and
   * repacked) per call, where the per-layer path keeps XNNPACK's packed
   * weights.
   */
  wholeNetworks: boolean;
}

function buildSet(gemm: HeapGemm, prefer: PreferShipped, options: SetOptions): KernelTable {
  const table: KernelTable = new Map();
  table.set("BatchMatMul", makeBatchMatMul(gemm, requireShipped("BatchMatMul"), prefer));
  table.set("_FusedMatMul", makeFusedMatMul(gemm, requireShipped("_FusedMatMul"), prefer));
  for (
    const [name, kernel] of makeConvKernels(gemm, shippedKernel, options.convolutionsOnGemm)
  ) {
    table.set(name, kernel);
  }
  for (const [name, kernel] of makeElementwiseKernels(requireShipped)) table.set(name, kernel);
  for (const [name, kernel] of makeSliceKernels(requireShipped)) table.set(name, kernel);
  for (const [name, kernel] of makeFusedKernels()) table.set(name, kernel);
  if (options.wholeNetworks) {
    for (const [name, kernel] of makeMlpKernels(gemm)) table.set(name, kernel);
    for (const [name, kernel] of makeUNetKernels(gemm)) table.set(name, kernel);
  }
  for (const [name, kernel] of makeGroupNormKernels()) table.set(name, kernel);
  return table;
}

/**
 * Captures the shipped kernels and builds the replacement sets; call once,
 * after the wasm backend is ready. Leaves the `shipped` set active.
 */
export function installKernelSets(blas: BlasLibrary | undefined): void {
  if (installed) return;
  // Without BLAS: the wasm SIMD gemm where it loads (XNNPACK still takes the
  // plain products it is fast at), else copies into XNNPACK's layout.
  const simdGemm = simdHeapGemm(asWasmBackend(tf.backend()));
  const pureGemm = simdGemm ?? wasmHeapGemm(requireShipped("BatchMatMul"));
  const wasm = buildSet(pureGemm, shippedWhenPlain, {
    convolutionsOnGemm: false,
    wholeNetworks: simdGemm !== undefined,
  });
  const blasSet = blas
    ? buildSet(blasHeapGemm(blas.sgemm), neverShipped, {
      convolutionsOnGemm: true,
      wholeNetworks: true,
    })
    : undefined;
  const shipped: KernelTable = new Map();
  for (const name of [...wasm.keys(), ...(blasSet?.keys() ?? [])]) {
    shipped.set(name, shippedKernel(name));
  }
  installed = { shipped, wasm, blas: blasSet, active: "shipped" };
}

/** The kernel set now active, or `undefined` before {@link installKernelSets}. */
export function activeKernelSet(): KernelSet | undefined {
  return installed?.active;
}

/** Whether the `blas` set exists (a BLAS library was found). */
export function hasBlasKernels(): boolean {
  return installed?.blas !== undefined;
}

/** Registers the kernels of `set` for the wasm backend, replacing the active ones. */
export function useKernelSet(set: KernelSet): void {
  if (!installed) {
    throw new Error("compute: kernel sets are not installed (call initCompute('wasm') first)");
  }
  const table = installed[set];
  if (!table) {
    throw new Error(
      "compute: kernel set 'blas' is unavailable: no BLAS library was found at start-up",
    );
  }
  for (const name of installed.shipped.keys()) {
    const kernelFunc = table.has(name) ? table.get(name) : installed.shipped.get(name);
    if (tf.getKernel(name, backendName)) tf.unregisterKernel(name, backendName);
    if (kernelFunc) tf.registerKernel({ kernelName: name, backendName, kernelFunc });
  }
  installed.active = set;
  setInPlaceUpdates(set === "blas");
}
