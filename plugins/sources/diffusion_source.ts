/**
 * The trajectory-diffusion data source shared by `unguided` (λ = 0) and
 * `policy-guided` (λ = 1 by default): an adapter from the DataSource
 * contract to the PGD generator in `diffusion/` (paper Sections 3–4,
 * Tables 2–4). `prepare` trains or loads the denoiser; `generate` samples
 * one generation of transitions.
 *
 * @module
 */
import type { DataSource } from "../../core/contracts/source.ts";
import { DiffusionGenerator } from "../../diffusion/generator.ts";
import type { DiffusionOptions } from "../../diffusion/options.ts";

/**
 * A diffusion data source named `name` with λ = `options.guidanceStrength`
 * (the `unguided` source passes 0).
 */
export function diffusionSource(name: string, options: DiffusionOptions): DataSource {
  const generator = new DiffusionGenerator(name, options);
  return {
    name,
    options: { ...options },
    regenerateEvery: (context) => generator.regenerateEvery(context.agentSteps, context.preset),
    async prepare(context) {
      await generator.prepare(context);
    },
    generate: (context, request) => generator.generate(context, request.generation, request.policy),
    dispose: () => generator.dispose(),
  };
}
