/**
 * The grid's cells and their grouping: cells that share a trained model
 * (same dataset, source and seed) form a group that one worker runs in turn,
 * so the model is trained once and reused from the cache.
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

/** Cells grouped by (dataset, source, seed), in first-appearance order. */
export function groupCells(cells: CellKey[]): CellKey[][] {
  const groups = new Map<string, CellKey[]>();
  for (const cell of cells) {
    const key = `${cell.dataset}\u0000${cell.source}\u0000${cell.seed}`;
    const group = groups.get(key);
    if (group) group.push(cell);
    else groups.set(key, [cell]);
  }
  return [...groups.values()];
}
