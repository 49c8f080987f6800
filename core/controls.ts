/**
 * Controls: a source's data with one thing changed, to locate what keeps
 * agents from learning from it. A control is named after the source it
 * changes, `<source>+<control>`, and runs in a grid like any source:
 *
 * - `+exact-dynamics`: every `s′` and `r` replaced by the simulator's from
 *   `(s, a)`, so only the states and actions of the source remain;
 * - `+exact-reward` and `+exact-next-state`: the two halves of that, apart:
 *   only `r` from the simulator (the source's `s′` kept), or only `s′` and
 *   the terminal flag (the source's `r` kept), to tell which of the two
 *   errors an agent fails on;
 * - `+shuffled-actions`: actions permuted across transitions, then `s′` and
 *   `r` from the simulator: states and dynamics stay real, actions lose
 *   their tie to states;
 * - `+state-noise-<k>`: Gaussian noise on `s` and `s′`, of `k` times a given
 *   one-step error per entry (positions and velocities apart), so one can see
 *   how much dynamics error an agent tolerates;
 * - `+action-noise-<σ>`: Gaussian noise of standard deviation σ on every
 *   action entry (clipped to [−1, 1]), then `s′` and `r` from the
 *   simulator: actions less tightly tied to their states, dynamics exact.
 *
 * The control's settings travel in the source's options under `control`
 * (`{ positionError, velocityError }` for state noise); the rest of the
 * options go to the source itself. `pgd controls` runs them all.
 *
 * @module
 */
import { z } from "zod";
import type { DataSource } from "./contracts/source.ts";
import type { Environment } from "./contracts/environment.ts";
import { formatOptionErrors, UserError } from "./errors.ts";
import type { PluginRegistry } from "./registry.ts";
import type { Rng } from "./rng.ts";
import { copyTransitions } from "./transitions.ts";
import type { Transitions } from "./types.ts";

/** The controls whose name says all there is to them: no settings, nothing in the name to parse. */
const plainControls = [
  "exact-dynamics",
  "exact-reward",
  "exact-next-state",
  "shuffled-actions",
] as const;

/** One control and its settings. */
export type Control =
  | { kind: (typeof plainControls)[number] }
  | { kind: "state-noise"; scale: number; positionError: number; velocityError: number }
  | { kind: "action-noise"; sigma: number };

/** The name of a control, as it follows `+` in a source name. */
export const controlNames = [
  ...plainControls,
  "state-noise-<k>",
  "action-noise-<σ>",
] as const;

const noiseSettingsSchema = z.strictObject({
  /** Per-entry standard deviation of the noise on position entries, at k = 1. */
  positionError: z.number().min(0),
  /** The same for velocity entries (every entry where the environment does not tell them apart). */
  velocityError: z.number().min(0),
});

/** A source name split into the source and its control, if any. */
export function parseSourceName(name: string): { base: string; control?: string } {
  const at = name.indexOf("+");
  return at < 0 ? { base: name } : { base: name.slice(0, at), control: name.slice(at + 1) };
}

/**
 * The data source a (possibly controlled) name stands for, and its control;
 * an unknown control or missing settings are one-line errors naming the source.
 */
export function makeSource(
  registry: PluginRegistry,
  name: string,
  options: unknown,
): { source: DataSource; control?: Control } {
  const { base, control } = parseSourceName(name);
  if (control === undefined) return { source: registry.source(name, options) };
  const { control: settings, ...rest } = (options ?? {}) as Record<string, unknown>;
  const source = registry.source(base, Object.keys(rest).length ? rest : undefined);
  const noise = /^state-noise-(\d+(?:\.\d+)?)$/.exec(control);
  if (noise) {
    const parsed = noiseSettingsSchema.safeParse(settings);
    if (!parsed.success) {
      throw new UserError(formatOptionErrors(`source '${name}' control`, parsed.error));
    }
    return { source, control: { kind: "state-noise", scale: Number(noise[1]), ...parsed.data } };
  }
  const unsettled = controlWithoutSettings(control);
  if (!unsettled) {
    throw new UserError(
      `source '${name}': unknown control '${control}'; expected one of ${controlNames.join(", ")}`,
    );
  }
  if (settings !== undefined) {
    throw new UserError(`source '${name}': options.control: this control takes no settings`);
  }
  return { source, control: unsettled };
}

/** The controls whose name says all there is to them. */
function controlWithoutSettings(name: string): Control | undefined {
  const kind = plainControls.find((candidate) => candidate === name);
  if (kind) return { kind };
  const actionNoise = /^action-noise-(\d+(?:\.\d+)?)$/.exec(name);
  return actionNoise ? { kind: "action-noise", sigma: Number(actionNoise[1]) } : undefined;
}

/** The simulator hooks a control may use. */
export type ControlSimulator = Pick<Environment, "spec" | "step" | "resetToObservation">;

/** `transitions` with the control applied, as a new set (the input is left as it is). */
export function applyControl(
  control: Control,
  transitions: Transitions,
  simulator: ControlSimulator,
  rng: Rng,
): Transitions {
  const out = copyTransitions(transitions);
  const od = out.observationDim;
  const ad = out.actionDim;
  if (control.kind === "state-noise") {
    const positions = Math.min(od, simulator.spec.positionDims ?? 0);
    for (const values of [out.observations, out.nextObservations]) {
      for (let i = 0; i < values.length; i++) {
        const entry = i % od;
        const error = entry < positions ? control.positionError : control.velocityError;
        values[i] += control.scale * error * rng.normal();
      }
    }
    return out;
  }
  if (typeof simulator.resetToObservation !== "function") {
    throw new UserError(
      `control '${control.kind}': environment '${simulator.spec.id}' cannot be put in a given state`,
    );
  }
  if (control.kind === "action-noise") {
    for (let i = 0; i < out.actions.length; i++) {
      out.actions[i] = Math.max(-1, Math.min(1, out.actions[i] + control.sigma * rng.normal()));
    }
  }
  if (control.kind === "shuffled-actions") {
    const order = rng.shuffle([...Array(out.size).keys()]);
    order.forEach((from, to) =>
      out.actions.set(transitions.actions.subarray(from * ad, (from + 1) * ad), to * ad)
    );
  }
  const nextState = control.kind !== "exact-reward";
  const reward = control.kind !== "exact-next-state";
  for (let row = 0; row < out.size; row++) {
    simulator.resetToObservation(out.observations.subarray(row * od, (row + 1) * od));
    const result = simulator.step(out.actions.subarray(row * ad, (row + 1) * ad));
    if (nextState) {
      out.nextObservations.set(result.observation, row * od);
      out.dones[row] = result.terminated ? 1 : 0;
    }
    if (reward) out.rewards[row] = result.reward;
  }
  return out;
}
