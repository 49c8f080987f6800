/**
 * Evaluation: deterministic episodes of the agent's policy, stepped in
 * lockstep so one forward pass acts for all of them, scored with D4RL's
 * normalised score ×100.
 *
 * @module
 */
import type { Environment, EnvironmentPlugin } from "./contracts/environment.ts";
import { normalizedScore } from "./contracts/environment.ts";
import type { Evaluation } from "./results.ts";
import { deriveSeed } from "./rng.ts";

/** Acts for a batch of observations: `count × observationDim` in, `count × actionDim` out. */
export type BatchPolicy = (observations: Float32Array, count: number) => Float32Array;

/** A set of simulators kept for repeated evaluations of one cell. */
export class Evaluator {
  #environments: Environment[];

  private constructor(environments: Environment[]) {
    this.#environments = environments;
  }

  /** Starts `episodes` simulators of a dataset's environment. */
  static async create(
    plugin: EnvironmentPlugin,
    dataset: string,
    episodes: number,
  ): Promise<Evaluator> {
    const environments: Environment[] = [];
    for (let i = 0; i < episodes; i++) environments.push(await plugin.make(dataset));
    return new Evaluator(environments);
  }

  /**
   * Runs one episode per simulator to its time limit or a terminal state.
   * Episode `i` resets with a seed derived from (`seed`, `i`), so every
   * evaluation of a run sees the same start states.
   */
  evaluate(policy: BatchPolicy, seed: number, step: number): Evaluation {
    const environments = this.#environments;
    const spec = environments[0].spec;
    const count = environments.length;
    const observations = new Float32Array(count * spec.observationDim);
    const returns = new Float64Array(count);
    const active = new Array<boolean>(count).fill(true);
    environments.forEach((environment, i) => {
      observations.set(
        environment.reset(deriveSeed(seed, `evaluation-${i}`)),
        i * spec.observationDim,
      );
    });
    for (let t = 0; t < spec.maxEpisodeSteps && active.some(Boolean); t++) {
      const actions = policy(observations, count);
      for (let i = 0; i < count; i++) {
        if (!active[i]) continue;
        const action = actions.subarray(i * spec.actionDim, (i + 1) * spec.actionDim);
        const result = environments[i].step(action);
        returns[i] += result.reward;
        observations.set(result.observation, i * spec.observationDim);
        if (result.terminated) active[i] = false;
      }
    }
    const episodeScores = [...returns].map((r) => normalizedScore(r, spec.scoreReference));
    const meanReturn = returns.reduce((a, b) => a + b, 0) / count;
    return {
      step,
      meanReturn,
      normalizedScore: episodeScores.reduce((a, b) => a + b, 0) / count,
      episodeScores,
    };
  }

  /** Frees the simulators. */
  close(): void {
    for (const environment of this.#environments) environment.close();
  }
}
