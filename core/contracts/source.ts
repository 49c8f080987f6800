/**
 * The data-source plugin contract: where an agent's training transitions come
 * from. `real` returns the offline dataset; generative sources fit a model in
 * `prepare` and sample from it in `generate`.
 *
 * A source never reaches into an agent: the core passes the agent's
 * {@link PolicyView} to `generate`, and an agent never knows where its data
 * came from.
 *
 * @module
 */
import { z } from "zod";
import { hook, type PresetName, type Reporter } from "./common.ts";
import type { D4rlDataset, PolicyView, Transitions } from "../types.ts";
import type { EnvironmentSpec } from "./environment.ts";

/** Everything a source may use; the same object is passed to `prepare` and every `generate`. */
export interface SourceContext {
  /** Dataset id, e.g. `maze2d-umaze`. */
  datasetId: string;
  /** The real offline dataset. */
  dataset: D4rlDataset;
  /** The dataset's environment. */
  environment: EnvironmentSpec;
  /** Seed of the cell; a source's model for (dataset, options, seed) is the same model. */
  seed: number;
  /** Size preset. */
  preset: PresetName;
  /** Gradient steps the agent will take in all. */
  agentSteps: number;
  /** A folder for artefacts keyed by content (trained models); shared across cells and shards. */
  cacheDir: string;
  /** Progress and log lines. */
  reporter: Reporter;
  /**
   * Records a file the source's data came from (a trained model, read or
   * written), so the cell can say which artefacts made its numbers.
   */
  recordArtefact?(artefact: Artefact): void;
}

/** A file a cell's data came from, by content. */
export interface Artefact {
  /** What it is, e.g. `denoiser` or `pets-ensemble`. */
  kind: string;
  /** Where it lies. */
  path: string;
  /** SHA-256 of its bytes. */
  sha256: string;
}

/** What `generate` is asked for. */
export interface GenerateRequest {
  /** 0 for the first call, then 1, 2, … at each regeneration. */
  generation: number;
  /** The agent's current target policy; absent on generation 0 (no policy yet). */
  policy?: PolicyView;
}

/** A data-source plugin: `name` plus its hooks, made by a factory that takes the source's options. */
export interface DataSource {
  /** Plugin name, e.g. `policy-guided`. */
  name: string;
  /** Options in effect, recorded with every result. */
  options: Record<string, unknown>;
  /**
   * Agent steps between calls to `generate`; absent or 0 means the first
   * generation serves the whole run.
   */
  regenerateEvery?(context: SourceContext): number;
  /** Fits whatever the source needs on the real dataset (cached by content). */
  prepare?(context: SourceContext): Promise<void>;
  /** The transitions to train on from now until the next generation. */
  generate(context: SourceContext, request: GenerateRequest): Promise<Transitions>;
  /** Frees models and tensors. */
  dispose?(): void;
}

/** The shape every data source must have; checked when a plugin is loaded. */
export const dataSourceSchema = z.object({
  name: z.string().min(1),
  options: z.record(z.string(), z.unknown()),
  regenerateEvery: hook("regenerateEvery(context) → number").optional(),
  prepare: hook("prepare(context) → Promise<void>").optional(),
  generate: hook("generate(context, request) → Promise<Transitions>"),
  dispose: hook("dispose()").optional(),
});

/** A factory that makes a data source from user options (validated by the factory's zod schema). */
export type DataSourceFactory = (options?: unknown) => DataSource;
