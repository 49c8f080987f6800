/**
 * The compute backend, chosen once per process. No other module names a
 * backend: they import TF.js from here.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { fileURLToPath } from "node:url";
import { z } from "zod";

export { tf };

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
}

let active: ComputeInfo | undefined;

/** The compute set up by {@link initCompute}, if any. */
export function computeInfo(): ComputeInfo | undefined {
  return active;
}

function wasmDistFolder(): string {
  const entry = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
  const path = entry.startsWith("file:") ? fileURLToPath(entry) : entry;
  return path.slice(0, path.lastIndexOf("/dist/") + "/dist/".length);
}

/**
 * Selects and starts a backend. Call once, before any tensor op; later calls
 * with the same backend return the same info.
 */
export async function initCompute(backend: BackendName = "wasm"): Promise<ComputeInfo> {
  if (active) {
    if (active.backend !== backend) {
      throw new Error(
        `compute: backend '${active.backend}' is already in use in this process; cannot switch to '${backend}'`,
      );
    }
    return active;
  }
  let path = backend as string;
  if (backend === "wasm") {
    setWasmPaths(wasmDistFolder());
    await tf.setBackend("wasm");
    path = "wasm (SIMD)";
  } else if (backend === "cpu") {
    await tf.setBackend("cpu");
  } else if (backend === "webgpu") {
    if (!("gpu" in navigator)) {
      throw new Error("compute: backend 'webgpu' needs navigator.gpu, which this runtime lacks");
    }
    await import("@tensorflow/tfjs-backend-webgpu");
    if (!(await tf.setBackend("webgpu"))) {
      throw new Error("compute: backend 'webgpu' failed to start (no WebGPU adapter found)");
    }
  } else {
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
    path = `tensorflow (${loaded})`;
  }
  await tf.ready();
  active = { backend, path };
  return active;
}
