/**
 * The analysis's providers from the harness's own pieces: datasets resolved
 * as the benchmark resolves them (a D4RL file, or one collected and cached),
 * simulators and agents from the plugin registry, and the diffusion and PETS
 * models of the `policy-guided` and `pets` sources (shared caches).
 *
 * @module
 */
import type { PluginRegistry } from "../core/registry.ts";
import type { PresetName, Reporter } from "../core/contracts/common.ts";
import { silentReporter } from "../core/contracts/common.ts";
import { loadDataset, resolveDataset } from "../core/datasets.ts";
import { deriveSeed, Rng } from "../core/rng.ts";
import { BatchSampler } from "../core/transitions.ts";
import type { D4rlDataset } from "../core/types.ts";
import { observationStats, toTransitions } from "../core/d4rl.ts";
import { analysisPresets, type AnalysisProviders, type TargetPolicy } from "./analyze.ts";
import { diffusionTrajectoryModel } from "./diffusion_model.ts";
import { petsTrajectoryModel } from "./pets_model.ts";

/** What {@link harnessProviders} needs. */
export interface HarnessProviderOptions {
  /** Registry holding the environment plugins and the target policies' agent. */
  registry: PluginRegistry;
  /** Folders searched for D4RL files. */
  dataDirs: string[];
  /** Cache folder (collected datasets, trained models). */
  cacheDir: string;
  /** Size preset of datasets, agents and models. */
  preset: PresetName;
  /** Seed of dataset collection (as the benchmark's). */
  datasetSeed?: number;
  /** Agent whose policy is the target (the paper: IQL). */
  agent?: string;
  /** Options of that agent. */
  agentOptions?: unknown;
  /** Gradient steps of each target policy (absent: the analysis preset's, else the agent's schedule). */
  targetSteps?: number;
  /** Seed of the target policies' training. */
  targetSeed?: number;
  /** Options of the diffusion model (as the `policy-guided` source takes them). */
  diffusionOptions?: unknown;
  /** Options of the PETS model (as the `pets` source takes them). */
  petsOptions?: unknown;
  /** Progress and log lines. */
  reporter?: Reporter;
}

/** Providers that use the harness's datasets, plugins and model caches. */
export function harnessProviders(options: HarnessProviderOptions): AnalysisProviders {
  const reporter = options.reporter ?? silentReporter;
  const loaded = new Map<string, Promise<D4rlDataset>>();
  return {
    dataset(id) {
      if (!loaded.has(id)) {
        loaded.set(
          id,
          (async () => {
            const plugin = options.registry.environmentFor(id);
            const record = await resolveDataset(plugin, id, {
              dataDirs: options.dataDirs,
              cacheDir: options.cacheDir,
              preset: options.preset,
              seed: options.datasetSeed ?? 0,
              log: (message) => reporter.log(message),
              onProgress: (fraction) => reporter.progress(`collect ${id}`, fraction),
            });
            return await loadDataset(record);
          })(),
        );
      }
      return loaded.get(id)!;
    },
    environment(id) {
      return options.registry.environmentFor(id).make(id);
    },
    targetPolicy(id, dataset) {
      const seed = deriveSeed(options.targetSeed ?? 0, `analysis-target-${id}`);
      const plugin = options.registry.agent(options.agent ?? "iql", options.agentOptions);
      const agent = plugin.create({
        observationDim: dataset.observationDim,
        actionDim: dataset.actionDim,
        seed,
        preset: options.preset,
        observationStats: observationStats(dataset),
      });
      const transitions = toTransitions(dataset);
      const sampler = new BatchSampler(
        agent.schedule.batchSize,
        dataset.observationDim,
        dataset.actionDim,
        new Rng(seed),
      );
      const steps = options.targetSteps ?? analysisPresets[options.preset].targetSteps ??
        agent.schedule.trainingSteps;
      for (let step = 0; step < steps; step++) {
        agent.update(sampler.sample(transitions));
        if (step % 200 === 0) reporter.progress(`train ${plugin.name} on ${id}`, step / steps);
      }
      const policy: TargetPolicy = {
        actionDistribution: (observations, count) => agent.actionDistribution(observations, count),
        dispose: () => agent.dispose(),
      };
      return Promise.resolve(policy);
    },
    diffusion(context) {
      return diffusionTrajectoryModel(context, options.diffusionOptions);
    },
    pets(context, steps) {
      return petsTrajectoryModel(context, steps, options.petsOptions);
    },
  };
}
