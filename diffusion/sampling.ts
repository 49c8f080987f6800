/**
 * Sampling windows from a trained denoiser with the EDM sampler (Table 4),
 * guided by a target policy (Section 4.2, eq. 12–14) or not. Whether
 * guidance is on is decided in one place, {@link guidanceFor}; everything
 * downstream only asks whether it was handed a {@link Guidance}.
 *
 * @module
 */
import { Rng } from "../core/rng.ts";
import type { PolicyView } from "../core/types.ts";
import { type GuidanceOptions, policyGuidance } from "./guidance.ts";
import type { LoadedDenoiser } from "./loaded_denoiser.ts";
import { sampleEdm, type SamplerOptions } from "./sampler.ts";
import { unnormalizeRows } from "./windows.ts";

/** Guidance that is on: the target policy and how its score is applied (eq. 12–14). */
export interface Guidance {
  /** The target policy π whose log-likelihood guides the actions. */
  policy: PolicyView;
  /** Strength λ (> 0), schedule and the rest. */
  options: GuidanceOptions;
}

/**
 * The one decision whether to guide: guidance is on when there is a target
 * policy and λ > 0 (λ = 0 is unguided diffusion), and then returns it.
 */
export function guidanceFor(
  policy: PolicyView | undefined,
  options: GuidanceOptions,
): Guidance | undefined {
  return policy !== undefined && options.strength > 0 ? { policy, options } : undefined;
}

/**
 * Samples `count` z-scored windows (in batches of `batchSize`), guided when
 * `guidance` is given, and returns them un-normalised.
 */
export function sampleWindows(
  model: LoadedDenoiser,
  count: number,
  sampler: SamplerOptions,
  guidance: Guidance | undefined,
  seed: number,
  batchSize: number,
  onProgress?: (fraction: number) => void,
): Float32Array {
  const { config, stored } = model;
  const windowSize = config.trajectoryLength * config.rowWidth;
  const out = new Float32Array(count * windowSize);
  const rng = new Rng(seed);
  for (let start = 0; start < count; start += batchSize) {
    const size = Math.min(batchSize, count - start);
    const guide = guidance
      ? policyGuidance(
        guidance.policy,
        model.layout,
        stored.stats,
        model.denoiser,
        guidance.options,
        sampler.sigmaMax,
      )
      : undefined;
    const sample = sampleEdm(
      model.denoiser,
      [size, config.trajectoryLength, config.rowWidth],
      sampler,
      rng.seed(),
      guide,
      (step) => onProgress?.((start + (size * (step + 1)) / sampler.steps) / count),
    );
    out.set(unnormalizeRows(sample, stored.stats), start * windowSize);
  }
  return out;
}
