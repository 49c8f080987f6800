/**
 * The grid's cells and their grouping: cells that share a trained model
 * (same dataset, source and seed) form a group that one worker runs in turn,
 * so the model is trained once and reused from the cache; with seeds
 * stacked, the seeds of one (dataset, source, agent) form a group that one
 * worker trains as one stack.
 *
 * @module
 */
import type { GridConfig } from "./config.ts";
import type { CellKey } from "./results.ts";

/** Every cell of the grid: datasets × sources × agents × seeds, in that nesting order. */
export function planCells(config: GridConfig): CellKey[] {
  const cells: CellKey[] = [];
  for (const dataset of config.datasets) {
    for (const source of config.sources) {
      for (const agent of config.agents) {
        for (const seed of config.seeds) cells.push({ dataset, source, agent, seed });
      }
    }
  }
  return cells;
}

/** Cells with equal keys grouped together, groups and members in first-appearance order. */
function groupBy(cells: CellKey[], keyOf: (cell: CellKey) => string): CellKey[][] {
  const groups = new Map<string, CellKey[]>();
  for (const cell of cells) {
    const key = keyOf(cell);
    const group = groups.get(key);
    if (group) group.push(cell);
    else groups.set(key, [cell]);
  }
  return [...groups.values()];
}

/** Cells grouped by (dataset, source, seed), in first-appearance order. */
export function groupCells(cells: CellKey[]): CellKey[][] {
  return groupBy(cells, (cell) => `${cell.dataset}\u0000${cell.source}\u0000${cell.seed}`);
}

/**
 * Cells grouped by (dataset, source, agent), in first-appearance order: each
 * group's seeds train as one stack on one worker. Pass the pending cells
 * only, so a stack holds just the seeds still to run.
 *
 * A group's sources prepare its seeds one after another in the group's
 * order, and a seed's trained model (a denoiser, shared by both agents and
 * by unguided and policy-guided data) is trained under a lock by whichever
 * process asks first. Were every group to list its seeds alike, the
 * `workers` groups that start together would all begin with the same seed,
 * wait on one another's lock seed after seed, and train the models one at a
 * time. So group `i` starts its list at seed position `(i mod workers) ·
 * seeds / workers` (a rotation; members are independent, so their order
 * changes no number): groups started together begin on different seeds and
 * train different models at once.
 */
export function groupSeedStacks(cells: CellKey[], workers: number): CellKey[][] {
  const groups = groupBy(cells, (cell) => `${cell.dataset}\u0000${cell.source}\u0000${cell.agent}`);
  const spread = Math.max(1, Math.floor(workers));
  return groups.map((group, index) => {
    const start = Math.floor(((index % spread) * group.length) / spread);
    return [...group.slice(start), ...group.slice(0, start)];
  });
}
