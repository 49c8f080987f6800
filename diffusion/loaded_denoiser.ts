/**
 * A trained denoiser's weights uploaded to the compute backend, as the
 * sampler's `D(x; σ)` (EDM preconditioning around the U-Net of Table 3).
 *
 * @module
 */
import { tf } from "../core/compute.ts";
import type { StoredDenoiser } from "./cache.ts";
import { denoise } from "./edm.ts";
import type { DenoiserFn } from "./sampler.ts";
import type { UNetConfig } from "./unet1d.ts";
import type { RowLayout } from "./windows.ts";

/** The file a denoiser was read from or written to. */
export interface DenoiserOrigin {
  /** Where it lies. */
  path: string;
  /** SHA-256 of its bytes. */
  sha256: string;
}

/** A denoiser's weights on the compute backend, ready to sample. */
export class LoadedDenoiser {
  /** Sizes. */
  readonly config: UNetConfig;
  /** Window statistics and weights as stored. */
  readonly stored: StoredDenoiser;
  /** Row layout of the windows. */
  readonly layout: RowLayout;
  /** The cache file the weights came from, by content; absent for a model never stored. */
  readonly origin?: DenoiserOrigin;
  #params: Record<string, tf.Tensor>;

  /**
   * Uploads stored weights; `layout` must match the model's row width;
   * `origin` names the file they came from.
   */
  constructor(stored: StoredDenoiser, layout: RowLayout, origin?: DenoiserOrigin) {
    if (layout.rowWidth !== stored.config.rowWidth) {
      throw new Error(
        `diffusion: the denoiser's rows have ${stored.config.rowWidth} entries, the dataset's ${layout.rowWidth}`,
      );
    }
    this.stored = stored;
    this.layout = layout;
    this.origin = origin;
    this.config = stored.config;
    this.#params = Object.fromEntries(
      Object.entries(stored.params).map(([name, p]) => [name, tf.tensor(p.values, p.shape)]),
    );
  }

  /** `D(x; σ)` with one σ for the whole batch. */
  readonly denoiser: DenoiserFn = (noisy, sigma) =>
    denoise(this.config, this.#params, noisy, tf.fill([noisy.shape[0]], sigma) as tf.Tensor1D);

  /** Frees the weights. */
  dispose(): void {
    tf.dispose(Object.values(this.#params));
  }
}
