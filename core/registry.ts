/**
 * The plugin registry: names to factories, for built-ins and for a user's
 * modules loaded by path or URL. Every plugin is checked against its contract
 * when it is registered; the core never imports a concrete plugin.
 *
 * @module
 */
import { resolve, toFileUrl } from "./paths.ts";
import type { z } from "zod";
import { type AgentPlugin, agentPluginSchema } from "./contracts/agent.ts";
import { type EnvironmentPlugin, environmentPluginSchema } from "./contracts/environment.ts";
import { type DataSource, dataSourceSchema } from "./contracts/source.ts";
import { formatZodIssues, UserError } from "./errors.ts";

/** The kinds of plugin. */
export type PluginKind = "source" | "agent" | "environment";

/** A factory of any plugin kind: called with the user's options (or nothing). */
export type PluginFactory = (options?: unknown) => unknown;

/** Built-in plugins, handed to the registry by whoever assembles the program. */
export interface PluginSet {
  /** Data-source factories. */
  sources?: PluginFactory[];
  /** Agent factories. */
  agents?: PluginFactory[];
  /** Environment factories. */
  environments?: PluginFactory[];
}

/** One registered plugin, as `plugins` lists it. */
export interface PluginEntry {
  /** Plugin kind. */
  kind: PluginKind;
  /** Plugin name. */
  name: string;
  /** `built-in`, or the module it came from. */
  origin: string;
  /** For environments: the dataset ids they serve. */
  datasets?: readonly string[];
}

const schemas: Record<PluginKind, z.ZodType> = {
  source: dataSourceSchema,
  agent: agentPluginSchema,
  environment: environmentPluginSchema,
};

const kindWords: Record<PluginKind, string> = {
  source: "data source",
  agent: "agent",
  environment: "environment",
};

function checkContract(kind: PluginKind, plugin: unknown, origin: string): void {
  const parsed = schemas[kind].safeParse(plugin);
  if (!parsed.success) {
    throw new UserError(
      `plugin from ${origin} does not satisfy the ${kindWords[kind]} contract:\n` +
        formatZodIssues(kindWords[kind], parsed.error),
    );
  }
}

function guessKind(plugin: Record<string, unknown>): PluginKind {
  if ("create" in plugin) return "agent";
  if ("make" in plugin || "datasets" in plugin) return "environment";
  return "source";
}

function instantiate(factory: unknown, options?: unknown): unknown {
  return typeof factory === "function" ? factory(options) : factory;
}

/** Maps names to plugin factories and makes configured plugin instances. */
export class PluginRegistry {
  #factories = new Map<string, { factory: unknown; entry: PluginEntry }>();

  /** A registry holding the given built-ins. */
  constructor(builtins: PluginSet = {}) {
    for (const factory of builtins.sources ?? []) this.add("source", factory, "built-in");
    for (const factory of builtins.agents ?? []) this.add("agent", factory, "built-in");
    for (const factory of builtins.environments ?? []) this.add("environment", factory, "built-in");
  }

  /**
   * Registers a factory (or a ready plugin object). It is called once with no
   * options to learn its name and check it against the contract.
   */
  add(kind: PluginKind, factory: unknown, origin: string): PluginEntry {
    let sample: unknown;
    try {
      sample = instantiate(factory);
    } catch (error) {
      throw new UserError(
        `plugin from ${origin}: its factory failed when called with no options: ${
          (error as Error).message
        }`,
      );
    }
    checkContract(kind, sample, origin);
    const plugin = sample as { name: string; datasets?: readonly string[] };
    const key = `${kind}:${plugin.name}`;
    const existing = this.#factories.get(key);
    if (existing && existing.entry.origin !== origin) {
      throw new UserError(
        `plugin from ${origin}: a ${
          kindWords[kind]
        } named '${plugin.name}' is already registered (${existing.entry.origin})`,
      );
    }
    const entry: PluginEntry = { kind, name: plugin.name, origin, datasets: plugin.datasets };
    this.#factories.set(key, { factory, entry });
    return entry;
  }

  /**
   * Loads a user's plugin module by path or URL. Its default export (or every
   * export named `plugin`/`plugins`) is a factory or a plugin object; the kind
   * is read from its shape and checked against that contract.
   */
  async load(specifier: string): Promise<PluginEntry[]> {
    const url = /^[a-z]+:/i.test(specifier) ? specifier : toFileUrl(resolve(specifier)).href;
    let module: Record<string, unknown>;
    try {
      module = await import(url);
    } catch (error) {
      throw new UserError(`cannot load plugin '${specifier}': ${(error as Error).message}`);
    }
    const exported = module.default ?? module.plugin ?? module.plugins;
    if (exported === undefined) {
      throw new UserError(
        `plugin '${specifier}' has no default export: export default a factory function ` +
          `(options) => plugin, or a plugin object`,
      );
    }
    const list = Array.isArray(exported) ? exported : [exported];
    return list.map((factory) => {
      let sample: unknown;
      try {
        sample = instantiate(factory);
      } catch (error) {
        throw new UserError(
          `plugin '${specifier}': its factory failed when called with no options: ${
            (error as Error).message
          }`,
        );
      }
      if (typeof sample !== "object" || sample === null) {
        throw new UserError(
          `plugin '${specifier}': expected a plugin object (or a factory returning one), got ${typeof sample}`,
        );
      }
      return this.add(guessKind(sample as Record<string, unknown>), factory, specifier);
    });
  }

  /** Every registered plugin, sorted by kind and name. */
  list(): PluginEntry[] {
    return [...this.#factories.values()]
      .map((value) => value.entry)
      .sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  }

  #make(kind: PluginKind, name: string, options: unknown): unknown {
    const found = this.#factories.get(`${kind}:${name}`);
    if (!found) {
      const known = this.list().filter((entry) => entry.kind === kind).map((entry) => entry.name);
      throw new UserError(
        `unknown ${kindWords[kind]} '${name}'; known: ${known.join(", ") || "none"} ` +
          `(add your own with --plugin ./path.ts)`,
      );
    }
    let plugin: unknown;
    try {
      plugin = instantiate(found.factory, options);
    } catch (error) {
      // The built-ins name the plugin and key already; a user's factory may not.
      if (error instanceof UserError) throw error;
      throw new UserError(`options of ${kindWords[kind]} '${name}': ${(error as Error).message}`);
    }
    checkContract(kind, plugin, found.entry.origin);
    return plugin;
  }

  /** A data source configured with `options`. */
  source(name: string, options?: unknown): DataSource {
    return this.#make("source", name, options) as DataSource;
  }

  /** An agent plugin configured with `options`. */
  agent(name: string, options?: unknown): AgentPlugin {
    return this.#make("agent", name, options) as AgentPlugin;
  }

  /** The environment plugin that serves a dataset id. */
  environmentFor(dataset: string): EnvironmentPlugin {
    for (const { entry } of this.#factories.values()) {
      if (entry.kind === "environment" && entry.datasets?.includes(dataset)) {
        return this.#make("environment", entry.name, undefined) as EnvironmentPlugin;
      }
    }
    const known = this.list().flatMap((entry) => entry.datasets ?? []);
    throw new UserError(`unknown dataset '${dataset}'; known: ${known.join(", ") || "none"}`);
  }
}
