/**
 * The `unguided` data source: trajectory diffusion without policy guidance
 * (λ = 0, SynthER-style synthetic data), the paper's unguided baseline.
 *
 * @module
 */
import type { DataSource } from "../../core/contracts/source.ts";
import { parseDiffusionOptions } from "../../diffusion/options.ts";
import { diffusionSource } from "./diffusion_source.ts";

/** Guidance keys that mean nothing without guidance. */
const guidanceKeys = [
  "guidanceStrength",
  "guidanceSchedule",
  "cosineWeight",
  "guideDenoisedEstimate",
  "normalizeGuidance",
];

/**
 * Synthetic transitions from unguided trajectory diffusion. Options: see
 * `diffusionOptionsSchema` in `diffusion/options.ts` (no guidance keys).
 */
export function unguided(options: unknown = {}): DataSource {
  const given = (options ?? {}) as Record<string, unknown>;
  const stray = guidanceKeys.filter((key) => typeof given === "object" && key in given);
  if (stray.length > 0) {
    throw new Error(
      `data source 'unguided': guidance options do not apply (${
        stray.join(", ")
      }); use 'policy-guided'`,
    );
  }
  const parsed = parseDiffusionOptions("unguided", { ...given, guidanceStrength: 0 });
  return diffusionSource("unguided", parsed);
}
