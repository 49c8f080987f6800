/**
 * An example data-source plugin, written the way the README tells a user to:
 * the real dataset with Gaussian noise added to the states (S4RL-style
 * augmentation). Run it with
 *
 *     deno task bench --plugin ./examples/noisy_source.ts --sources real,noisy-real
 *
 * @module
 */
import { z } from "zod";
import { type DataSource, deriveSeed, Rng, toTransitions } from "pgd-bench";

const optionsSchema = z.strictObject({
  /** Standard deviation of the noise, in units of each state dimension's std. */
  noiseScale: z.number().nonnegative().default(0.01),
});

/** Real transitions with state noise; `options.noiseScale` sets its size. */
export default function noisyReal(options: unknown = {}): DataSource {
  const { noiseScale } = optionsSchema.parse(options ?? {});
  return {
    name: "noisy-real",
    options: { noiseScale },
    generate(context) {
      const transitions = toTransitions(context.dataset);
      const { size, observationDim } = transitions;
      const rng = new Rng(deriveSeed(context.seed, "noisy-real"));
      // Noise in each dimension is scaled by that dimension's spread in the data.
      const std = new Float32Array(observationDim);
      for (let d = 0; d < observationDim; d++) {
        let sum = 0, squares = 0;
        for (let i = 0; i < size; i++) {
          const value = transitions.observations[i * observationDim + d];
          sum += value;
          squares += value * value;
        }
        const mean = sum / size;
        std[d] = Math.sqrt(Math.max(squares / size - mean * mean, 1e-12));
      }
      for (let i = 0; i < size * observationDim; i++) {
        const scale = noiseScale * std[i % observationDim];
        transitions.observations[i] += scale * rng.normal();
        transitions.nextObservations[i] += scale * rng.normal();
      }
      return Promise.resolve(transitions);
    },
  };
}
