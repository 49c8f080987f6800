/**
 * The synthetic-trajectory analysis of the paper's Section 5.3.
 *
 * Generative models (trajectory diffusion and PETS) are fitted on one dataset
 * (halfcheetah-medium) for several model seeds; target policies are trained
 * on other datasets (halfcheetah-random, -medium, -expert). Then, per seed and
 * target policy:
 * - Figure 5: the mean log-likelihood of synthetic actions under the target
 *   policy, for diffusion guided by that policy at each λ (λ = 0 is
 *   unguided), and for PETS rolling that policy out.
 * - Figure 6: the dynamics error at each step, replaying each synthetic
 *   trajectory's actions in the simulator from its first state, for
 *   policy-guided diffusion at λ = 1, unguided diffusion and PETS.
 * Means are over trajectories within a seed; standard errors are over seeds.
 *
 * The models, policies and simulators come from {@link AnalysisProviders},
 * so the analysis runs on any plugins that offer them.
 *
 * @module
 */
import { z } from "zod";
import {
  analysisFileName,
  type DynamicsError,
  dynamicsErrorSchema,
  type TrajectoryLikelihood,
  trajectoryLikelihoodSchema,
} from "../core/analysis.ts";
import {
  type PresetName,
  presetNames,
  type Reporter,
  silentReporter,
} from "../core/contracts/common.ts";
import type { Environment } from "../core/contracts/environment.ts";
import type { SourceContext } from "../core/contracts/source.ts";
import { formatZodIssues, UserError } from "../core/errors.ts";
import { writeJsonAtomic } from "../core/files.ts";
import { deriveSeed } from "../core/rng.ts";
import type { D4rlDataset, PolicyView } from "../core/types.ts";
import { estimateMean } from "../stats/summary.ts";
import {
  meanActionLogLikelihood,
  replayDynamicsError,
  type SyntheticTrajectories,
} from "./trajectories.ts";

/** What a trajectory model is asked for. */
export interface SampleRequest {
  /** Target policy: diffusion's guide, PETS's actor. */
  policy: PolicyView;
  /** Guidance coefficient λ (diffusion only; 0 is unguided). */
  guidance: number;
  /** Trajectories to make. */
  count: number;
  /** Seed of the draws. */
  seed: number;
}

/** A fitted generative model of one seed that makes synthetic trajectories. */
export interface TrajectoryModel {
  /** Samples trajectories. */
  sample(request: SampleRequest): Promise<SyntheticTrajectories>;
  /** Frees the model. */
  dispose?(): void;
}

/** A target policy with an optional release of its resources. */
export interface TargetPolicy extends PolicyView {
  /** Frees the policy. */
  dispose?(): void;
}

/** Where the analysis gets its data, policies, models and simulators. */
export interface AnalysisProviders {
  /** A dataset by id. */
  dataset(id: string): Promise<D4rlDataset>;
  /** A simulator of a dataset's environment (with `resetToObservation`). */
  environment(id: string): Promise<Environment>;
  /** A target policy trained on a dataset. */
  targetPolicy(id: string, dataset: D4rlDataset): Promise<TargetPolicy>;
  /** A trajectory diffusion model fitted in the given context (one seed). */
  diffusion(context: SourceContext): Promise<TrajectoryModel>;
  /** A PETS model fitted in the given context, rolling out `steps` steps. */
  pets(context: SourceContext, steps: number): Promise<TrajectoryModel>;
}

/** Sizes of the analysis that a preset sets. */
export interface AnalysisSizes {
  /** Model seeds. */
  seeds: number;
  /** Synthetic trajectories per model seed and setting. */
  trajectories: number;
  /** Gradient steps of each target policy; absent: the agent's own schedule for the preset. */
  targetSteps?: number;
}

/**
 * Per-preset sizes of the analysis; `paper` is the paper's (4 diffusion seeds,
 * 2048 trajectories, fully trained targets). `quick` trains each target policy
 * for 2,000 steps so the whole analysis runs in about 20 minutes on 2 cores.
 */
export const analysisPresets: Record<PresetName, AnalysisSizes> = {
  smoke: { seeds: 2, trajectories: 16 },
  quick: { seeds: 2, trajectories: 128, targetSteps: 2_000 },
  paper: { seeds: 4, trajectories: 2048 },
};

/** Options of {@link analyze}; defaults are the paper's setting. */
export const analyzeOptionsSchema = z.strictObject({
  /** Folder of the run; results go to `<resultDir>/analysis/`. */
  resultDir: z.string().min(1),
  /** Cache folder shared with the benchmark (fitted models). */
  cacheDir: z.string().min(1),
  /** Size preset. */
  preset: z.enum(presetNames).default("quick"),
  /** Dataset the generative models are fitted on. */
  dataset: z.string().min(1).default("halfcheetah-medium"),
  /** Datasets the target policies are trained on. */
  targets: z.array(z.string().min(1)).min(1).default([
    "halfcheetah-random",
    "halfcheetah-medium",
    "halfcheetah-expert",
  ]),
  /** Guidance coefficients of Figure 5. */
  guidances: z.array(z.number().nonnegative()).min(1).default([0, 0.25, 0.5, 1, 2]),
  /** Guidance coefficient of policy-guided diffusion in Figure 6. */
  guidedCoefficient: z.number().positive().default(1),
  /** Model seeds (absent: the preset's count, seeds 0, 1, …). */
  seeds: z.array(z.number().int().nonnegative()).min(1).optional(),
  /** Synthetic trajectories per model seed and setting (absent: the preset's). */
  trajectories: z.number().int().positive().optional(),
  /** Rollout steps of Figure 6. */
  steps: z.number().int().positive().default(16),
  /** Agent steps recorded in the source context (sources may size themselves by it). */
  agentSteps: z.number().int().positive().default(1),
});

/** Options of {@link analyze}. */
export type AnalyzeOptions = z.input<typeof analyzeOptionsSchema>;

/** What {@link analyze} wrote. */
export interface AnalysisOutput {
  /** Figure 5's numbers. */
  likelihood: TrajectoryLikelihood;
  /** Figure 6's numbers. */
  dynamics: DynamicsError;
  /** The files written. */
  paths: string[];
}

function estimate(values: number[]): { mean: number; standardError: number | null } {
  const summary = estimateMean(values);
  return {
    mean: summary.mean,
    standardError: Number.isFinite(summary.standardError) ? summary.standardError : null,
  };
}

function estimateSteps(perSeed: number[][]): { mean: number[]; standardError: (number | null)[] } {
  const steps = Math.min(...perSeed.map((errors) => errors.length));
  const mean: number[] = [];
  const standardError: (number | null)[] = [];
  for (let t = 0; t < steps; t++) {
    const value = estimate(perSeed.map((errors) => errors[t]));
    mean.push(value.mean);
    standardError.push(value.standardError);
  }
  return { mean, standardError };
}

/**
 * Runs the Section 5.3 analysis and writes `trajectory-likelihood-<dataset>.json`
 * and `dynamics-error-<dataset>.json` into `<resultDir>/analysis/`.
 */
export async function analyze(
  options: AnalyzeOptions,
  providers: AnalysisProviders,
  reporter: Reporter = silentReporter,
): Promise<AnalysisOutput> {
  const parsed = analyzeOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new UserError(`invalid analysis options:\n${formatZodIssues("analyze", parsed.error)}`);
  }
  const settings = parsed.data;
  const sizes = analysisPresets[settings.preset];
  const seeds = settings.seeds ?? Array.from({ length: sizes.seeds }, (_, i) => i);
  const count = settings.trajectories ?? sizes.trajectories;
  const guidances = [...new Set([...settings.guidances])].sort((a, b) => a - b);

  const dataset = await providers.dataset(settings.dataset);
  const environment = await providers.environment(settings.dataset);
  const targets: { id: string; policy: TargetPolicy }[] = [];
  for (const id of settings.targets) {
    reporter.log(`analyze: target policy on ${id}`);
    const targetData = id === settings.dataset ? dataset : await providers.dataset(id);
    targets.push({ id, policy: await providers.targetPolicy(id, targetData) });
  }

  // likelihood[target][guidance] and errors[target][series] hold one value per seed.
  const diffusionLikelihood = new Map<string, Map<number, number[]>>();
  const petsLikelihood = new Map<string, number[]>();
  const dynamicsErrors = new Map<string, Map<string, number[][]>>();
  for (const { id } of targets) {
    diffusionLikelihood.set(id, new Map(guidances.map((guidance) => [guidance, []])));
    petsLikelihood.set(id, []);
    dynamicsErrors.set(id, new Map([["policy-guided", []], ["unguided", []], ["pets", []]]));
  }

  const extraSamples = (guidances.includes(0) ? 0 : 1) +
    (guidances.includes(settings.guidedCoefficient) ? 0 : 1);
  const totalWork = seeds.length * targets.length * (guidances.length + extraSamples + 1);
  let done = 0;
  const advance = () => reporter.progress("analyze", ++done / totalWork);
  try {
    for (const seed of seeds) {
      const context: SourceContext = {
        datasetId: settings.dataset,
        dataset,
        environment: environment.spec,
        seed,
        preset: settings.preset,
        agentSteps: settings.agentSteps,
        cacheDir: settings.cacheDir,
        reporter,
      };
      reporter.log(`analyze: fitting models for seed ${seed}`);
      const diffusion = await providers.diffusion(context);
      const pets = await providers.pets(context, settings.steps);
      try {
        for (const { id, policy } of targets) {
          const errors = dynamicsErrors.get(id)!;
          for (const guidance of guidances) {
            const trajectories = await diffusion.sample({
              policy,
              guidance,
              count,
              seed: deriveSeed(seed, `analysis-diffusion-${id}-${guidance}`),
            });
            diffusionLikelihood.get(id)!.get(guidance)!.push(
              meanActionLogLikelihood(trajectories, policy),
            );
            if (guidance === 0) {
              errors.get("unguided")!.push(
                replayDynamicsError(trajectories, environment, settings.steps),
              );
            }
            if (guidance === settings.guidedCoefficient) {
              errors.get("policy-guided")!.push(
                replayDynamicsError(trajectories, environment, settings.steps),
              );
            }
            advance();
          }
          for (
            const [series, guidance] of [["unguided", 0], [
              "policy-guided",
              settings.guidedCoefficient,
            ]] as const
          ) {
            if (guidances.includes(guidance)) continue;
            const trajectories = await diffusion.sample({
              policy,
              guidance,
              count,
              seed: deriveSeed(seed, `analysis-diffusion-${id}-${guidance}`),
            });
            errors.get(series)!.push(
              replayDynamicsError(trajectories, environment, settings.steps),
            );
            advance();
          }
          const rollouts = await pets.sample({
            policy,
            guidance: 0,
            count,
            seed: deriveSeed(seed, `analysis-pets-${id}`),
          });
          petsLikelihood.get(id)!.push(meanActionLogLikelihood(rollouts, policy, settings.steps));
          errors.get("pets")!.push(replayDynamicsError(rollouts, environment, settings.steps));
          advance();
        }
      } finally {
        diffusion.dispose?.();
        pets.dispose?.();
      }
    }
  } finally {
    for (const { policy } of targets) policy.dispose?.();
    environment.close();
  }

  const base = {
    schemaVersion: 1 as const,
    dataset: settings.dataset,
    trajectoriesPerSeed: count,
    preset: settings.preset,
    finishedAt: new Date().toISOString(),
  };
  const likelihood = trajectoryLikelihoodSchema.parse({
    ...base,
    kind: "trajectory-likelihood",
    notes: `${seeds.length} model seeds; ${count} trajectories per seed and setting; ` +
      "log-likelihood summed over action dimensions, averaged over steps and trajectories.",
    series: targets.flatMap(({ id }) => [
      {
        model: "diffusion" as const,
        targetPolicy: id,
        seedCount: seeds.length,
        points: guidances.map((guidance) => ({
          guidance,
          ...estimate(diffusionLikelihood.get(id)!.get(guidance)!),
        })),
      },
      {
        model: "pets" as const,
        targetPolicy: id,
        seedCount: seeds.length,
        ...estimate(petsLikelihood.get(id)!),
      },
    ]),
  });
  const dynamics = dynamicsErrorSchema.parse({
    ...base,
    kind: "dynamics-error",
    notes: `${seeds.length} model seeds; ${count} trajectories per seed; squared error averaged ` +
      "over observation dimensions; diffusion windows of L states give L − 1 steps.",
    series: targets.flatMap(({ id }) =>
      (["policy-guided", "unguided", "pets"] as const).map((source) => ({
        source,
        ...(source === "policy-guided" ? { guidance: settings.guidedCoefficient } : {}),
        ...(source === "unguided" ? { guidance: 0 } : {}),
        targetPolicy: id,
        seedCount: seeds.length,
        ...estimateSteps(dynamicsErrors.get(id)!.get(source)!),
      }))
    ),
  });
  const folder = `${settings.resultDir}/analysis`;
  const paths = [
    `${folder}/${analysisFileName(likelihood)}`,
    `${folder}/${analysisFileName(dynamics)}`,
  ];
  await writeJsonAtomic(paths[0], likelihood);
  await writeJsonAtomic(paths[1], dynamics);
  return { likelihood, dynamics, paths };
}
