/**
 * The stored results of the synthetic-trajectory analysis (the paper's
 * Section 5.3), one JSON file each under `<run>/analysis/`. The `analyze`
 * command writes them; reports draw Figure 5 and Figure 6 from them whenever
 * they exist.
 *
 * - Figure 5, `kind: "trajectory-likelihood"`: mean log-likelihood of the
 *   synthetic actions under each target policy, over the guidance coefficient
 *   λ for diffusion (λ = 0 is unguided) and as one level for PETS (actions are
 *   sampled from the policy directly), with standard errors over model seeds.
 * - Figure 6, `kind: "dynamics-error"`: mean squared error between synthetic
 *   states and the real environment replaying the same initial state and
 *   actions, at each rollout step (16 in the paper), one series per source
 *   (policy-guided at λ = 1, unguided, PETS) and target policy.
 *
 * @module
 */
import { z } from "zod";
import { formatZodIssues, UserError } from "./errors.ts";

const finite = z.number().refine(Number.isFinite, "expected a finite number");
// null where a standard error cannot be estimated (one seed); JSON has no NaN.
const standardError = z.number().nonnegative().nullable();

/** Fields every analysis file has. */
const analysisBase = {
  schemaVersion: z.literal(1),
  /** Dataset the generative models were trained on, e.g. `halfcheetah-medium`. */
  dataset: z.string().min(1),
  /** Synthetic trajectories generated per model seed (2048 in the paper). */
  trajectoriesPerSeed: z.number().int().positive(),
  /** Size preset the analysis ran under. */
  preset: z.string(),
  /** When the analysis finished (ISO 8601). */
  finishedAt: z.string(),
  /** Free-form notes shown under the figure. */
  notes: z.string().optional(),
};

/** One point of a diffusion series in Figure 5: a guidance coefficient and the likelihood there. */
export const likelihoodPointSchema = z.strictObject({
  /** Guidance coefficient λ (0 = unguided). */
  guidance: z.number().nonnegative(),
  /** Mean log-likelihood of synthetic actions under the target policy. */
  mean: finite,
  /** Standard error over model seeds. */
  standardError,
});

/** One point of a diffusion series in Figure 5. */
export type LikelihoodPoint = z.infer<typeof likelihoodPointSchema>;

/** A Figure 5 series: one generative model family under one target policy. */
export const likelihoodSeriesSchema = z.discriminatedUnion("model", [
  z.strictObject({
    model: z.literal("diffusion"),
    /** Dataset the target policy was trained on, e.g. `halfcheetah-expert`. */
    targetPolicy: z.string().min(1),
    /** Diffusion model seeds averaged over. */
    seedCount: z.number().int().positive(),
    /** One point per guidance coefficient, in increasing λ. */
    points: z.array(likelihoodPointSchema).min(1),
  }),
  z.strictObject({
    model: z.literal("pets"),
    /** Dataset the target policy was trained on. */
    targetPolicy: z.string().min(1),
    /** PETS model seeds averaged over. */
    seedCount: z.number().int().positive(),
    /** Mean log-likelihood of the rollouts' actions (drawn from the policy itself). */
    mean: finite,
    /** Standard error over model seeds. */
    standardError,
  }),
]);

/** A Figure 5 series. */
export type LikelihoodSeries = z.infer<typeof likelihoodSeriesSchema>;

/** Figure 5: trajectory likelihood under target policies over the guidance coefficient. */
export const trajectoryLikelihoodSchema = z.strictObject({
  ...analysisBase,
  kind: z.literal("trajectory-likelihood"),
  series: z.array(likelihoodSeriesSchema).min(1),
});

/** Figure 5: trajectory likelihood under target policies over the guidance coefficient. */
export type TrajectoryLikelihood = z.infer<typeof trajectoryLikelihoodSchema>;

/** A Figure 6 series: dynamics error per rollout step of one source under one target policy. */
export const dynamicsErrorSeriesSchema = z
  .strictObject({
    /** Source name: `policy-guided`, `unguided` or `pets` (others are drawn too). */
    source: z.string().min(1),
    /** Guidance coefficient for diffusion sources (1 for policy-guided in the paper). */
    guidance: z.number().nonnegative().optional(),
    /** Dataset the target policy was trained on. */
    targetPolicy: z.string().min(1),
    /** Model seeds averaged over. */
    seedCount: z.number().int().positive(),
    /** Mean squared state error at rollout steps 1, 2, … (16 in the paper). */
    mean: z.array(finite).min(1),
    /** Standard error over model seeds at each step. */
    standardError: z.array(standardError).min(1),
  })
  .refine((series) => series.mean.length === series.standardError.length, {
    message: "mean and standardError must have one entry per rollout step each",
    path: ["standardError"],
  });

/** A Figure 6 series. */
export type DynamicsErrorSeries = z.infer<typeof dynamicsErrorSeriesSchema>;

/** Figure 6: dynamics mean squared error over rollout steps. */
export const dynamicsErrorSchema = z.strictObject({
  ...analysisBase,
  kind: z.literal("dynamics-error"),
  series: z.array(dynamicsErrorSeriesSchema).min(1),
});

/** Figure 6: dynamics mean squared error over rollout steps. */
export type DynamicsError = z.infer<typeof dynamicsErrorSchema>;

/** Any analysis file, told apart by `kind`. */
export const analysisResultSchema = z.discriminatedUnion("kind", [
  trajectoryLikelihoodSchema,
  dynamicsErrorSchema,
]);

/** Any analysis file, told apart by `kind`. */
export type AnalysisResult = z.infer<typeof analysisResultSchema>;

/** The file name an analysis result is stored under in `<run>/analysis/`. */
export function analysisFileName(result: Pick<AnalysisResult, "kind" | "dataset">): string {
  return `${result.kind}-${result.dataset}.json`;
}

/** Validates parsed JSON as an analysis result; `where` (a file) is named in errors. */
export function parseAnalysisResult(value: unknown, where: string): AnalysisResult {
  const parsed = analysisResultSchema.safeParse(value);
  if (!parsed.success) {
    throw new UserError(`invalid analysis result:\n${formatZodIssues(where, parsed.error)}`);
  }
  return parsed.data;
}
