/**
 * One grid cell, start to finish: the source prepares and generates, the
 * agent trains on what it yields (regenerating on the source's schedule with
 * the agent's current policy), and deterministic episodes score it.
 *
 * The seeds of one (dataset, source, agent) may run as one stack (seeds as a
 * batch dimension, see `AgentStack`): each seed keeps everything of its own
 * (source, data, evaluator, records) in a {@link SeedRun}, and one training
 * loop drives every seed's run in lockstep, the agents taking one stacked
 * step for all. A cell alone is the stack of one, trained by its agent alone.
 *
 * @module
 */
import type { Reporter } from "./contracts/common.ts";
import type { Artefact, DataSource, GenerateRequest, SourceContext } from "./contracts/source.ts";
import {
  type AgentContext,
  type AgentPlugin,
  type AgentSchedule,
  type AgentStack,
  type StackMember,
  StackRefusedError,
} from "./contracts/agent.ts";
import type { Environment, EnvironmentPlugin, EnvironmentSpec } from "./contracts/environment.ts";
import { type GridConfig, hookTimeoutSeconds } from "./config.ts";
import type { PluginRegistry } from "./registry.ts";
import type { CellIdentity, CellKey, CellResult, Evaluation } from "./results.ts";
import type { D4rlDataset, TransitionBatch, Transitions } from "./types.ts";
import { BatchSampler, validateTransitions } from "./transitions.ts";
import { Evaluator } from "./evaluate.ts";
import { deriveSeed, Rng } from "./rng.ts";
import { join } from "./paths.ts";
import { observationStats, readD4rl, toTransitions } from "./d4rl.ts";
import { digest, stableStringify } from "./fingerprint.ts";
import { harnessVersion, runtimeVersions } from "./version.ts";
import { computeInfo, tf } from "./compute.ts";
import { QualityProbe } from "./quality.ts";
import { type DatasetIdentity, describeDataset, identityKey } from "./datasets.ts";
import { normalizedScore } from "./contracts/environment.ts";
import { applyControl, type Control, makeSource } from "./controls.ts";

/**
 * Everything that determines a cell's numbers: its key, its data's content
 * (`data`: {@link identityKey} of its dataset), the preset, backend and
 * options, and the harness version. Recorded in every result.
 */
export function cellIdentity(cell: CellKey, config: GridConfig, data: string): CellIdentity {
  return {
    cell,
    data,
    preset: config.preset,
    backend: config.backend,
    sourceOptions: config.sourceOptions[cell.source] ?? {},
    agentOptions: config.agentOptions[cell.agent] ?? {},
    version: harnessVersion,
  };
}

/** The hash of {@link cellIdentity}; a finished cell with another hash is not finished for this grid. */
export function cellConfigHash(cell: CellKey, config: GridConfig, data: string): Promise<string> {
  return identityHash(cellIdentity(cell, config, data));
}

/** The hash a result records of its {@link cellIdentity}. */
export function identityHash(identity: CellIdentity): Promise<string> {
  return digest(stableStringify(identity));
}

/**
 * The fields in which a stored result was made by another configuration
 * (preset, backend, options); a change of data or harness version is not
 * one (the cell is stale and runs again). Results from before identities
 * were recorded are compared on preset and backend.
 */
export function configurationChanges(stored: CellResult, wanted: CellIdentity): string[] {
  const had = stored.identity ?? { preset: stored.preset, backend: stored.backend };
  const fields = ["preset", "backend", "sourceOptions", "agentOptions"] as const;
  return fields
    .filter((field) => field in had)
    .filter((field) =>
      stableStringify((had as Record<string, unknown>)[field]) !== stableStringify(wanted[field])
    )
    .map((field) =>
      `${field} ${stableStringify((had as Record<string, unknown>)[field])} ≠ ${
        stableStringify(wanted[field])
      }`
    );
}

/** What a cell needs besides its key. */
export interface CellEnvironment {
  /** The grid's config. */
  config: GridConfig;
  /** Plugins. */
  registry: PluginRegistry;
  /** The dataset's HDF5 file (resolved beforehand, see `resolveDataset`). */
  datasetPath: string;
  /** What the data are (see `identifyDataset`), recorded with the result. */
  datasetIdentity: DatasetIdentity;
  /** Progress and logs. */
  reporter: Reporter;
}

/** What the seeds of one stack need besides their keys: a cell's environment, a reporter per cell. */
export interface StackEnvironment extends Omit<CellEnvironment, "reporter"> {
  /** Progress and logs of one of the cells. */
  reporterOf(cell: CellKey): Reporter;
  /**
   * Called once the agents exist, before any source runs: a stack the agent
   * plugin refuses is refused before this, when nothing has started.
   */
  onStarted?(): void;
}

const lossSamples = 50;

/** Runs one cell with its agent alone and returns its result (the caller stores it). */
export async function runCell(cell: CellKey, context: CellEnvironment): Promise<CellResult> {
  const [result] = await runCells([cell], { ...context, reporterOf: () => context.reporter });
  return result;
}

/**
 * Runs cells that differ in their seed alone, in lockstep, and returns their
 * results in order (the caller stores them). One cell trains its agent
 * alone; several train as one stack of the agent plugin (`createStack`,
 * member `k` for `cells[k]`), each on its own seed's batches, regenerated
 * data, evaluations and random streams, so each result is the one its cell
 * would have alone (bit for bit on the wasm backend's `blas` and `wasm`
 * kernel sets). Throws a {@link StackRefusedError} before `onStarted` where
 * the plugin has no stack or refuses its options; any other error fails
 * every cell.
 */
export async function runCells(
  cells: readonly CellKey[],
  context: StackEnvironment,
): Promise<CellResult[]> {
  const first = cells[0];
  if (!first) throw new Error("runCells: no cells");
  for (const cell of cells) {
    if (
      cell.dataset !== first.dataset || cell.source !== first.source || cell.agent !== first.agent
    ) {
      throw new Error("runCells: the cells of a stack differ in dataset, source or agent");
    }
  }
  if (new Set(cells.map((cell) => cell.seed)).size !== cells.length) {
    throw new Error("runCells: a seed is listed twice");
  }
  const { config, registry } = context;
  const startedAt = new Date();
  const clock = performance.now();

  const environmentPlugin = registry.environmentFor(first.dataset);
  const spec = environmentPlugin.spec(first.dataset);
  // One copy of the real data for every seed: sources and agents only read it.
  const dataset = await readD4rl(context.datasetPath);
  const agentPlugin = registry.agent(first.agent, config.agentOptions[first.agent]);
  const stats = observationStats(dataset);
  const agents = makeAgents(
    agentPlugin,
    cells.map((cell) => ({
      observationDim: spec.observationDim,
      actionDim: spec.actionDim,
      seed: deriveSeed(cell.seed, "agent"),
      preset: config.preset,
      observationStats: stats,
    })),
  );
  context.onStarted?.();
  const schedule = agents.schedule;
  const runs: SeedRun[] = [];
  // The agents' update, all seeds together; shared equally in each seed's timings.
  let trainSeconds = 0;
  try {
    for (const cell of cells) {
      runs.push(
        await SeedRun.open(
          cell,
          { config, registry, environmentPlugin, spec, dataset, schedule },
          context.reporterOf(cell),
        ),
      );
    }
    for (const run of runs) await run.start();

    const lossEvery = Math.max(1, Math.floor(schedule.trainingSteps / lossSamples));
    let since = performance.now();
    for (let step = 0; step < schedule.trainingSteps; step++) {
      for (const [index, run] of runs.entries()) {
        if (!run.regenerationDue(step)) continue;
        trainSeconds += seconds(since);
        await run.regenerate(step, agents.member(index));
        since = performance.now();
      }
      const metrics = agents.update(runs.map((run) => run.nextBatch()));
      runs.forEach((run, index) => run.recordLosses(step, metrics[index], lossEvery));
      const last = step + 1 === schedule.trainingSteps;
      if ((step + 1) % schedule.evaluateEvery === 0 || last) {
        trainSeconds += seconds(since);
        runs.forEach((run, index) => run.evaluate(step + 1, agents.member(index)));
        since = performance.now();
      }
      if (step % 100 === 0) {
        for (const run of runs) run.reporter.progress("train", step / schedule.trainingSteps);
        // Yields so timers run (a worker notices its scheduler died) during long training.
        await new Promise((done) => setTimeout(done, 0));
      }
    }
    runs.forEach((run, index) => {
      run.reporter.progress("train", 1);
      run.finish(agents.member(index));
    });
  } finally {
    for (const run of runs) run.close();
    agents.dispose();
  }
  // Time no seed's own phase accounts for (setup, the shared update) is shared equally.
  const elapsed = seconds(clock);
  const ownSeconds = runs.reduce((sum, run) => sum + run.ownSeconds(), 0);
  const shared = {
    trainSeconds: trainSeconds / runs.length,
    otherSeconds: (elapsed - ownSeconds) / runs.length,
  };
  const results: CellResult[] = [];
  for (const run of runs) {
    results.push(
      await run.result({
        datasetPath: context.datasetPath,
        datasetIdentity: context.datasetIdentity,
        agentOptions: agentPlugin.options,
        startedAt,
        shared,
      }),
    );
  }
  return results;
}

/** Seconds since a `performance.now()` reading. */
function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}

/**
 * The agents of a run, alike for one agent and a stack: a stack's contract,
 * member `k` training on `batches[k]` as the policy of seed `k`.
 */
type Agents = Omit<AgentStack, "size">;

/**
 * One context: the plugin's agent alone (itself the policy sources see, as
 * without stacks). Several: the plugin's stack, or a refusal where it has none.
 */
function makeAgents(plugin: AgentPlugin, contexts: AgentContext[]): Agents {
  if (contexts.length === 1) {
    const agent = plugin.create(contexts[0]);
    return {
      schedule: agent.schedule,
      update: ([batch]) => [agent.update(batch)],
      member: () => agent,
      dispose: () => agent.dispose(),
    };
  }
  if (!plugin.createStack) {
    throw new StackRefusedError(`agent '${plugin.name}' has no createStack`);
  }
  return plugin.createStack(contexts);
}

/** What the seeds of a run share, as a {@link SeedRun} needs it. */
interface RunSetting {
  config: GridConfig;
  registry: PluginRegistry;
  environmentPlugin: EnvironmentPlugin;
  spec: EnvironmentSpec;
  dataset: D4rlDataset;
  schedule: AgentSchedule;
}

/** What a {@link SeedRun}'s result takes from its whole run. */
interface RunRecord {
  datasetPath: string;
  datasetIdentity: DatasetIdentity;
  /** The agent plugin's options in effect. */
  agentOptions: Record<string, unknown>;
  startedAt: Date;
  /** Each seed's share of what the seeds did together. */
  shared: { trainSeconds: number; otherSeconds: number };
}

/**
 * One seed's part of a run: its source and the source's context, evaluator,
 * quality probe, control, batch sampler, current data, and everything its
 * cell's result records (generations, losses, evaluations, timings,
 * artefacts, references). The training loop drives it; the agent is not part
 * of it (the seed's policy is handed in wherever it is read).
 */
class SeedRun {
  /** The cell this seed's run is. */
  readonly cell: CellKey;
  /** The cell's progress and logs. */
  readonly reporter: Reporter;
  readonly #setting: RunSetting;
  readonly #source: DataSource;
  readonly #control: Control | undefined;
  readonly #sourceContext: SourceContext;
  readonly #evaluator: Evaluator;
  readonly #qualitySimulator: Environment;
  readonly #quality: QualityProbe;
  readonly #controlRng: Rng;
  readonly #evaluationSeed: number;
  readonly #references: CellResult["references"];
  readonly #sampler: BatchSampler;
  // The files this cell's data came from (trained models), by content.
  readonly #artefacts: Artefact[] = [];
  readonly #timings: CellResult["timings"] = {
    prepareSeconds: 0,
    generateSeconds: 0,
    trainSeconds: 0,
    evaluateSeconds: 0,
    totalSeconds: 0,
  };
  readonly #generations: CellResult["generations"] = [];
  readonly #losses: CellResult["losses"] = [];
  readonly #evaluations: Evaluation[] = [];
  readonly #lossSums: Record<string, number> = {};
  #summed = 0;
  // The harness's phase (prepare, generate, train, evaluate) names every
  // progress report; a source's own steps (a denoiser's training, its
  // sampling) are reported inside the phase that runs them.
  #phase = "prepare";
  #regenerateEvery = 0;
  #generation = 0;
  #data: Transitions | undefined;

  private constructor(
    cell: CellKey,
    setting: RunSetting,
    reporter: Reporter,
    made: {
      source: DataSource;
      control: Control | undefined;
      evaluator: Evaluator;
      qualitySimulator: Environment;
    },
  ) {
    const { config, environmentPlugin, spec, dataset, schedule } = setting;
    this.cell = cell;
    this.reporter = reporter;
    this.#setting = setting;
    this.#source = made.source;
    this.#control = made.control;
    this.#evaluator = made.evaluator;
    this.#qualitySimulator = made.qualitySimulator;
    const artefacts = this.#artefacts;
    this.#sourceContext = {
      datasetId: cell.dataset,
      dataset,
      environment: spec,
      seed: cell.seed,
      preset: config.preset,
      agentSteps: schedule.trainingSteps,
      cacheDir: join(config.cacheDir, "models"),
      reporter: {
        log: (message: string) => reporter.log(message),
        progress: (step: string, fraction: number) =>
          reporter.progress(`${this.#phase}: ${step}`, fraction),
      },
      recordArtefact(artefact) {
        if (
          !artefacts.some((known) =>
            known.path === artefact.path && known.sha256 === artefact.sha256
          )
        ) {
          artefacts.push(artefact);
        }
      },
    };
    this.#quality = new QualityProbe(
      toTransitions(dataset),
      made.qualitySimulator,
      deriveSeed(cell.seed, "quality"),
    );
    this.#controlRng = new Rng(deriveSeed(cell.seed, "control"));
    // Reference points for reading the score: a uniformly random policy on the
    // same episodes, a zero return, and the dataset's own behaviour.
    this.#evaluationSeed = deriveSeed(cell.seed, "evaluation");
    const randomRng = new Rng(deriveSeed(cell.seed, "random-policy"));
    const randomPolicy = (_observations: Float32Array, count: number) =>
      Float32Array.from({ length: count * spec.actionDim }, () => randomRng.range(-1, 1));
    this.#references = {
      randomPolicy: made.evaluator.evaluate(randomPolicy, this.#evaluationSeed, 0)
        .normalizedScore,
      zeroReturn: normalizedScore(0, spec.scoreReference),
      datasetBehavior: describeDataset(dataset, environmentPlugin, cell.dataset).normalizedScore,
    };
    this.#sampler = new BatchSampler(
      schedule.batchSize,
      spec.observationDim,
      spec.actionDim,
      new Rng(deriveSeed(cell.seed, "batches")),
    );
  }

  /** A seed's source, evaluator and quality probe, made; no source hook has run yet. */
  static async open(cell: CellKey, setting: RunSetting, reporter: Reporter): Promise<SeedRun> {
    const { config, registry, environmentPlugin, schedule } = setting;
    const { source, control } = makeSource(
      registry,
      cell.source,
      config.sourceOptions[cell.source],
    );
    let evaluator: Evaluator | undefined;
    let qualitySimulator: Environment | undefined;
    try {
      evaluator = await Evaluator.create(
        environmentPlugin,
        cell.dataset,
        schedule.evaluationEpisodes,
      );
      // The data-quality record runs on a simulator of its own, beside the evaluator's.
      qualitySimulator = await environmentPlugin.make(cell.dataset);
      return new SeedRun(cell, setting, reporter, {
        source,
        control,
        evaluator,
        qualitySimulator,
      });
    } catch (error) {
      evaluator?.close();
      qualitySimulator?.close();
      source.dispose?.();
      throw error;
    }
  }

  /** The source's `prepare`, then its first generation (no policy yet). */
  async start(): Promise<void> {
    const source = this.#source;
    const since = performance.now();
    this.reporter.progress("prepare", 0);
    await this.#withinTime(
      source.prepare?.(this.#sourceContext),
      `data source '${source.name}' prepare`,
    );
    this.#timings.prepareSeconds = seconds(since);
    this.#regenerateEvery = Math.max(
      0,
      Math.floor(source.regenerateEvery?.(this.#sourceContext) ?? 0),
    );
    this.#data = await this.#generate({ generation: 0 }, 0);
  }

  /** Whether the source regenerates before the update of `step`. */
  regenerationDue(step: number): boolean {
    return this.#regenerateEvery > 0 && step > 0 && step % this.#regenerateEvery === 0;
  }

  /** The next generation, guided by the seed's policy as it is at `step`. */
  async regenerate(step: number, policy: StackMember): Promise<void> {
    this.#generation += 1;
    this.#data = await this.#generate({ generation: this.#generation, policy }, step);
  }

  /** A batch of the current data from the seed's own sampler. */
  nextBatch(): TransitionBatch {
    return this.#sampler.sample(this.#data!);
  }

  /** Adds the metrics of `step`'s update; every `lossEvery` steps, records their average. */
  recordLosses(step: number, metrics: Record<string, number>, lossEvery: number): void {
    const sums = this.#lossSums;
    for (const [name, value] of Object.entries(metrics)) sums[name] = (sums[name] ?? 0) + value;
    this.#summed += 1;
    if ((step + 1) % lossEvery !== 0) return;
    const averaged = Object.fromEntries(
      Object.entries(sums).map(([name, total]) => [name, total / this.#summed]),
    );
    this.#losses.push({ step: step + 1, metrics: averaged });
    for (const name of Object.keys(sums)) delete sums[name];
    this.#summed = 0;
  }

  /** Deterministic episodes of the seed's policy after `step` updates, on its evaluation seed. */
  evaluate(step: number, policy: StackMember): void {
    const since = performance.now();
    this.reporter.progress("evaluate", step / this.#setting.schedule.trainingSteps);
    const evaluation = this.#evaluator.evaluate(
      (observations, count) => policy.act(observations, count, true),
      this.#evaluationSeed,
      step,
    );
    this.#evaluations.push(evaluation);
    this.#timings.evaluateSeconds += seconds(since);
    this.reporter.log(`step ${step}: normalised score ${evaluation.normalizedScore.toFixed(1)}`);
  }

  /** The data-quality records' final-policy likelihoods, from the trained policy. */
  finish(policy: StackMember): void {
    this.#quality.finish(policy);
  }

  /** Frees the simulators and the source. */
  close(): void {
    this.#evaluator.close();
    this.#qualitySimulator.close();
    this.#source.dispose?.();
  }

  /** Seconds of this seed's own phases (prepare, generate, evaluate). */
  ownSeconds(): number {
    const timings = this.#timings;
    return timings.prepareSeconds + timings.generateSeconds + timings.evaluateSeconds;
  }

  /** The cell's result, once the run has ended. */
  async result(run: RunRecord): Promise<CellResult> {
    const { config, dataset } = this.#setting;
    const cell = this.cell;
    const final = this.#evaluations[this.#evaluations.length - 1];
    const timings = {
      ...this.#timings,
      trainSeconds: run.shared.trainSeconds,
      totalSeconds: this.ownSeconds() + run.shared.otherSeconds,
    };
    const compute = computeInfo();
    const identity = cellIdentity(cell, config, identityKey(run.datasetIdentity));
    const source = this.#source;
    return {
      schemaVersion: 1,
      cell,
      configHash: await identityHash(identity),
      identity,
      data: { ...run.datasetIdentity, path: run.datasetPath, rows: dataset.size },
      preset: config.preset,
      backend: config.backend,
      computePath: compute?.path ?? config.backend,
      sourceOptions: this.#control ? { ...source.options, control: this.#control } : source.options,
      agentOptions: run.agentOptions,
      finalScore: final.normalizedScore,
      finalReturn: final.meanReturn,
      evaluations: this.#evaluations,
      losses: this.#losses,
      generations: this.#generations,
      quality: this.#quality.cellQuality(),
      artefacts: this.#artefacts,
      references: this.#references,
      timings,
      versions: { ...runtimeVersions(), tfjs: tf.version.tfjs },
      host: Deno.hostname(),
      startedAt: run.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
    };
  }

  /** One generation of the source, checked, controlled and measured. */
  async #generate(request: GenerateRequest, step: number): Promise<Transitions> {
    const { spec } = this.#setting;
    const source = this.#source;
    const since = performance.now();
    this.#phase = "generate";
    this.reporter.progress("generate", 0);
    const generated = await this.#withinTime(
      source.generate(this.#sourceContext, request),
      `data source '${source.name}' generate (generation ${request.generation})`,
    );
    validateTransitions(
      generated,
      spec.observationDim,
      spec.actionDim,
      `data source '${source.name}' (generation ${request.generation})`,
    );
    const transitions = this.#control
      ? applyControl(this.#control, generated, this.#qualitySimulator, this.#controlRng)
      : generated;
    this.#generations.push({ step, transitions: transitions.size });
    this.#quality.measure(transitions, request.generation, step, request.policy);
    this.#timings.generateSeconds += seconds(since);
    return transitions;
  }

  /** A plugin hook's promise, or an error naming the hook once it has run too long. */
  #withinTime<T>(work: Promise<T> | T, hook: string): Promise<T> {
    const timeoutSeconds = hookTimeoutSeconds(this.#setting.config);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${hook} did not finish within ${timeoutSeconds} s (hookTimeoutSeconds in the grid config)`,
            ),
          ),
        timeoutSeconds * 1000,
      );
    });
    return Promise.race([Promise.resolve(work), timeout]).finally(() => clearTimeout(timer));
  }
}
