/**
 * D4RL's Maze2d data generator: a waypoint controller that plans cell-to-cell
 * waypoints by value iteration on the maze grid and steers the point mass with
 * a PD law, run as one long stream whose target is redrawn whenever it is
 * reached, recorded in D4RL's layout.
 *
 * Written from the published description of D4RL's generator
 * (`WaypointController`, `generate_maze2d_datasets.py`, relabelled with sparse
 * rewards). Two of its quirks are kept because they shape the data:
 * the "speed" test compares the position change over one step (not the
 * velocity) with 0.1, and a row's reward is that of its own observation.
 * One is not: after a goal is reached D4RL records the pre-step observation
 * twice; here every row is the simulator's true state.
 *
 * @module
 */
import { z } from "zod";
import { Rng } from "../../core/rng.ts";
import type { D4rlDataset } from "../../core/types.ts";

/** The controller's settings; defaults are D4RL's. */
export const waypointControllerOptionsSchema = z.object({
  /** Proportional gain on (waypoint − position). */
  proportionalGain: z.number().default(10),
  /** Gain on the velocity (negative: damping). */
  velocityGain: z.number().default(-1),
  /** A waypoint or target counts as reached within this distance. */
  solveThreshold: z.number().positive().default(0.1),
  /** …and when the position changed by less than this over the last step. */
  stepDisplacementThreshold: z.number().positive().default(0.1),
  /** Value-iteration sweeps on the grid. */
  valueIterations: z.number().int().positive().default(50),
  /** Discount of the grid value iteration. */
  discount: z.number().gt(0).lt(1).default(0.99),
  /** Each intermediate waypoint is moved by −U(0, jitter) per axis. */
  waypointJitter: z.number().min(0).default(0.2),
  /** Longest waypoint plan (grid steps). */
  maxPlanSteps: z.number().int().positive().default(100),
});

/** Options of {@link WaypointController} (see {@link waypointControllerOptionsSchema}). */
export type WaypointControllerOptions = z.infer<typeof waypointControllerOptionsSchema>;

/** A grid cell as (row, column), the first and second observation coordinates. */
export type Cell = readonly [number, number];

/**
 * Grid moves in D4RL's order; ties in the greedy plan go to the first, so the
 * order matters: no-op, column −1, column +1, row −1, row +1.
 */
const gridMoves: readonly Cell[] = [[0, 0], [0, -1], [0, 1], [-1, 0], [1, 0]];

/** Rounds half to even, as numpy does when D4RL turns a position into a cell. */
function roundHalfEven(value: number): number {
  const rounded = Math.round(value);
  return Math.abs(value % 1) === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

/**
 * Steers the point mass to a target through a maze: value iteration on the
 * grid gives a plan of cell waypoints (each jittered), and a PD law follows it:
 * `a = 10·(waypoint − position) − 1·velocity`, clipped to [−1, 1].
 */
export class WaypointController {
  readonly #layout: readonly string[];
  readonly #rows: number;
  readonly #columns: number;
  readonly #options: WaypointControllerOptions;
  readonly #rng: Rng;
  #target: Cell | undefined;
  #waypoints: [number, number][] = [];
  #waypointIndex = 0;
  #previousPosition: [number, number] = [0, 0];

  /** `layout`: rows of `#` (wall), `O` (empty), `G` (goal); `rng` draws the waypoint jitter. */
  constructor(
    layout: readonly string[],
    rng: Rng,
    options: Partial<WaypointControllerOptions> = {},
  ) {
    this.#layout = layout;
    this.#rows = layout.length;
    this.#columns = layout[0].length;
    this.#options = waypointControllerOptionsSchema.parse(options);
    this.#rng = rng;
  }

  /** The current plan's waypoints (a copy), the last being the target cell. */
  get waypoints(): [number, number][] {
    return this.#waypoints.map(([row, column]) => [row, column]);
  }

  /**
   * The action for the current position and velocity, and whether the target
   * (rounded to its cell) is reached. A target in another cell than the last
   * call's makes a new plan from the current position.
   */
  act(
    position: ArrayLike<number>,
    velocity: ArrayLike<number>,
    target: ArrayLike<number>,
  ): { action: Float32Array; reached: boolean } {
    const o = this.#options;
    const targetCell = this.#cellOf(target);
    if (
      this.#target === undefined || this.#target[0] !== targetCell[0] ||
      this.#target[1] !== targetCell[1]
    ) {
      this.#plan(position, targetCell);
    }
    const goal = this.#target!;
    const distance = Math.hypot(position[0] - goal[0], position[1] - goal[1]);
    const displacement = Math.hypot(
      this.#previousPosition[0] - position[0],
      this.#previousPosition[1] - position[1],
    );
    const solved = distance < o.solveThreshold && displacement < o.stepDisplacementThreshold;
    const waypoint = solved ? goal : this.#waypoints[this.#waypointIndex];
    const action = new Float32Array(2);
    for (let axis = 0; axis < 2; axis++) {
      const raw = o.proportionalGain * (waypoint[axis] - position[axis]) +
        o.velocityGain * velocity[axis];
      action[axis] = Math.min(1, Math.max(-1, raw));
    }
    const toWaypoint = Math.hypot(position[0] - waypoint[0], position[1] - waypoint[1]);
    if (
      !solved && toWaypoint < o.solveThreshold && displacement < o.stepDisplacementThreshold &&
      this.#waypointIndex < this.#waypoints.length - 1
    ) {
      this.#waypointIndex += 1;
    }
    this.#previousPosition = [position[0], position[1]];
    return { action, reached: solved };
  }

  #cellOf(point: ArrayLike<number>): Cell {
    const row = Math.min(this.#rows - 1, Math.max(0, roundHalfEven(point[0])));
    const column = Math.min(this.#columns - 1, Math.max(0, roundHalfEven(point[1])));
    return [row, column];
  }

  #isWall(row: number, column: number): boolean {
    return row < 0 || column < 0 || row >= this.#rows || column >= this.#columns ||
      this.#layout[row][column] === "#";
  }

  /** Greedy waypoints from `position`'s cell to `target` under grid Q-values. */
  #plan(position: ArrayLike<number>, target: Cell): void {
    const o = this.#options;
    const q = this.#qValues(target);
    const start = this.#cellOf(position);
    const waypoints: [number, number][] = [];
    let cell = start;
    for (let step = 0; step < o.maxPlanSteps; step++) {
      const base = (cell[0] * this.#columns + cell[1]) * gridMoves.length;
      let best = 0;
      for (let move = 1; move < gridMoves.length; move++) {
        if (q[base + move] > q[base + best]) best = move;
      }
      cell = this.#moveFrom(cell, best);
      const atTarget = cell[0] === target[0] && cell[1] === target[1];
      waypoints.push(
        atTarget ? [cell[0], cell[1]] : [
          cell[0] - this.#rng.uniform() * o.waypointJitter,
          cell[1] - this.#rng.uniform() * o.waypointJitter,
        ],
      );
      if (atTarget) break;
    }
    this.#waypoints = waypoints;
    this.#waypointIndex = 0;
    this.#previousPosition = [start[0], start[1]];
    this.#target = target;
  }

  /** The cell a grid move leads to; a move into a wall stays put. */
  #moveFrom(cell: Cell, move: number): Cell {
    const row = cell[0] + gridMoves[move][0];
    const column = cell[1] + gridMoves[move][1];
    return this.#isWall(row, column) ? cell : [row, column];
  }

  /**
   * Q-values of the deterministic grid where being in the target cell pays 1:
   * `Q(s, a) = R(s) + γ · max_a' Q(s', a')`, `valueIterations` sweeps from zero.
   */
  #qValues(target: Cell): Float64Array {
    const o = this.#options;
    const cells = this.#rows * this.#columns;
    const moves = gridMoves.length;
    const next = new Int32Array(cells * moves);
    for (let row = 0; row < this.#rows; row++) {
      for (let column = 0; column < this.#columns; column++) {
        for (let move = 0; move < moves; move++) {
          const [nextRow, nextColumn] = this.#moveFrom([row, column], move);
          next[(row * this.#columns + column) * moves + move] = nextRow * this.#columns +
            nextColumn;
        }
      }
    }
    const targetIndex = target[0] * this.#columns + target[1];
    let q = new Float64Array(cells * moves);
    const value = new Float64Array(cells);
    for (let sweep = 0; sweep < o.valueIterations; sweep++) {
      for (let state = 0; state < cells; state++) {
        let best = -Infinity;
        for (let move = 0; move < moves; move++) best = Math.max(best, q[state * moves + move]);
        value[state] = best;
      }
      const updated = new Float64Array(cells * moves);
      for (let state = 0; state < cells; state++) {
        const reward = state === targetIndex ? 1 : 0;
        for (let move = 0; move < moves; move++) {
          updated[state * moves + move] = reward + o.discount * value[next[state * moves + move]];
        }
      }
      q = updated;
    }
    return q;
  }
}

/** The simulator the generator drives: the Maze2d environment with a settable target. */
export interface ControlledMaze {
  /** Starts from a random cell (as the environment's reset) and returns the observation. */
  reset(seed: number): Float32Array;
  /** One step of the environment (clipping and simulation as in evaluation). */
  step(action: Float32Array): unknown;
  /** Copies the simulator's exact positions and velocities into the given arrays. */
  readState(qpos: Float64Array, qvel: Float64Array): void;
}

/** What {@link collectWithController} records. */
export interface ControllerCollection {
  /** Environment id recorded in the metadata, e.g. `maze2d-umaze-v1`. */
  environmentId: string;
  /** Maze rows (`#`, `O`, `G`). */
  layout: readonly string[];
  /** Steps to record. */
  size: number;
  /** Seed of every random draw. */
  seed: number;
  /** An episode is cut (a timeout) after this many steps without reaching the target. */
  maxEpisodeSteps: number;
  /** The fixed evaluation goal; rewards are 1 within 0.5 of it (D4RL's sparse relabelling). */
  goal: Cell;
  /** Cells a new target is drawn from (D4RL: empty and goal cells). */
  targetCells: readonly Cell[];
  /** Standard deviation of Gaussian noise added to actions (D4RL's `--noisy` used 0.5; its v1 files 0). */
  actionNoise: number;
  /** Called with the fraction done. */
  onProgress?: (fraction: number) => void;
  /** Controller settings (defaults: D4RL's). */
  controller?: Partial<WaypointControllerOptions>;
}

/** Distance from the goal within which a step earns reward 1 (D4RL's sparse Maze2d reward). */
export const goalRadius = 0.5;

/**
 * Runs the waypoint controller as one long stream and records it in D4RL's
 * layout: the target is a random cell plus U(±0.1) noise, redrawn whenever the
 * controller reaches it or `maxEpisodeSteps` pass (that row's timeout is set);
 * terminals are all 0; rewards are relabelled sparse against `goal`.
 */
export async function collectWithController(
  maze: ControlledMaze,
  request: ControllerCollection,
): Promise<D4rlDataset> {
  const { size, maxEpisodeSteps, goal, targetCells, actionNoise } = request;
  const rng = new Rng(request.seed);
  const controller = new WaypointController(
    request.layout,
    new Rng(rng.seed()),
    request.controller,
  );
  const observations = new Float32Array(size * 4);
  const actions = new Float32Array(size * 2);
  const rewards = new Float32Array(size);
  const timeouts = new Uint8Array(size);
  const goals = new Float32Array(size * 2);
  const qposLog = new Float32Array(size * 2);
  const qvelLog = new Float32Array(size * 2);
  const qpos = new Float64Array(2);
  const qvel = new Float64Array(2);

  const drawTarget = (): [number, number] => {
    const cell = targetCells[rng.int(targetCells.length)];
    return [cell[0] + rng.range(-0.1, 0.1), cell[1] + rng.range(-0.1, 0.1)];
  };
  let target = drawTarget();
  maze.reset(rng.seed());
  let episodeStep = 0;
  const progressEvery = Math.max(1, Math.floor(size / 100));

  for (let row = 0; row < size; row++) {
    // The controller sees the simulator's float64 state, as D4RL's did; the file stores float32.
    maze.readState(qpos, qvel);
    const { action, reached } = controller.act(qpos, qvel, target);
    if (actionNoise > 0) {
      for (let axis = 0; axis < 2; axis++) action[axis] += actionNoise * rng.normal();
    }
    for (let axis = 0; axis < 2; axis++) action[axis] = Math.min(1, Math.max(-1, action[axis]));
    const cut = reached || episodeStep >= maxEpisodeSteps;

    observations.set(qpos, row * 4);
    observations.set(qvel, row * 4 + 2);
    actions.set(action, row * 2);
    rewards[row] = Math.hypot(qpos[0] - goal[0], qpos[1] - goal[1]) <= goalRadius ? 1 : 0;
    timeouts[row] = cut ? 1 : 0;
    goals[row * 2] = target[0];
    goals[row * 2 + 1] = target[1];
    qposLog.set(qpos, row * 2);
    qvelLog.set(qvel, row * 2);

    maze.step(action);
    episodeStep += 1;
    if (cut) {
      target = drawTarget();
      episodeStep = 0;
    }
    if (row % progressEvery === 0) {
      request.onProgress?.(row / size);
      // Yields now and then so progress can be drawn and timers run during a long collection.
      if (row % (progressEvery * 10) === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  request.onProgress?.(1);

  const options = waypointControllerOptionsSchema.parse(request.controller ?? {});
  return {
    size,
    observationDim: 4,
    actionDim: 2,
    observations,
    actions,
    rewards,
    terminals: new Uint8Array(size),
    timeouts,
    infos: {
      goal: { data: goals, width: 2 },
      qpos: { data: qposLog, width: 2 },
      qvel: { data: qvelLog, width: 2 },
    },
    metadata: {
      "@env_name": request.environmentId,
      algorithm: "waypoint-controller",
      generator: "pgd-bench maze2d collect (D4RL generate_maze2d_datasets semantics)",
      seed: request.seed,
      size,
      action_noise_std: actionNoise,
      reward: `sparse: 1 when |observation xy - goal| <= ${goalRadius}, goal ${goal.join(",")}`,
      controller: {
        proportional_gain: options.proportionalGain,
        velocity_gain: options.velocityGain,
        solve_threshold: options.solveThreshold,
        step_displacement_threshold: options.stepDisplacementThreshold,
        value_iterations: options.valueIterations,
        discount: options.discount,
        waypoint_jitter: options.waypointJitter,
      },
    },
  };
}
