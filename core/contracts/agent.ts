/**
 * The agent plugin contract: an offline RL algorithm that trains on whatever
 * transitions a data source yields and exposes its target policy.
 *
 * @module
 */
import { z } from "zod";
import { hook, type PresetName } from "./common.ts";
import type { PolicyView, TransitionBatch, VectorStats } from "../types.ts";

/** What an agent is created with. */
export interface AgentContext {
  /** Width of one observation. */
  observationDim: number;
  /** Width of one action (each in [−1, 1]). */
  actionDim: number;
  /** Seed of initialisation and of every random draw. */
  seed: number;
  /** Size preset. */
  preset: PresetName;
  /** Observation statistics of the real dataset, for optional input normalisation. */
  observationStats?: VectorStats;
}

/** Training schedule an agent asks of the core for a preset. */
export interface AgentSchedule {
  /** Gradient steps in all. */
  trainingSteps: number;
  /** Transitions per gradient step. */
  batchSize: number;
  /** Gradient steps between evaluations (the last step is always evaluated). */
  evaluateEvery: number;
  /** Deterministic episodes per evaluation. */
  evaluationEpisodes: number;
}

/** One agent being trained. Also the {@link PolicyView} that guidance reads. */
export interface Agent extends PolicyView {
  /** Training schedule for this agent's preset. */
  readonly schedule: AgentSchedule;
  /** One gradient step on a batch; returns scalar metrics (losses) for the log. */
  update(batch: TransitionBatch): Record<string, number>;
  /** Actions for `count` observations; `deterministic` gives the evaluation (mean) action. */
  act(observations: Float32Array, count: number, deterministic: boolean): Float32Array;
  /** Frees every tensor the agent holds. */
  dispose(): void;
}

/** One member of an {@link AgentStack}: it acts and reads as its agent alone would. */
export interface StackMember extends PolicyView {
  /** As {@link Agent.act}, for this member's policy and with this member's noise. */
  act(observations: Float32Array, count: number, deterministic: boolean): Float32Array;
}

/**
 * Agents of one plugin for several seeds, trained as one stacked computation
 * (seeds as a batch dimension): parameters, optimiser state and target
 * networks are stacked, and each member learns what its agent alone would
 * learn from the same batches (its own initialisation and randomness, from
 * its own context's seed).
 */
export interface AgentStack {
  /** Number of members (seeds). */
  readonly size: number;
  /** The members' training schedule (one for all: they share the preset and options). */
  readonly schedule: AgentSchedule;
  /** One gradient step of every member, member `k` on `batches[k]`; each member's metrics. */
  update(batches: readonly TransitionBatch[]): Record<string, number>[];
  /** Member `index`'s policy. */
  member(index: number): StackMember;
  /** Frees every tensor the stack holds. */
  dispose(): void;
}

/** An agent plugin: `name` plus `create`, made by a factory that takes the agent's options. */
export interface AgentPlugin {
  /** Plugin name, e.g. `td3bc`. */
  name: string;
  /** Options in effect (hyperparameters), recorded with every result. */
  options: Record<string, unknown>;
  /** Makes a fresh agent. */
  create(context: AgentContext): Agent;
  /**
   * Makes one stack of fresh agents, one per context (same dimensions and
   * preset, their own seeds), where the plugin can train seeds stacked.
   * Throws a {@link StackRefusedError} where its options cannot be stacked;
   * the core then trains the seeds one at a time.
   */
  createStack?(contexts: readonly AgentContext[]): AgentStack;
}

/**
 * `createStack`'s refusal of options it cannot stack (e.g. an update the
 * stack does not implement): not a failure, the seeds run unstacked instead.
 * Recognised by {@link isStackRefusal}.
 */
export class StackRefusedError extends Error {
  /** A refusal whose message says what cannot be stacked. */
  constructor(message: string) {
    super(message);
    this.name = "StackRefusedError";
  }
}

/**
 * Whether an error is a {@link StackRefusedError}; by name, so that a plugin
 * loaded by path with its own copy of this module is recognised too.
 */
export function isStackRefusal(error: unknown): error is Error {
  return error instanceof Error && error.name === "StackRefusedError";
}

/** The shape every agent plugin must have; checked when a plugin is loaded. */
export const agentPluginSchema = z.object({
  name: z.string().min(1),
  options: z.record(z.string(), z.unknown()),
  create: hook("create(context) → Agent"),
});

/** A factory that makes an agent plugin from user options (validated by the factory's zod schema). */
export type AgentFactory = (options?: unknown) => AgentPlugin;
