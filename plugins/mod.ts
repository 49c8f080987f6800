/**
 * The built-in plugins. The CLI hands this set to the core's registry; the
 * core itself never imports a concrete plugin.
 *
 * @module
 */
import type { PluginSet } from "../core/registry.ts";
import { real } from "./sources/real.ts";
import { unguided } from "./sources/unguided.ts";
import { policyGuided } from "./sources/policy_guided.ts";
import { pets } from "./sources/pets.ts";
import { td3bc } from "./agents/td3_bc.ts";
import { iql } from "./agents/iql.ts";
import { maze2d } from "./envs/maze2d.ts";
import { locomotion } from "./envs/locomotion.ts";

/** Every built-in data source, agent and environment. */
export const builtinPlugins: PluginSet = {
  sources: [real, unguided, policyGuided, pets],
  agents: [td3bc, iql],
  environments: [() => maze2d(), () => locomotion()],
};

export { iql, locomotion, maze2d, pets, policyGuided, real, td3bc, unguided };
