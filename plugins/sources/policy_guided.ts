/**
 * The `policy-guided` data source: trajectory diffusion guided by the agent's
 * target policy (paper eq. 11–14), λ = 1 by default.
 *
 * @module
 */
import type { DataSource } from "../../core/contracts/source.ts";
import { parseDiffusionOptions } from "../../diffusion/options.ts";
import { diffusionSource } from "./diffusion_source.ts";

/**
 * Synthetic transitions from policy-guided diffusion. Options: see
 * `diffusionOptionsSchema` in `diffusion/options.ts`.
 */
export function policyGuided(options: unknown = {}): DataSource {
  return diffusionSource("policy-guided", parseDiffusionOptions("policy-guided", options));
}
