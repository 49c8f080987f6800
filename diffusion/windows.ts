/**
 * Trajectory windows for the diffusion model (paper Sections 3–4; window
 * length in Table 3): a window stacks `[observation, action, reward, done]` per
 * step into one row, so a window is `trajectoryLength × rowWidth` with
 * `rowWidth = observationDim + actionDim + 2`. With `stateDifferences` a row
 * also holds `Δ = s_{t+1} − s_t` after the observation, and a transition's
 * `s′` is `s + Δ` rather than the next row's state.
 *
 * Also the way back: synthetic windows become the transitions an agent
 * trains on (paper Section 4).
 *
 * @module
 */
import type { D4rlDataset, Transitions } from "../core/types.ts";
import { allocateTransitions } from "../core/transitions.ts";
import { type ActionTransform, defaultActionTransform } from "./action_transform.ts";

/** The layout of one window row. */
export interface RowLayout {
  /** Width of one observation. */
  observationDim: number;
  /** Width of one action. */
  actionDim: number;
  /** Entries per row: `observationDim + actionDim + 2`, plus `observationDim` with state differences. */
  rowWidth: number;
  /** Column of the first entry of `Δ = s_{t+1} − s_t`, or `null` without state differences. */
  deltaOffset: number | null;
  /** Column of the first action entry. */
  actionOffset: number;
  /** Column of the reward. */
  rewardColumn: number;
  /** Column of the done flag. */
  doneColumn: number;
  /** How an action entry is stored (default: the authors' `atanh(clip(a, ±0.999))`). */
  actionTransform: ActionTransform;
}

/** How a row encodes a step, beyond the observation and action widths. */
export interface RowEncoding {
  /** How actions are stored (default: the authors' `atanh(clip(a, ±0.999))`). */
  actionTransform?: ActionTransform;
  /** Store `Δ = s_{t+1} − s_t` after the observation, and read `s′ = s + Δ` (default: no). */
  stateDifferences?: boolean;
}

/** The row layout for given observation and action widths and encoding. */
export function rowLayout(
  observationDim: number,
  actionDim: number,
  encoding: RowEncoding = {},
): RowLayout {
  const deltaWidth = encoding.stateDifferences ? observationDim : 0;
  const actionOffset = observationDim + deltaWidth;
  return {
    observationDim,
    actionDim,
    actionTransform: encoding.actionTransform ?? defaultActionTransform,
    rowWidth: actionOffset + actionDim + 2,
    deltaOffset: encoding.stateDifferences ? observationDim : null,
    actionOffset,
    rewardColumn: actionOffset + actionDim,
    doneColumn: actionOffset + actionDim + 1,
  };
}

/** Windows cut from a dataset, before normalisation. */
export interface WindowSet {
  /** Row layout. */
  layout: RowLayout;
  /** Steps per window. */
  trajectoryLength: number;
  /** Number of windows. */
  count: number;
  /** `count × trajectoryLength × rowWidth`, actions already encoded (`layout.actionTransform`). */
  data: Float32Array;
  /** Episode index of each window (episodes numbered in dataset order). */
  episodeOfWindow: Int32Array;
  /** Number of episodes found in the dataset. */
  episodeCount: number;
}

/** How windows are cut. */
export interface WindowOptions {
  /** Steps per window (paper: 16). */
  trajectoryLength: number;
  /** Keep every `stride`-th valid start of an episode (the reference code: 8). */
  stride: number;
  /** How a row encodes a step (default: the authors' rows). */
  encoding?: RowEncoding;
  /**
   * Also keep each episode's last valid window, so that the rows after its
   * last `stride`-th start are covered (default: no, the reference code).
   */
  episodeTails?: boolean;
}

/** One episode as an inclusive row range of the dataset. */
export interface EpisodeSpan {
  /** First row. */
  start: number;
  /** Last row (a terminal, a timeout, or the dataset's last row). */
  end: number;
  /** The episode ends in a terminal state. */
  terminal: boolean;
}

/** Splits a dataset into episodes at `terminals OR timeouts`. */
export function splitEpisodes(dataset: D4rlDataset): EpisodeSpan[] {
  const episodes: EpisodeSpan[] = [];
  let start = 0;
  for (let row = 0; row < dataset.size; row++) {
    const terminal = dataset.terminals[row] !== 0;
    if (terminal || dataset.timeouts[row] !== 0 || row === dataset.size - 1) {
      episodes.push({ start, end: row, terminal });
      start = row + 1;
    }
  }
  return episodes;
}

/**
 * Cuts windows from a dataset by the reference code's rules: a window lies in
 * one episode; it may hold a terminal only at its last step; windows ending
 * on a timeout (or on the dataset's unterminated end) are dropped; of the
 * valid starts, every `stride`-th is kept, plus the episode's first and any
 * window ending in a terminal (and with `episodeTails`, the episode's last
 * valid window). Actions are encoded by the encoding's action
 * transform (the authors' `atanh(clip(a, ±0.999))` by default); `done` holds
 * terminals only. A state difference past the episode's last row is 0.
 */
export function cutWindows(dataset: D4rlDataset, options: WindowOptions): WindowSet {
  const { trajectoryLength, stride } = options;
  if (!Number.isInteger(trajectoryLength) || trajectoryLength < 2) {
    throw new Error(`windows: trajectoryLength must be an integer ≥ 2, got ${trajectoryLength}`);
  }
  if (!Number.isInteger(stride) || stride < 1) {
    throw new Error(`windows: stride must be a positive integer, got ${stride}`);
  }
  const layout = rowLayout(dataset.observationDim, dataset.actionDim, options.encoding);
  const { encode } = layout.actionTransform;
  const episodes = splitEpisodes(dataset);
  const starts: number[] = [];
  const episodeIds: number[] = [];
  episodes.forEach((episode, episodeIndex) => {
    const length = episode.end - episode.start + 1;
    if (length < trajectoryLength) return;
    // A window ending at `end` holds the episode's last row: valid only when it is a terminal.
    const lastStart = episode.end - trajectoryLength + 1;
    const lastValidStart = episode.terminal ? lastStart : lastStart - 1;
    for (let start = episode.start; start <= lastValidStart; start++) {
      const offset = start - episode.start;
      const endsInTerminal = episode.terminal && start === lastStart;
      const tail = options.episodeTails === true && start === lastValidStart;
      if (offset % stride === 0 || endsInTerminal || tail) {
        starts.push(start);
        episodeIds.push(episodeIndex);
      }
    }
  });
  const { rowWidth, observationDim, actionDim } = layout;
  const data = new Float32Array(starts.length * trajectoryLength * rowWidth);
  const { observations } = dataset;
  let out = 0;
  starts.forEach((start, w) => {
    const episodeEnd = episodes[episodeIds[w]].end;
    for (let step = 0; step < trajectoryLength; step++) {
      const row = start + step;
      for (let j = 0; j < observationDim; j++) {
        data[out++] = observations[row * observationDim + j];
      }
      if (layout.deltaOffset !== null) {
        const hasNext = row < episodeEnd;
        for (let j = 0; j < observationDim; j++) {
          const here = observations[row * observationDim + j];
          data[out++] = hasNext ? observations[(row + 1) * observationDim + j] - here : 0;
        }
      }
      for (let j = 0; j < actionDim; j++) {
        data[out++] = encode(dataset.actions[row * actionDim + j]);
      }
      data[out++] = dataset.rewards[row];
      data[out++] = dataset.terminals[row] !== 0 ? 1 : 0;
    }
  });
  return {
    layout,
    trajectoryLength,
    count: starts.length,
    data,
    episodeOfWindow: Int32Array.from(episodeIds),
    episodeCount: episodes.length,
  };
}

/** Per-column z-score statistics of window rows, saved with the model. */
export interface RowStats {
  /** `rowWidth` column means. */
  mean: Float32Array;
  /** `rowWidth` column standard deviations (a zero std becomes 1). */
  std: Float32Array;
}

/** Per-column mean and std over every row of every window (a zero std becomes 1). */
export function rowStats(data: Float32Array, rowWidth: number): RowStats {
  const rows = data.length / rowWidth;
  if (rows < 1) throw new Error("windows: cannot compute statistics of zero windows");
  const sum = new Float64Array(rowWidth);
  const sumSquares = new Float64Array(rowWidth);
  for (let row = 0; row < rows; row++) {
    for (let j = 0; j < rowWidth; j++) sum[j] += data[row * rowWidth + j];
  }
  const mean = new Float32Array(rowWidth);
  for (let j = 0; j < rowWidth; j++) mean[j] = sum[j] / rows;
  for (let row = 0; row < rows; row++) {
    for (let j = 0; j < rowWidth; j++) {
      const d = data[row * rowWidth + j] - mean[j];
      sumSquares[j] += d * d;
    }
  }
  const std = new Float32Array(rowWidth);
  for (let j = 0; j < rowWidth; j++) {
    const s = Math.sqrt(sumSquares[j] / rows);
    std[j] = s > 1e-12 ? s : 1;
  }
  return { mean, std };
}

/** `(x − mean) / std` per column, into a new array. */
export function normalizeRows(data: Float32Array, stats: RowStats): Float32Array {
  const width = stats.mean.length;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const j = i % width;
    out[i] = (data[i] - stats.mean[j]) / stats.std[j];
  }
  return out;
}

/** `x · std + mean` per column, into a new array. */
export function unnormalizeRows(data: Float32Array, stats: RowStats): Float32Array {
  const width = stats.mean.length;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const j = i % width;
    out[i] = data[i] * stats.std[j] + stats.mean[j];
  }
  return out;
}

/**
 * Un-normalised windows to transitions: `s = x[:-1]`, `s' = x[1:]` (or
 * `s + Δ` with state differences), and `a` decoded by the layout's action
 * transform (`tanh` by default), `r`, `done = done > 0.5` from the first L−1 rows.
 */
export function windowsToTransitions(
  windows: Float32Array,
  count: number,
  trajectoryLength: number,
  layout: RowLayout,
): Transitions {
  const { rowWidth, observationDim, actionDim, actionOffset, rewardColumn, doneColumn } = layout;
  const { deltaOffset } = layout;
  const { decode } = layout.actionTransform;
  if (windows.length !== count * trajectoryLength * rowWidth) {
    throw new Error(
      `windows: expected ${count}×${trajectoryLength}×${rowWidth} values, got ${windows.length}`,
    );
  }
  const size = count * (trajectoryLength - 1);
  const out = allocateTransitions(size, observationDim, actionDim);
  const { observations, nextObservations, actions, rewards, dones } = out;
  let index = 0;
  for (let w = 0; w < count; w++) {
    for (let step = 0; step < trajectoryLength - 1; step++, index++) {
      const row = (w * trajectoryLength + step) * rowWidth;
      const next = row + rowWidth;
      for (let j = 0; j < observationDim; j++) {
        observations[index * observationDim + j] = windows[row + j];
        nextObservations[index * observationDim + j] = deltaOffset === null
          ? windows[next + j]
          : windows[row + j] + windows[row + deltaOffset + j];
      }
      for (let j = 0; j < actionDim; j++) {
        actions[index * actionDim + j] = decode(windows[row + actionOffset + j]);
      }
      rewards[index] = windows[row + rewardColumn];
      dones[index] = windows[row + doneColumn] > 0.5 ? 1 : 0;
    }
  }
  return out;
}

/**
 * Splits windows into training and validation sets by episode: a seeded
 * `fraction` of the episodes is held out. When that leaves either side
 * empty (too few episodes), the last `fraction` of windows is held out instead.
 */
export function splitByEpisode(
  set: WindowSet,
  fraction: number,
  shuffle: (episodes: number[]) => number[],
): { train: Int32Array; validation: Int32Array } {
  const heldOutCount = Math.max(1, Math.round(set.episodeCount * fraction));
  const episodes = shuffle(Array.from({ length: set.episodeCount }, (_, i) => i));
  const heldOut = new Set(episodes.slice(0, heldOutCount));
  const train: number[] = [];
  const validation: number[] = [];
  for (let w = 0; w < set.count; w++) {
    (heldOut.has(set.episodeOfWindow[w]) ? validation : train).push(w);
  }
  if (train.length === 0 || validation.length === 0) {
    const cut = set.count - Math.max(1, Math.round(set.count * fraction));
    const all = Array.from({ length: set.count }, (_, i) => i);
    return {
      train: Int32Array.from(all.slice(0, cut)),
      validation: Int32Array.from(all.slice(cut)),
    };
  }
  return { train: Int32Array.from(train), validation: Int32Array.from(validation) };
}
