/**
 * pgd-bench: a benchmark harness for offline reinforcement learning with
 * synthetic experience, built around Policy-Guided Diffusion.
 *
 * The public API: the plugin contracts a user implements, the plain data
 * types they exchange, the dataset reader and writer, helpers for
 * transitions, option errors and content-keyed caches, the registry and the
 * grid runner.
 *
 * @module
 */
export type * from "./core/types.ts";
export * from "./core/contracts/common.ts";
export * from "./core/contracts/environment.ts";
export * from "./core/contracts/agent.ts";
export * from "./core/contracts/source.ts";
export { deriveSeed, Rng } from "./core/rng.ts";
export { backendNames, computeInfo, initCompute, tf } from "./core/compute.ts";
export type { BackendName, ComputeInfo } from "./core/compute.ts";
export { gridConfigSchema, loadGridConfig, parseGridConfig } from "./core/config.ts";
export type { GridConfig, GridConfigInput } from "./core/config.ts";
export { PluginRegistry } from "./core/registry.ts";
export type { PluginEntry, PluginFactory, PluginKind, PluginSet } from "./core/registry.ts";
export { runGrid } from "./core/scheduler.ts";
export { PluginHost } from "./core/host.ts";
export type { GridEvents, GridOptions, GridOutcome } from "./core/scheduler.ts";
export { runCell, runCells } from "./core/cell.ts";
export type { CellEnvironment, StackEnvironment } from "./core/cell.ts";
export { ResultStore } from "./core/store.ts";
export * from "./core/results.ts";
export { formatOptionErrors, UserError } from "./core/errors.ts";
export {
  allocateTransitions,
  BatchSampler,
  concatTransitions,
  gatherTransitions,
  mixWithReal,
  realRowCount,
  sampleTransitions,
  validateTransitions,
} from "./core/transitions.ts";
export { datasetFingerprint, stableStringify, valueKey } from "./core/fingerprint.ts";
export { withLock } from "./core/lock.ts";
export type { Heartbeat, LockOptions, LockRecord } from "./core/lock.ts";
export { writeFileAtomic } from "./core/files.ts";
export {
  DatasetError,
  observationStats,
  readD4rl,
  toTransitions,
  validateD4rl,
  writeD4rl,
} from "./core/d4rl.ts";
export { builtinPlugins } from "./plugins/mod.ts";
export { writeReports } from "./reports/mod.ts";
export * from "./stats/mod.ts";
export * from "./core/analysis.ts";
