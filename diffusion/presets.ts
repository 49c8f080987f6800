/**
 * Per-preset sizes of the PGD generator: the denoiser's U-Net, its training
 * length, the sampler's steps and the amounts generated (paper Tables 2–4 for
 * `paper`). Why `quick` and `smoke` have the sizes they have, with the
 * measurements behind them, is in `docs/diffusion-presets.md`.
 *
 * @module
 */
import type { PresetName } from "../core/contracts/common.ts";

/** Sizes a preset sets: model, training length, sampler steps and generated amounts. */
export interface DiffusionSizes {
  /** U-Net width of the first level (Table 3: 1024). */
  features: number;
  /** U-Net levels (Table 3: 3). */
  numBlocks: number;
  /** Steps per window (Table 3: 16). */
  trajectoryLength: number;
  /** Windows per gradient step (Table 3: 16). */
  batchSize: number;
  /** Passes over the training windows (Table 3: 250). */
  epochs: number;
  /** Gradient steps; when set, replaces `epochs` (small presets cap training time). */
  trainingSteps?: number;
  /**
   * Steps between EMA updates (reference code: 10). With decay 0.995 the EMA
   * spans about 200 updates, so short runs update it every step; otherwise
   * it would average over the whole run, early weights included.
   */
  emaEvery: number;
  /** Denoising steps (Table 4: 256). */
  samplerSteps: number;
  /** Windows sampled per periodic generation (Table 2: 2^14). */
  windowsPerGeneration: number;
  /** Generations in a run, periodic mode (Table 2: 4). */
  periodicGenerations: number;
  /** Generations in a run, continuous mode (Figure 4: 100). */
  continuousGenerations: number;
  /** Windows denoised together in one batch. */
  samplingBatchSize: number;
}

/**
 * Sizes per preset: `paper` is the paper's (Tables 2–4, Figure 4); `smoke`
 * runs in seconds; `quick` fits the default grid on 2 CPU cores, a two-level
 * U-Net of width 64 chosen by the comparison in `docs/diffusion-presets.md`.
 */
export const diffusionPresets: Record<PresetName, DiffusionSizes> = {
  smoke: {
    features: 16,
    numBlocks: 2,
    trajectoryLength: 8,
    batchSize: 16,
    epochs: 1,
    trainingSteps: 60,
    emaEvery: 1,
    samplerSteps: 8,
    windowsPerGeneration: 32,
    periodicGenerations: 2,
    continuousGenerations: 4,
    samplingBatchSize: 256,
  },
  quick: {
    features: 64,
    numBlocks: 2,
    trajectoryLength: 16,
    batchSize: 64,
    epochs: 1,
    trainingSteps: 32000,
    emaEvery: 1,
    samplerSteps: 64,
    windowsPerGeneration: 4096,
    periodicGenerations: 2,
    continuousGenerations: 8,
    samplingBatchSize: 512,
  },
  paper: {
    features: 1024,
    numBlocks: 3,
    trajectoryLength: 16,
    batchSize: 16,
    epochs: 250,
    emaEvery: 10,
    samplerSteps: 256,
    windowsPerGeneration: 2 ** 14,
    periodicGenerations: 4,
    continuousGenerations: 100,
    samplingBatchSize: 1024,
  },
};
