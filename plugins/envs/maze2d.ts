/**
 * Maze2d (D4RL's point maze, v1 datasets, sparse reward): a point mass on two
 * slide joints pushed through a maze of box walls, simulated with MuJoCo.
 *
 * Semantics follow D4RL's `MazeEnv`: actions clipped to ±1 and velocities to
 * ±5 before each 0.01 s Euler step; observation (x, y, vx, vy); reward 1 when
 * the position is within 0.5 of the target; no termination. The ball's body
 * sits at world (1.2, 1.2) while the wall of cell (row r, column c) is centred
 * at world (r + 1, c + 1), so in observation coordinates walls sit 0.2 below
 * their cell index; D4RL's data carry this offset and so does this model.
 *
 * @module
 */
import { z } from "zod";
import { Rng } from "../../core/rng.ts";
import type {
  CollectRequest,
  Environment,
  EnvironmentPlugin,
  EnvironmentSpec,
  PlanView,
  StepResult,
} from "../../core/contracts/environment.ts";
import { neverTerminal } from "../../core/contracts/environment.ts";
import type { PresetName } from "../../core/contracts/common.ts";
import type { D4rlDataset } from "../../core/types.ts";
import { loadModel, type MujocoSimulation } from "./mujoco.ts";
import { type Cell, collectWithController, goalRadius } from "./maze2d_controller.ts";

/** One Maze2d dataset's environment: layout, limits, references and dataset sizes. */
export interface Maze2dVariant {
  /** Dataset id, e.g. `maze2d-umaze`. */
  id: string;
  /** D4RL's environment id, e.g. `maze2d-umaze-v1`. */
  d4rlId: string;
  /** Rows top to bottom: `#` wall, `O` empty, `G` goal; row index is the first coordinate. */
  layout: readonly string[];
  /** Steps per evaluation episode. */
  maxEpisodeSteps: number;
  /** D4RL normalised-score references. */
  scoreReference: { min: number; max: number };
  /** The target is redrawn near a random cell at every reset (D4RL's `reset_target`). */
  resetTarget: boolean;
  /** Steps of a collected dataset per preset (`paper`: D4RL's size). */
  collectSize: Record<PresetName, number>;
}

/** The three Maze2d datasets of D4RL, by dataset id. */
export const maze2dVariants: Readonly<Record<string, Maze2dVariant>> = {
  "maze2d-umaze": {
    id: "maze2d-umaze",
    d4rlId: "maze2d-umaze-v1",
    layout: ["#####", "#GOO#", "###O#", "#OOO#", "#####"],
    maxEpisodeSteps: 300,
    scoreReference: { min: 23.85, max: 161.86 },
    resetTarget: false,
    collectSize: { smoke: 4_000, quick: 200_000, paper: 1_000_000 },
  },
  "maze2d-medium": {
    id: "maze2d-medium",
    d4rlId: "maze2d-medium-v1",
    layout: [
      "########",
      "#OO##OO#",
      "#OO#OOO#",
      "##OOO###",
      "#OO#OOO#",
      "#O#OO#O#",
      "#OOO#OG#",
      "########",
    ],
    maxEpisodeSteps: 600,
    scoreReference: { min: 13.13, max: 277.39 },
    // D4RL registers maze2d-medium-v1 with reset_target False, and its reference
    // scores match a fixed goal (a redrawn target gives the controller about 460, not 277).
    resetTarget: false,
    collectSize: { smoke: 4_000, quick: 400_000, paper: 2_000_000 },
  },
  "maze2d-large": {
    id: "maze2d-large",
    d4rlId: "maze2d-large-v1",
    layout: [
      "############",
      "#OOOO#OOOOO#",
      "#O##O#O#O#O#",
      "#OOOOOO#OOO#",
      "#O####O###O#",
      "#OO#O#OOOOO#",
      "##O#O#O#O###",
      "#OO#OOO#OGO#",
      "############",
    ],
    maxEpisodeSteps: 800,
    scoreReference: { min: 6.7, max: 273.99 },
    resetTarget: false,
    collectSize: { smoke: 4_000, quick: 800_000, paper: 4_000_000 },
  },
};

/** Cells of a layout: walls, the goal, and the cells a reset or a new target is drawn from. */
export interface MazeCells {
  /** Wall cells. */
  walls: Cell[];
  /** The `G` cell. */
  goal: Cell;
  /** Empty cells in row-major order, then the goal (D4RL's `empty_and_goal_locations`). */
  emptyAndGoal: Cell[];
}

/** Splits a layout into walls, goal and reset cells; throws on an unknown tile or ragged rows. */
export function mazeCells(layout: readonly string[]): MazeCells {
  const walls: Cell[] = [];
  const empty: Cell[] = [];
  const goals: Cell[] = [];
  layout.forEach((line, row) => {
    if (line.length !== layout[0].length) {
      throw new Error(
        `maze layout row ${row} has ${line.length} tiles; expected ${layout[0].length}`,
      );
    }
    [...line].forEach((tile, column) => {
      if (tile === "#") walls.push([row, column]);
      else if (tile === "O") empty.push([row, column]);
      else if (tile === "G") goals.push([row, column]);
      else throw new Error(`maze layout row ${row}, column ${column}: unknown tile "${tile}"`);
    });
  });
  if (goals.length !== 1) throw new Error(`maze layout has ${goals.length} goal cells; expected 1`);
  return { walls, goal: goals[0], emptyAndGoal: [...empty, goals[0]] };
}

/**
 * The MJCF of a maze: D4RL's point maze (sphere of radius 0.1 at world
 * (1.2, 1.2) on slide joints with damping 1, motors of gear 100, no gravity,
 * 0.01 s Euler steps) with a box wall of half-size 0.5 per `#` cell.
 */
export function maze2dXml(name: string, layout: readonly string[]): string {
  const walls = mazeCells(layout).walls.map(([row, column]) =>
    `    <geom name="wall_${row}_${column}" type="box" pos="${row + 1} ${
      column + 1
    } 0" size="0.5 0.5 0.2" conaffinity="1"/>`
  );
  return `<mujoco model="${name}">
  <compiler inertiafromgeom="true" angle="radian"/>
  <option timestep="0.01" gravity="0 0 0" iterations="20" integrator="Euler"/>
  <default>
    <joint damping="1" limited="false"/>
    <geom friction=".5 .1 .1" density="1000" margin="0.002" condim="1" contype="2" conaffinity="1"/>
  </default>
  <worldbody>
    <geom name="ground" type="plane" size="40 40 0.25" pos="0 0 -0.1" contype="1" conaffinity="0"/>
    <body name="particle" pos="1.2 1.2 0">
      <geom name="particle_geom" type="sphere" size="0.1" contype="1"/>
      <joint name="ball_x" type="slide" pos="0 0 0" axis="1 0 0"/>
      <joint name="ball_y" type="slide" pos="0 0 0" axis="0 1 0"/>
    </body>
${walls.join("\n")}
  </worldbody>
  <actuator>
    <motor joint="ball_x" ctrlrange="-1 1" ctrllimited="true" gear="100"/>
    <motor joint="ball_y" ctrlrange="-1 1" ctrllimited="true" gear="100"/>
  </actuator>
</mujoco>
`;
}

/** Radius of the ball (the MJCF's sphere). */
const ballRadius = 0.1;
/** Distance beyond touching at which MuJoCo starts a contact (the geoms' margin) plus rounding. */
const contactMargin = 0.005;

/**
 * Distance from a ball centre at observation coordinates (x, y) to the
 * nearest wall box (0 inside one). Walls of cell (r, c) span r − 0.2 ± 0.5
 * and c − 0.2 ± 0.5 in observation coordinates (see the module comment).
 */
export function wallClearance(walls: readonly Cell[], x: number, y: number): number {
  let nearest = Infinity;
  for (const [row, column] of walls) {
    const dx = Math.max(0, Math.abs(x - (row - 0.2)) - 0.5);
    const dy = Math.max(0, Math.abs(y - (column - 0.2)) - 0.5);
    nearest = Math.min(nearest, Math.hypot(dx, dy));
  }
  return nearest;
}

/** Largest speed per axis; D4RL clips velocities to it before every step. */
const maxSpeed = 5;

/** A running Maze2d simulator, with its target exposed for analysis and data collection. */
export class Maze2dEnvironment implements Environment {
  /** Sizes and references. */
  readonly spec: EnvironmentSpec;
  /** The layout, goal and reset cells. */
  readonly cells: MazeCells;
  readonly #variant: Maze2dVariant;
  readonly #simulation: MujocoSimulation;
  readonly #qpos = new Float64Array(2);
  readonly #qvel = new Float64Array(2);
  readonly #ctrl = new Float64Array(2);
  #target: [number, number];
  #resetTarget: boolean;

  /** Wraps a loaded maze model; use {@link maze2d}'s `make` rather than this. */
  constructor(variant: Maze2dVariant, simulation: MujocoSimulation) {
    this.#variant = variant;
    this.#simulation = simulation;
    this.spec = maze2dSpec(variant);
    this.cells = mazeCells(variant.layout);
    this.#target = [this.cells.goal[0], this.cells.goal[1]];
    this.#resetTarget = variant.resetTarget;
  }

  /** The current target position (observation coordinates). */
  get target(): readonly [number, number] {
    return this.#target;
  }

  /** Sets the target; with `keepOnReset`, resets stop redrawing it (D4RL's data generation). */
  setTarget(target: ArrayLike<number>, keepOnReset = false): void {
    this.#target = [target[0], target[1]];
    if (keepOnReset) this.#resetTarget = false;
  }

  /**
   * Starts an episode: a random empty or goal cell plus U(±0.1) on position,
   * velocity 0.1·N(0, 1); with `resetTarget`, also a new target near a random cell.
   */
  reset(seed: number): Float32Array {
    const rng = new Rng(seed);
    const cells = this.cells.emptyAndGoal;
    const start = cells[rng.int(cells.length)];
    this.#simulation.reset();
    this.#qpos[0] = start[0] + rng.range(-0.1, 0.1);
    this.#qpos[1] = start[1] + rng.range(-0.1, 0.1);
    this.#qvel[0] = 0.1 * rng.normal();
    this.#qvel[1] = 0.1 * rng.normal();
    this.#simulation.writeQpos(this.#qpos);
    this.#simulation.writeQvel(this.#qvel);
    if (this.#resetTarget) {
      const cell = cells[rng.int(cells.length)];
      this.#target = [cell[0] + rng.range(-0.1, 0.1), cell[1] + rng.range(-0.1, 0.1)];
    }
    return this.#observation();
  }

  /** Clips the action to ±1 and the velocity to ±5, steps 0.01 s, rewards 1 within 0.5 of the target. */
  step(action: Float32Array): StepResult {
    const simulation = this.#simulation;
    simulation.readQvel(this.#qvel);
    let clipped = false;
    for (let axis = 0; axis < 2; axis++) {
      const speed = this.#qvel[axis];
      if (speed > maxSpeed || speed < -maxSpeed) {
        this.#qvel[axis] = Math.min(maxSpeed, Math.max(-maxSpeed, speed));
        clipped = true;
      }
      // NaN would poison the simulator state; treat it as no push.
      const push = Number.isNaN(action[axis]) ? 0 : action[axis];
      this.#ctrl[axis] = Math.min(1, Math.max(-1, push));
    }
    if (clipped) simulation.writeQvel(this.#qvel);
    simulation.writeCtrl(this.#ctrl);
    simulation.step(1);
    const observation = this.#observation();
    const distance = Math.hypot(this.#qpos[0] - this.#target[0], this.#qpos[1] - this.#target[1]);
    return { observation, reward: distance <= goalRadius ? 1 : 0, terminated: false };
  }

  /** Sets position and velocity from an observation (x, y, vx, vy); the target is unchanged. */
  resetToObservation(observation: Float32Array): void {
    if (observation.length !== 4) {
      throw new Error(
        `${this.#variant.id}: an observation has 4 values, got ${observation.length}`,
      );
    }
    this.#simulation.writeQpos(observation.subarray(0, 2));
    this.#simulation.writeQvel(observation.subarray(2, 4));
  }

  /** The maze as walls and goal in observation coordinates (walls sit 0.2 below their cell index). */
  planView(): PlanView {
    return {
      walls: this.cells.walls.map(([row, column]) =>
        [row - 0.7, column - 0.7, row + 0.3, column + 0.3] as [number, number, number, number]
      ),
      goal: [this.#target[0], this.#target[1]],
    };
  }

  /** Whether the ball lies within contact distance of a wall. */
  touchesObstacle(observation: Float32Array): boolean {
    return wallClearance(this.cells.walls, observation[0], observation[1]) <=
      ballRadius + contactMargin;
  }

  /**
   * Whether the ball overlaps a wall by more than MuJoCo's soft contacts let
   * it (a quarter of its radius): a state the simulator does not reach.
   */
  isImpossible(observation: Float32Array): boolean {
    return wallClearance(this.cells.walls, observation[0], observation[1]) < 0.75 * ballRadius;
  }

  /** Copies the exact (float64) positions and velocities into the given arrays. */
  readState(qpos: Float64Array, qvel: Float64Array): void {
    this.#simulation.readQpos(qpos);
    this.#simulation.readQvel(qvel);
  }

  /** Frees the simulator. */
  close(): void {
    this.#simulation.free();
  }

  #observation(): Float32Array {
    this.#simulation.readQpos(this.#qpos);
    this.#simulation.readQvel(this.#qvel);
    return Float32Array.of(this.#qpos[0], this.#qpos[1], this.#qvel[0], this.#qvel[1]);
  }
}

function variantOf(dataset: string): Maze2dVariant {
  const variant = maze2dVariants[dataset];
  if (!variant) {
    throw new Error(
      `maze2d: unknown dataset "${dataset}"; expected one of ${
        Object.keys(maze2dVariants).join(", ")
      }`,
    );
  }
  return variant;
}

function maze2dSpec(variant: Maze2dVariant): EnvironmentSpec {
  return {
    id: variant.id,
    observationDim: 4,
    actionDim: 2,
    maxEpisodeSteps: variant.maxEpisodeSteps,
    positionDims: 2,
    scoreReference: { ...variant.scoreReference },
    // The goal is rewarded, never terminal: D4RL's Maze2d episodes end only by the time limit.
    isTerminal: neverTerminal,
  };
}

/** Starts a Maze2d simulator for a dataset id (the typed form of the plugin's `make`). */
export async function makeMaze2d(dataset: string): Promise<Maze2dEnvironment> {
  const variant = variantOf(dataset);
  const simulation = await loadModel(variant.d4rlId, maze2dXml(variant.d4rlId, variant.layout));
  return new Maze2dEnvironment(variant, simulation);
}

/** Options of the Maze2d plugin. */
export const maze2dOptionsSchema = z.object({
  /**
   * Std of Gaussian noise added to the controller's actions when collecting.
   * D4RL's generator adds N(0, 0.5) only with `--noisy` (files named `*-noisy`);
   * its v1 datasets were made without, hence 0.
   */
  actionNoise: z.number().min(0).default(0),
}).strict();

/** Options of the Maze2d plugin (see {@link maze2dOptionsSchema}). */
export type Maze2dOptions = z.input<typeof maze2dOptionsSchema>;

function parseOptions(options: unknown): z.infer<typeof maze2dOptionsSchema> {
  const parsed = maze2dOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) =>
      `${issue.path.join(".") || "(options)"}: ${issue.message}`
    );
    throw new Error(`maze2d options: ${issues.join("; ")}`);
  }
  return parsed.data;
}

/**
 * Records a Maze2d dataset as D4RL's generator made it: the waypoint
 * controller drives one long stream with random targets, cut into timeouts.
 */
export async function collectMaze2d(
  request: CollectRequest,
  options: Maze2dOptions = {},
): Promise<D4rlDataset> {
  const { actionNoise } = parseOptions(options);
  const variant = variantOf(request.dataset);
  const size = request.size ?? variant.collectSize[request.preset];
  if (!Number.isInteger(size) || size < 2) {
    throw new Error(`maze2d collect: size ${size} is not an integer ≥ 2`);
  }
  const environment = await makeMaze2d(variant.id);
  try {
    // D4RL's generator runs the maze with a fixed (settable) target, never redrawn on reset.
    environment.setTarget(environment.cells.goal, true);
    return await collectWithController(environment, {
      environmentId: variant.d4rlId,
      layout: variant.layout,
      size,
      seed: request.seed,
      maxEpisodeSteps: variant.maxEpisodeSteps,
      goal: environment.cells.goal,
      targetCells: environment.cells.emptyAndGoal,
      actionNoise,
      onProgress: request.onProgress,
    });
  } finally {
    environment.close();
  }
}

/** The Maze2d environment plugin: `maze2d-umaze`, `maze2d-medium`, `maze2d-large`. */
export function maze2d(options?: Maze2dOptions): EnvironmentPlugin {
  const parsed = parseOptions(options);
  return {
    name: "maze2d",
    datasets: Object.keys(maze2dVariants),
    spec: (dataset) => maze2dSpec(variantOf(dataset)),
    make: (dataset) => makeMaze2d(dataset),
    collect: (request) => collectMaze2d(request, parsed),
    d4rlFileName: (dataset) => `${variantOf(dataset).d4rlId}.hdf5`,
  };
}
