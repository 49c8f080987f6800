/**
 * The system BLAS, found at start-up and called through Deno's FFI.
 *
 * Only `cblas_sgemm` is needed: every product TF.js asks for (matMul, fused
 * matMul, convolutions as im2col) is one or a few single-precision GEMMs.
 * The library runs one thread: parallelism comes from one worker process per
 * core, and on small training-sized products a second thread only costs.
 *
 * @module
 */

/** Which family a found library belongs to (decides how its threads are set). */
export type BlasVendor = "OpenBLAS" | "MKL" | "Accelerate" | "BLAS";

/**
 * A single-precision GEMM on row-major matrices:
 * `c = alpha * op(a) * op(b) + beta * c`, with `op(a)` of size m×k and
 * `op(b)` of size k×n. Arrays may be views into any memory (the wasm heap
 * included); leading dimensions are in elements.
 */
export type Sgemm = (
  transposeA: boolean,
  transposeB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

/** A loaded BLAS library. */
export interface BlasLibrary {
  /** The library family. */
  vendor: BlasVendor;
  /** The file that was opened. */
  path: string;
  /** Row-major single-precision GEMM. */
  sgemm: Sgemm;
  /** Unloads the library; its `sgemm` must not be called afterwards. */
  close(): void;
}

/** Where to look for a BLAS library, and whether to at all. */
export interface BlasSearchOptions {
  /** An explicit library file; when given, no other place is tried. */
  libraryPath?: string;
  /** Candidate files tried in order when `libraryPath` is not given. */
  candidates?: readonly string[];
}

/** The files tried, in order, when no explicit library is named. */
export const defaultBlasCandidates: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "libopenblas.so.0",
  "libopenblas.so",
  "libmkl_rt.so.2",
  "libmkl_rt.so",
  "/opt/intel/oneapi/mkl/latest/lib/intel64/libmkl_rt.so",
  "/opt/intel/oneapi/mkl/latest/lib/libmkl_rt.so.2",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
  "/System/Library/Frameworks/Accelerate.framework/Accelerate",
];

// CBLAS enum values (cblas.h): row-major layout, no-transpose, transpose.
const cblasRowMajor = 101;
const cblasNoTrans = 111;
const cblasTrans = 112;

const sgemmSymbol = {
  cblas_sgemm: {
    parameters: [
      "i32", // layout
      "i32", // transA
      "i32", // transB
      "i32", // m
      "i32", // n
      "i32", // k
      "f32", // alpha
      "buffer", // a
      "i32", // lda
      "buffer", // b
      "i32", // ldb
      "f32", // beta
      "buffer", // c
      "i32", // ldc
    ],
    result: "void",
  },
} as const;

function vendorOf(path: string): BlasVendor {
  const lower = path.toLowerCase();
  if (lower.includes("openblas")) return "OpenBLAS";
  if (lower.includes("mkl")) return "MKL";
  if (lower.includes("accelerate")) return "Accelerate";
  return "BLAS";
}

// Thread counts are fixed through the environment before the library loads
// (all three read it at initialisation), then again through the library's
// own call where it has one, in case it was already loaded by someone else.
// The environment is written only when it does not already say 1: setenv is
// not thread-safe, and a process running several isolates at once (the test
// runner's parallel modules) would otherwise rewrite it from many threads,
// which corrupts the C heap. The test task sets the variables up front.
function limitThreadsBeforeLoad(): void {
  for (const name of ["OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"]) {
    try {
      if (Deno.env.get(name) !== "1") Deno.env.set(name, "1");
    } catch {
      // without --allow-env the library keeps its default; the call below still applies
    }
  }
}

function limitThreadsAfterLoad(path: string, vendor: BlasVendor): void {
  const setter = vendor === "OpenBLAS"
    ? "openblas_set_num_threads"
    : vendor === "MKL"
    ? "MKL_Set_Num_Threads"
    : undefined;
  if (!setter) return;
  try {
    const lib = Deno.dlopen(
      path,
      {
        [setter]: { parameters: ["i32"], result: "void" },
      } as const,
    );
    (lib.symbols as Record<string, (threads: number) => void>)[setter](1);
    // Keeping this handle open is harmless; closing it only drops a reference.
    lib.close();
  } catch {
    // a library without the symbol keeps the environment's setting
  }
}

function tryOpen(path: string): BlasLibrary | undefined {
  let lib: Deno.DynamicLibrary<typeof sgemmSymbol>;
  try {
    lib = Deno.dlopen(path, sgemmSymbol);
  } catch {
    return undefined;
  }
  const vendor = vendorOf(path);
  limitThreadsAfterLoad(path, vendor);
  const call = lib.symbols.cblas_sgemm;
  const sgemm: Sgemm = (transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) => {
    if (m === 0 || n === 0) return;
    call(
      cblasRowMajor,
      transposeA ? cblasTrans : cblasNoTrans,
      transposeB ? cblasTrans : cblasNoTrans,
      m,
      n,
      k,
      alpha,
      a as Float32Array<ArrayBuffer>,
      lda,
      b as Float32Array<ArrayBuffer>,
      ldb,
      beta,
      c as Float32Array<ArrayBuffer>,
      ldc,
    );
  };
  return { vendor, path, sgemm, close: () => lib.close() };
}

/**
 * Looks for a BLAS library exporting `cblas_sgemm` and opens the first one
 * found, limited to one thread. Returns `undefined` when none opens (or when
 * FFI is not permitted). An explicit `libraryPath` that fails to open is an
 * error, since the user asked for it by name.
 */
export function findBlas(options: BlasSearchOptions = {}): BlasLibrary | undefined {
  limitThreadsBeforeLoad();
  if (options.libraryPath) {
    const lib = tryOpen(options.libraryPath);
    if (!lib) {
      throw new Error(
        `compute: PGD_BLAS_LIB '${options.libraryPath}' could not be opened as a BLAS library ` +
          "(expected a shared library exporting cblas_sgemm; FFI needs --allow-ffi)",
      );
    }
    return lib;
  }
  for (const candidate of options.candidates ?? defaultBlasCandidates) {
    const lib = tryOpen(candidate);
    if (lib) return lib;
  }
  return undefined;
}
