/**
 * The built-in plugins. The CLI hands this set to the core's registry; the
 * core itself never imports a concrete plugin.
 *
 * @module
 */
import type { PluginSet } from "../core/registry.ts";
import { real } from "./sources/real.ts";

/** Every built-in data source, agent and environment. */
export const builtinPlugins: PluginSet = {
  sources: [real],
  agents: [],
  environments: [],
};
