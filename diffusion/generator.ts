/**
 * The PGD generator: trains (or loads) a trajectory denoiser on the offline
 * dataset, then at each generation samples windows, guided by the agent's
 * target policy from the second generation on (paper Section 4, eq. 12–14;
 * Table 2's protocol), and turns them into the transitions the agent trains
 * on. Generation 0 has no policy yet and is unguided; its windows are shared
 * by every generator on the same model and seed, so the guided and the
 * unguided source start from the same data. Beyond the paper,
 * `behaviorGuidance` guides generation 0 toward the dataset's
 * behaviour-cloned policy instead (the paper's suggested future work), and
 * `nextStates: "dynamics-ensemble"` takes each transition's `s′` from PETS's
 * dynamics ensemble rather than from the window.
 *
 * @module
 */
import type { PresetName } from "../core/contracts/common.ts";
import type { SourceContext } from "../core/contracts/source.ts";
import { deriveSeed, Rng } from "../core/rng.ts";
import { mixWithReal } from "../core/transitions.ts";
import type { PolicyView, Transitions } from "../core/types.ts";
import { toTransitions } from "../core/d4rl.ts";
import type { LoadedDenoiser } from "./loaded_denoiser.ts";
import {
  type DiffusionOptions,
  generationCount,
  resolveSizes,
  windowsPerGeneration,
} from "./options.ts";
import type { DiffusionSizes } from "./presets.ts";
import { byWholePercent } from "./progress.ts";
import { guidanceFor, sampleWindows } from "./sampling.ts";
import { unguidedWindows } from "./unguided_store.ts";
import { guidanceOptionsOf, samplerOptionsOf } from "./settings.ts";
import { GenerationReplay } from "./training_data.ts";
import { type DenoiserContext, trainOrLoadDenoiser } from "./train_or_load.ts";
import { windowsToTransitions } from "./windows.ts";
import { BehaviorPolicy } from "../worldmodel/behavior.ts";
import { type DynamicsModel, withExpectedNextStates } from "../worldmodel/dynamics.ts";
import { loadOrFitPetsModels } from "../worldmodel/pets.ts";
import {
  behaviorEnsembleOptions,
  parsePetsOptions,
  type ResolvedPetsOptions,
  resolvePetsOptions,
} from "../worldmodel/pets_options.ts";

/** What generating needs of a source's context: the denoiser's, and the environment's rules. */
export type GeneratorContext = DenoiserContext & Pick<SourceContext, "environment">;

/** Generates synthetic transitions for one run (one dataset, preset and seed). */
export class DiffusionGenerator {
  /** Names the guided generations' seeds (the source's name). */
  readonly name: string;
  /** Parsed options. */
  readonly options: DiffusionOptions;
  #model: LoadedDenoiser | undefined;
  #behaviorPolicy: BehaviorPolicy | undefined;
  #dynamics: DynamicsModel | undefined;
  readonly #replay: GenerationReplay;

  /** A generator named `name` (seeds of guided generations derive from it) with `options`. */
  constructor(name: string, options: DiffusionOptions) {
    this.name = name;
    this.options = options;
    this.#replay = new GenerationReplay(options.replayGenerations);
  }

  /** The preset's sizes with the options' overrides. */
  sizes(preset: PresetName): DiffusionSizes {
    return resolveSizes(this.options, preset);
  }

  /** Agent steps between generations: the run split into Table 2's (or Figure 4's) generations. */
  regenerateEvery(agentSteps: number, preset: PresetName): number {
    return Math.floor(agentSteps / generationCount(this.options, this.sizes(preset)));
  }

  /** Trains or loads the denoiser once per generator, and returns it uploaded. */
  async prepare(context: DenoiserContext): Promise<LoadedDenoiser> {
    if (!this.#model) {
      this.#model = await trainOrLoadDenoiser(context, this.options, this.sizes(context.preset));
    }
    return this.#model;
  }

  /**
   * The training data of generation `generation`: sampled windows as
   * transitions, guided by `policy` (ignored at generation 0, which is
   * unguided), with continuous mode's replay and real data mixed in.
   */
  async generate(
    context: GeneratorContext,
    generation: number,
    policy?: PolicyView,
  ): Promise<Transitions> {
    const { options, name } = this;
    const model = await this.prepare(context);
    const sizes = this.sizes(context.preset);
    const count = windowsPerGeneration(options, sizes);
    // The first generation has no policy yet: it is unguided (Table 2's protocol),
    // or guided toward the dataset's behaviour-cloned policy when asked.
    const guidance = generation === 0
      ? guidanceFor(
        options.behaviorGuidance > 0 ? this.#behavior(context) : undefined,
        guidanceOptionsOf(options, sizes, options.behaviorGuidance),
      )
      : guidanceFor(policy, guidanceOptionsOf(options, sizes));
    const onProgress = byWholePercent((fraction) =>
      context.reporter.progress("diffusion-sample", fraction)
    );
    const sampler = samplerOptionsOf(options, sizes);
    // Unguided generations share their seed across both diffusion sources, so
    // `policy-guided` and `unguided` start from the same first generation; the
    // cache folder keeps each, so it is sampled once for all the cells that use it.
    const windows = guidance
      ? sampleWindows(
        model,
        count,
        sampler,
        guidance,
        deriveSeed(
          context.seed,
          generation === 0 ? `${name}-behavior-generation-0` : `${name}-generation-${generation}`,
        ),
        sizes.samplingBatchSize,
        onProgress,
      )
      : await unguidedWindows(
        model,
        count,
        sampler,
        deriveSeed(context.seed, `diffusion-unguided-generation-${generation}`),
        sizes.samplingBatchSize,
        context,
        onProgress,
      );
    let synthetic = windowsToTransitions(windows, count, sizes.trajectoryLength, model.layout);
    if (options.nextStates === "dynamics-ensemble") {
      const isTerminal = context.environment.isTerminal?.bind(context.environment);
      synthetic = withExpectedNextStates(await this.#dynamicsModel(context), synthetic, {
        isTerminal,
        penalty: options.nextStatePenalty,
      });
    }
    let data = options.generationMode === "continuous" ? this.#replay.add(synthetic) : synthetic;
    if (options.realFraction > 0) {
      const rng = new Rng(deriveSeed(context.seed, `${name}-real-mix-${generation}`));
      data = mixWithReal(data, toTransitions(context.dataset), options.realFraction, rng);
    }
    return data;
  }

  /**
   * The dataset's behaviour-cloned Gaussian policy, fitted once per generator
   * as PETS fits its own (the same network and preset sizes).
   */
  #behavior(context: DenoiserContext): BehaviorPolicy {
    if (!this.#behaviorPolicy) {
      const options = behaviorEnsembleOptions(petsDefaults(context.preset));
      this.#behaviorPolicy = BehaviorPolicy.fit(
        toTransitions(context.dataset),
        options,
        deriveSeed(context.seed, `${this.name}-behavior-policy`),
      ).policy;
    }
    return this.#behaviorPolicy;
  }

  /**
   * PETS's dynamics ensemble of this dataset, preset and seed, fitted (or
   * loaded from the cache) as the `pets` source fits it, with its defaults.
   */
  async #dynamicsModel(context: DenoiserContext): Promise<DynamicsModel> {
    if (!this.#dynamics) {
      const models = await loadOrFitPetsModels(context, petsDefaults(context.preset));
      models.behavior.dispose();
      this.#dynamics = models.dynamics;
    }
    return this.#dynamics;
  }

  /** Frees the models and forgets the replayed generations. */
  dispose(): void {
    this.#dynamics?.dispose();
    this.#dynamics = undefined;
    this.#behaviorPolicy?.dispose();
    this.#behaviorPolicy = undefined;
    this.#model?.dispose();
    this.#model = undefined;
    this.#replay.clear();
  }
}

/** PETS's options at their defaults for `preset`: the behaviour policy's and the ensemble's fits. */
function petsDefaults(preset: PresetName): ResolvedPetsOptions {
  return resolvePetsOptions(parsePetsOptions({}), preset);
}
