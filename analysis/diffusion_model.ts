/**
 * Trajectory diffusion as a trajectory model for the analysis: the PGD
 * generator's denoiser from the `diffusion/` library (same options, cache and
 * seeds as the diffusion sources, so the analysis and the benchmark share one
 * model) sampled with policy guidance at a requested λ (eq. 12–14).
 *
 * @module
 */
import type { SourceContext } from "../core/contracts/source.ts";
import { parseDiffusionOptions, resolveSizes } from "../diffusion/options.ts";
import { guidanceFor, sampleWindows } from "../diffusion/sampling.ts";
import { guidanceOptionsOf, samplerOptionsOf } from "../diffusion/settings.ts";
import { trainOrLoadDenoiser } from "../diffusion/train_or_load.ts";
import type { RowLayout } from "../diffusion/windows.ts";
import type { TrajectoryModel } from "./analyze.ts";
import type { SyntheticTrajectories } from "./trajectories.ts";

/**
 * Un-normalised windows (`count × length × rowWidth`, rows of observation,
 * encoded action, reward, done) as synthetic trajectories with actions
 * decoded by the layout's transform, as the sources turn them into transitions.
 */
export function windowsToTrajectories(
  windows: Float32Array,
  count: number,
  length: number,
  layout: RowLayout,
): SyntheticTrajectories {
  const { observationDim, actionDim } = layout;
  const { decode } = layout.actionTransform;
  if (windows.length !== count * length * layout.rowWidth) {
    throw new Error(
      `windows: expected ${count}×${length}×${layout.rowWidth} values, got ${windows.length}`,
    );
  }
  const observations = new Float32Array(count * length * observationDim);
  const actions = new Float32Array(count * length * actionDim);
  for (let row = 0; row < count * length; row++) {
    const at = row * layout.rowWidth;
    observations.set(windows.subarray(at, at + observationDim), row * observationDim);
    for (let j = 0; j < actionDim; j++) {
      actions[row * actionDim + j] = decode(windows[at + layout.actionOffset + j]);
    }
  }
  return { count, length, observationDim, actionDim, observations, actions };
}

/**
 * Trains (or loads) the denoiser for `context` with the diffusion sources'
 * `options`, and returns a model that samples windows guided by the
 * requested policy at the requested λ (λ = 0: unguided).
 */
export async function diffusionTrajectoryModel(
  context: SourceContext,
  options: unknown = {},
): Promise<TrajectoryModel> {
  const parsed = parseDiffusionOptions("policy-guided", options);
  const sizes = resolveSizes(parsed, context.preset);
  const model = await trainOrLoadDenoiser(context, parsed, sizes);
  return {
    sample({ policy, guidance, count, seed }) {
      const windows = sampleWindows(
        model,
        count,
        samplerOptionsOf(parsed, sizes),
        guidanceFor(policy, guidanceOptionsOf(parsed, sizes, guidance)),
        seed,
        sizes.samplingBatchSize,
        (fraction) => context.reporter.progress("diffusion-sample", fraction),
      );
      return Promise.resolve(
        windowsToTrajectories(windows, count, sizes.trajectoryLength, model.layout),
      );
    },
    dispose() {
      model.dispose();
    },
  };
}
