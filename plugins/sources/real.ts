/**
 * The `real` data source: the offline dataset itself, as D4RL's
 * `qlearning_dataset` turns it into transitions.
 *
 * @module
 */
import { z } from "zod";
import type { DataSource } from "../../core/contracts/source.ts";
import { toTransitions } from "../../core/d4rl.ts";
import { formatOptionErrors, UserError } from "../../core/errors.ts";

/** Options of the `real` source. */
export const realOptionsSchema = z.strictObject({});

/** Options of the `real` source (none). */
export type RealOptions = z.infer<typeof realOptionsSchema>;

/** The offline dataset as the agent's training data. */
export function real(options: unknown = {}): DataSource {
  const parsed = realOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) throw new UserError(formatOptionErrors("real", parsed.error));
  return {
    name: "real",
    options: parsed.data,
    generate(context) {
      return Promise.resolve(toTransitions(context.dataset));
    },
  };
}
