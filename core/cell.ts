/**
 * One grid cell, start to finish: the source prepares and generates, the
 * agent trains on what it yields (regenerating on the source's schedule with
 * the agent's current policy), and deterministic episodes score it.
 *
 * @module
 */
import type { Reporter } from "./contracts/common.ts";
import type { Artefact, GenerateRequest, SourceContext } from "./contracts/source.ts";
import { type GridConfig, hookTimeoutSeconds } from "./config.ts";
import type { PluginRegistry } from "./registry.ts";
import type { CellIdentity, CellKey, CellResult, Evaluation } from "./results.ts";
import type { Transitions } from "./types.ts";
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
import { applyControl, makeSource } from "./controls.ts";

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

const lossSamples = 50;

/** Runs one cell and returns its result (the caller stores it). */
export async function runCell(cell: CellKey, context: CellEnvironment): Promise<CellResult> {
  const { config, registry, reporter } = context;
  const timeoutSeconds = hookTimeoutSeconds(config);
  /** A plugin hook's promise, or an error naming the hook once it has run too long. */
  const withinTime = <T>(work: Promise<T> | T, hook: string): Promise<T> => {
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
  };
  const startedAt = new Date();
  const clock = performance.now();
  const timings = {
    prepareSeconds: 0,
    generateSeconds: 0,
    trainSeconds: 0,
    evaluateSeconds: 0,
    totalSeconds: 0,
  };
  const seconds = (since: number) => (performance.now() - since) / 1000;

  const environmentPlugin = registry.environmentFor(cell.dataset);
  const spec = environmentPlugin.spec(cell.dataset);
  const dataset = await readD4rl(context.datasetPath);
  const { source, control } = makeSource(
    registry,
    cell.source,
    config.sourceOptions[cell.source],
  );
  const agentPlugin = registry.agent(cell.agent, config.agentOptions[cell.agent]);
  const agent = agentPlugin.create({
    observationDim: spec.observationDim,
    actionDim: spec.actionDim,
    seed: deriveSeed(cell.seed, "agent"),
    preset: config.preset,
    observationStats: observationStats(dataset),
  });
  const schedule = agent.schedule;
  // The files this cell's data came from (trained models), by content.
  const artefacts: Artefact[] = [];
  // The harness's phase (prepare, generate, train, evaluate) names every
  // progress report; a source's own steps (a denoiser's training, its
  // sampling) are reported inside the phase that runs them.
  let phase = "prepare";
  const sourceReporter = {
    log: (message: string) => reporter.log(message),
    progress: (step: string, fraction: number) => reporter.progress(`${phase}: ${step}`, fraction),
  };
  const sourceContext: SourceContext = {
    datasetId: cell.dataset,
    dataset,
    environment: spec,
    seed: cell.seed,
    preset: config.preset,
    agentSteps: schedule.trainingSteps,
    cacheDir: join(config.cacheDir, "models"),
    reporter: sourceReporter,
    recordArtefact(artefact) {
      if (
        !artefacts.some((known) => known.path === artefact.path && known.sha256 === artefact.sha256)
      ) {
        artefacts.push(artefact);
      }
    },
  };
  const evaluator = await Evaluator.create(
    environmentPlugin,
    cell.dataset,
    schedule.evaluationEpisodes,
  );
  // The data-quality record runs on a simulator of its own, beside the evaluator's.
  const qualitySimulator = await environmentPlugin.make(cell.dataset);
  const quality = new QualityProbe(
    toTransitions(dataset),
    qualitySimulator,
    deriveSeed(cell.seed, "quality"),
  );
  const controlRng = new Rng(deriveSeed(cell.seed, "control"));
  // Reference points for reading the score: a uniformly random policy on the
  // same episodes, a zero return, and the dataset's own behaviour.
  const evaluationSeed = deriveSeed(cell.seed, "evaluation");
  const randomRng = new Rng(deriveSeed(cell.seed, "random-policy"));
  const randomPolicy = (_observations: Float32Array, count: number) =>
    Float32Array.from({ length: count * spec.actionDim }, () => randomRng.range(-1, 1));
  const references = {
    randomPolicy: evaluator.evaluate(randomPolicy, evaluationSeed, 0).normalizedScore,
    zeroReturn: normalizedScore(0, spec.scoreReference),
    datasetBehavior: describeDataset(dataset, environmentPlugin, cell.dataset).normalizedScore,
  };
  const evaluations: Evaluation[] = [];
  const losses: CellResult["losses"] = [];
  const generations: CellResult["generations"] = [];
  try {
    let since = performance.now();
    reporter.progress("prepare", 0);
    await withinTime(source.prepare?.(sourceContext), `data source '${source.name}' prepare`);
    timings.prepareSeconds = seconds(since);

    const generate = async (request: GenerateRequest, step: number): Promise<Transitions> => {
      const started = performance.now();
      phase = "generate";
      reporter.progress("generate", 0);
      const generated = await withinTime(
        source.generate(sourceContext, request),
        `data source '${source.name}' generate (generation ${request.generation})`,
      );
      validateTransitions(
        generated,
        spec.observationDim,
        spec.actionDim,
        `data source '${source.name}' (generation ${request.generation})`,
      );
      const transitions = control
        ? applyControl(control, generated, qualitySimulator, controlRng)
        : generated;
      generations.push({ step, transitions: transitions.size });
      quality.measure(transitions, request.generation, step, request.policy);
      timings.generateSeconds += seconds(started);
      return transitions;
    };

    const regenerateEvery = Math.max(0, Math.floor(source.regenerateEvery?.(sourceContext) ?? 0));
    let generation = 0;
    let data = await generate({ generation }, 0);
    const sampler = new BatchSampler(
      schedule.batchSize,
      spec.observationDim,
      spec.actionDim,
      new Rng(deriveSeed(cell.seed, "batches")),
    );
    const policy = (observations: Float32Array, count: number) =>
      agent.act(observations, count, true);
    const lossEvery = Math.max(1, Math.floor(schedule.trainingSteps / lossSamples));
    const sums: Record<string, number> = {};
    let summed = 0;
    since = performance.now();
    for (let step = 0; step < schedule.trainingSteps; step++) {
      if (regenerateEvery > 0 && step > 0 && step % regenerateEvery === 0) {
        timings.trainSeconds += seconds(since);
        generation += 1;
        data = await generate({ generation, policy: agent }, step);
        since = performance.now();
      }
      const metrics = agent.update(sampler.sample(data));
      for (const [name, value] of Object.entries(metrics)) sums[name] = (sums[name] ?? 0) + value;
      summed += 1;
      if ((step + 1) % lossEvery === 0) {
        const averaged = Object.fromEntries(
          Object.entries(sums).map(([name, total]) => [name, total / summed]),
        );
        losses.push({ step: step + 1, metrics: averaged });
        for (const name of Object.keys(sums)) delete sums[name];
        summed = 0;
      }
      const last = step + 1 === schedule.trainingSteps;
      if ((step + 1) % schedule.evaluateEvery === 0 || last) {
        timings.trainSeconds += seconds(since);
        const evaluationStart = performance.now();
        reporter.progress("evaluate", (step + 1) / schedule.trainingSteps);
        const evaluation = evaluator.evaluate(policy, evaluationSeed, step + 1);
        evaluations.push(evaluation);
        timings.evaluateSeconds += seconds(evaluationStart);
        reporter.log(
          `step ${step + 1}: normalised score ${evaluation.normalizedScore.toFixed(1)}`,
        );
        since = performance.now();
      }
      if (step % 100 === 0) {
        reporter.progress("train", step / schedule.trainingSteps);
        // Yields so timers run (a worker notices its scheduler died) during long training.
        await new Promise((done) => setTimeout(done, 0));
      }
    }
    reporter.progress("train", 1);
    quality.finish(agent);
  } finally {
    evaluator.close();
    qualitySimulator.close();
    agent.dispose();
    source.dispose?.();
  }
  const final = evaluations[evaluations.length - 1];
  timings.totalSeconds = seconds(clock);
  const compute = computeInfo();
  const identity = cellIdentity(cell, config, identityKey(context.datasetIdentity));
  return {
    schemaVersion: 1,
    cell,
    configHash: await identityHash(identity),
    identity,
    data: { ...context.datasetIdentity, path: context.datasetPath, rows: dataset.size },
    preset: config.preset,
    backend: config.backend,
    computePath: compute?.path ?? config.backend,
    sourceOptions: control ? { ...source.options, control } : source.options,
    agentOptions: agentPlugin.options,
    finalScore: final.normalizedScore,
    finalReturn: final.meanReturn,
    evaluations,
    losses,
    generations,
    quality: quality.cellQuality(),
    artefacts,
    references,
    timings,
    versions: { ...runtimeVersions(), tfjs: tf.version.tfjs },
    host: Deno.hostname(),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
  };
}
