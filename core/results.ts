/**
 * The result of one grid cell, as written to the store. A cell's JSON holds
 * everything a report needs, so reports and merges never re-run anything.
 *
 * @module
 */
import { z } from "zod";
import { cellQualitySchema } from "./quality.ts";

/** Identity of one cell of the grid. */
export const cellKeySchema = z.object({
  dataset: z.string(),
  source: z.string(),
  agent: z.string(),
  seed: z.number().int().nonnegative(),
});

/** Identity of one cell of the grid. */
export type CellKey = z.infer<typeof cellKeySchema>;

/** One evaluation during training. */
export const evaluationSchema = z.object({
  /** Gradient steps taken when evaluated. */
  step: z.number().int().nonnegative(),
  /** Mean undiscounted return over the deterministic episodes. */
  meanReturn: z.number(),
  /** Mean D4RL normalised score ×100. */
  normalizedScore: z.number(),
  /** Per-episode normalised scores. */
  episodeScores: z.array(z.number()),
});

/** One evaluation during training. */
export type Evaluation = z.infer<typeof evaluationSchema>;

/** The stored result of one cell. */
/** Everything that determines a cell's numbers (see `cellIdentity` in `core/cell.ts`). */
export const cellIdentitySchema = z.object({
  cell: cellKeySchema,
  /** The data's content: a D4RL file's hash or a collected dataset's key. */
  data: z.string(),
  preset: z.string(),
  backend: z.string(),
  sourceOptions: z.record(z.string(), z.unknown()),
  agentOptions: z.record(z.string(), z.unknown()),
  version: z.string(),
});

/** Everything that determines a cell's numbers. */
export type CellIdentity = z.infer<typeof cellIdentitySchema>;

export const cellResultSchema = z.object({
  schemaVersion: z.literal(1),
  cell: cellKeySchema,
  /** Hash of everything that determines the cell's numbers (config, options, code version). */
  configHash: z.string(),
  /** What `configHash` hashes (absent in results from before it was recorded). */
  identity: cellIdentitySchema.optional(),
  preset: z.string(),
  backend: z.string(),
  computePath: z.string(),
  sourceOptions: z.record(z.string(), z.unknown()),
  agentOptions: z.record(z.string(), z.unknown()),
  /** Normalised score ×100 of the final evaluation: the number the tables report. */
  finalScore: z.number(),
  /** Mean return of the final evaluation. */
  finalReturn: z.number(),
  evaluations: z.array(evaluationSchema),
  /** Training losses, sampled along the run. */
  losses: z.array(z.object({ step: z.number(), metrics: z.record(z.string(), z.number()) })),
  /** Size of the training set of each generation (synthetic or real). */
  generations: z.array(z.object({ step: z.number(), transitions: z.number() })),
  /** The training data's quality beside held-out real data (absent in cells from before it was recorded). */
  quality: cellQualitySchema.optional(),
  /** Normalised scores to read the cell's against: a random policy, a zero return, the dataset's behaviour. */
  references: z.object({
    randomPolicy: z.number(),
    zeroReturn: z.number(),
    datasetBehavior: z.number(),
  }).optional(),
  /** The trained models the cell's data came from, by path and content hash. */
  artefacts: z.array(z.object({ kind: z.string(), path: z.string(), sha256: z.string() }))
    .optional(),
  /** Where the cell's data came from: origin, file, content hash or collection key, rows. */
  data: z.object({
    origin: z.enum(["d4rl-file", "collected"]),
    path: z.string(),
    sha256: z.string().optional(),
    key: z.string().optional(),
    rows: z.number().int().nonnegative(),
  }).optional(),
  timings: z.object({
    prepareSeconds: z.number(),
    generateSeconds: z.number(),
    trainSeconds: z.number(),
    evaluateSeconds: z.number(),
    totalSeconds: z.number(),
  }),
  versions: z.record(z.string(), z.string()),
  host: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
});

/** The stored result of one cell. */
export type CellResult = z.infer<typeof cellResultSchema>;

/** The cell's path inside a result folder: `cells/<dataset>/<source>/<agent>/seed-<n>.json`. */
export function cellPath(cell: CellKey): string {
  return `cells/${cell.dataset}/${cell.source}/${cell.agent}/seed-${cell.seed}.json`;
}

/** A readable, unique id of a cell, e.g. `maze2d-umaze/real/td3bc/seed-0`. */
/**
 * The cell a result path names (`cells/<dataset>/<source>/<agent>/seed-<n>.json`),
 * if it does: the inverse of {@link cellPath}.
 */
export function cellOfPath(path: string): CellKey | undefined {
  const match = /^cells\/([^/]+)\/([^/]+)\/([^/]+)\/seed-(\d+)\.json$/.exec(
    path.replaceAll("\\", "/"),
  );
  return match
    ? { dataset: match[1], source: match[2], agent: match[3], seed: Number(match[4]) }
    : undefined;
}

export function cellId(cell: CellKey): string {
  return `${cell.dataset}/${cell.source}/${cell.agent}/seed-${cell.seed}`;
}
