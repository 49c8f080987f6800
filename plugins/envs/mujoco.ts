/**
 * A small shared loader over `mujoco-js` (MuJoCo's official WebAssembly
 * build): the wasm module is loaded once per process, and a model written as
 * MJCF text becomes a {@link MujocoSimulation} with safe accessors for the
 * state and the controls.
 *
 * `data.qpos`, `data.qvel` and `data.ctrl` of mujoco-js are live views into
 * wasm memory, which go stale when that memory grows; the accessors here copy
 * values in or out through views they fetch again whenever the memory has
 * grown, so no caller ever holds a view.
 *
 * @module
 */
import loadMujocoFactory from "mujoco-js";
import type { MainModule, MjData, MjModel } from "mujoco-js";

/** The mujoco-js module (MuJoCo's C API bound to JavaScript). */
export type MujocoModule = MainModule;

/** The MuJoCo error text that the wasm module printed while it loaded the latest model. */
const printedErrors: string[] = [];

let modulePromise: Promise<MujocoModule> | undefined;

/** Loads the MuJoCo wasm module once per process; later calls share the same promise. */
export function loadMujoco(): Promise<MujocoModule> {
  if (modulePromise === undefined) {
    modulePromise = loadMujocoFactory({
      // MuJoCo reports XML errors on stderr rather than in the exception; keep them for the error.
      printErr: (text: string) => {
        printedErrors.push(text);
        if (printedErrors.length > 20) printedErrors.shift();
      },
    }).catch((error: unknown) => {
      modulePromise = undefined;
      throw new Error(`mujoco-js: the MuJoCo wasm module failed to load: ${describe(error)}`);
    });
  }
  return modulePromise;
}

/** Folder of the wasm virtual file system where model files are written. */
const modelFolder = "/pgd-bench-models";

/**
 * Loads a model from MJCF text (`name` labels errors and the virtual file).
 * The caller frees it with {@link MujocoSimulation.free}.
 */
export async function loadModel(name: string, xml: string): Promise<MujocoSimulation> {
  const mujoco = await loadMujoco();
  const fs = (mujoco as unknown as { FS: EmscriptenFs }).FS;
  if (!fs.analyzePath(modelFolder).exists) fs.mkdir(modelFolder);
  const path = `${modelFolder}/${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.xml`;
  fs.writeFile(path, xml);
  printedErrors.length = 0;
  let model: MjModel | null | undefined;
  try {
    model = mujoco.MjModel.loadFromXML(path);
  } catch (error) {
    throw new Error(
      `MuJoCo model "${name}" failed to load: ${printedOr(`${describe(error)} (MJCF rejected)`)}`,
    );
  } finally {
    fs.unlink(path);
  }
  if (!model) {
    throw new Error(`MuJoCo model "${name}" failed to load: ${printedOr("no model returned")}`);
  }
  return new MujocoSimulation(name, mujoco, model, new mujoco.MjData(model));
}

/** One MuJoCo model and its simulation state. */
export class MujocoSimulation {
  /** Name the model was loaded under. */
  readonly name: string;
  /** The mujoco-js module, for calls this class does not wrap. */
  readonly mujoco: MujocoModule;
  /** The compiled model (`mjModel`). */
  readonly model: MjModel;
  /** The simulation state (`mjData`). */
  readonly data: MjData;
  /** Number of position coordinates. */
  readonly nq: number;
  /** Number of degrees of freedom (velocity coordinates). */
  readonly nv: number;
  /** Number of actuators (controls). */
  readonly nu: number;
  /** Simulation timestep in seconds. */
  readonly timestep: number;
  #freed = false;
  #views: Partial<Record<"qpos" | "qvel" | "ctrl", Float64Array>> = {};

  /** Wraps a loaded model and its data; use {@link loadModel} rather than this. */
  constructor(name: string, mujoco: MujocoModule, model: MjModel, data: MjData) {
    this.name = name;
    this.mujoco = mujoco;
    this.model = model;
    this.data = data;
    this.nq = model.nq;
    this.nv = model.nv;
    this.nu = model.nu;
    this.timestep = model.opt.timestep;
  }

  /** Copies the positions `qpos` into `out` (a fresh array when absent). */
  readQpos(out: Float64Array = new Float64Array(this.nq)): Float64Array {
    out.set(this.#view("qpos", this.nq));
    return out;
  }

  /** Copies the velocities `qvel` into `out` (a fresh array when absent). */
  readQvel(out: Float64Array = new Float64Array(this.nv)): Float64Array {
    out.set(this.#view("qvel", this.nv));
    return out;
  }

  /** Copies the controls `ctrl` into `out` (a fresh array when absent). */
  readCtrl(out: Float64Array = new Float64Array(this.nu)): Float64Array {
    out.set(this.#view("ctrl", this.nu));
    return out;
  }

  /** Sets the positions `qpos` (exactly `nq` values). */
  writeQpos(values: ArrayLike<number>): void {
    this.#write("qpos", this.nq, values);
  }

  /** Sets the velocities `qvel` (exactly `nv` values). */
  writeQvel(values: ArrayLike<number>): void {
    this.#write("qvel", this.nv, values);
  }

  /** Sets the controls `ctrl` (exactly `nu` values). */
  writeCtrl(values: ArrayLike<number>): void {
    this.#write("ctrl", this.nu, values);
  }

  /** Simulation time in seconds. */
  get time(): number {
    this.#assertLive();
    return this.data.time;
  }

  /** Advances the simulation by `count` timesteps (`mj_step`). */
  step(count = 1): void {
    this.#assertLive();
    for (let i = 0; i < count; i++) this.mujoco.mj_step(this.model, this.data);
  }

  /** Recomputes derived quantities (positions of bodies, contacts) from the state (`mj_forward`). */
  forward(): void {
    this.#assertLive();
    this.mujoco.mj_forward(this.model, this.data);
  }

  /** Resets the state to the model's defaults (`mj_resetData`). */
  reset(): void {
    this.#assertLive();
    this.mujoco.mj_resetData(this.model, this.data);
  }

  /** Frees the model and data in wasm memory; the simulation is unusable afterwards. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.data.delete();
    this.model.delete();
  }

  #view(field: "qpos" | "qvel" | "ctrl", size: number): Float64Array {
    this.#assertLive();
    const cached = this.#views[field];
    // When wasm memory grows its old buffer is detached and every view on it reads as empty.
    if (cached !== undefined && cached.length === size && size > 0) return cached;
    const view = this.data[field] as Float64Array;
    this.#views[field] = view;
    if (view.length !== size) {
      throw new Error(
        `MuJoCo model "${this.name}": ${field} has ${view.length} values, not ${size}`,
      );
    }
    return view;
  }

  #write(field: "qpos" | "qvel" | "ctrl", size: number, values: ArrayLike<number>): void {
    if (values.length !== size) {
      throw new Error(
        `MuJoCo model "${this.name}": ${field} takes ${size} values, got ${values.length}`,
      );
    }
    const view = this.#view(field, size);
    for (let i = 0; i < size; i++) view[i] = values[i];
  }

  #assertLive(): void {
    if (this.#freed) throw new Error(`MuJoCo model "${this.name}" was used after free()`);
  }
}

/** The parts of Emscripten's file system used here. */
interface EmscriptenFs {
  analyzePath(path: string): { exists: boolean };
  mkdir(path: string): void;
  writeFile(path: string, data: string): void;
  unlink(path: string): void;
}

function printedOr(fallback: string): string {
  const printed = printedErrors.join(" ").trim();
  return printed.length > 0 ? printed : fallback;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
