/**
 * The grid configuration: one zod-validated object from CLI flags and/or a
 * JSON file. An unknown key or a wrong type is an error naming the key.
 *
 * @module
 */
import { z } from "zod";
import { presetNames } from "./contracts/common.ts";
import { backendSchema } from "./compute.ts";
import { formatZodIssues, UserError } from "./errors.ts";
import { grantKinds, grantPattern, grantsImport, isUrlPlugin } from "./permissions.ts";

const pluginOptions = z.record(z.string(), z.record(z.string(), z.unknown()));

/** The values of `stackSeeds`. */
export const stackSeedModes = ["off", "on"] as const;

/** The largest seed value (seeds feed 31-bit hashes). */
const maxSeed = 2 ** 31 - 1;
/** The most seeds a count (or a range of seeds on the command line) may ask for. */
export const maxSeedCount = 10_000;
/** The most cells a grid may have; beyond it, a typo is likelier than an intent. */
export const maxGridCells = 100_000;

/** The grid's zod schema; every field has a default, so `{}` is the default grid. */
export const gridConfigSchema = z.strictObject({
  /** Dataset ids, e.g. `maze2d-umaze`. */
  datasets: z.array(z.string().min(1)).min(1).default(["maze2d-umaze"]),
  /** Data-source plugin names (default: the paper's comparison of real, unguided and policy-guided data). */
  sources: z.array(z.string().min(1)).min(1).default(["real", "unguided", "policy-guided"]),
  /** Agent plugin names. */
  agents: z.array(z.string().min(1)).min(1).default(["td3bc", "iql"]),
  /** Seeds: a list, or a count N meaning 0 … N−1. */
  seeds: z
    .union([
      z.array(z.number().int().nonnegative().max(maxSeed)).min(1),
      z.number().int().positive().max(maxSeedCount),
    ])
    .default(4)
    .transform((seeds) => (typeof seeds === "number" ? [...Array(seeds).keys()] : seeds)),
  /** Size preset. */
  preset: z.enum(presetNames).default("quick"),
  /** Compute backend. */
  backend: backendSchema.default("wasm"),
  /** Result folder of the run. */
  out: z.string().min(1).default("results/bench"),
  /** Parallel worker processes; 0 means one per core. */
  workers: z.number().int().nonnegative().default(0),
  /**
   * `on`: a worker trains the pending seeds of one (dataset, source, agent)
   * as one stack (seeds as a batch dimension); `off`: one seed at a time.
   * Not part of a cell's identity: a stack's members are bit-identical to
   * their seeds alone on the wasm backend's kernels.
   */
  stackSeeds: z.enum(stackSeedModes).default("off"),
  /** Extra plugin modules by path or URL. */
  plugins: z.array(z.string().min(1)).default([]),
  /**
   * Permissions granted to plugins beyond the harness's own, as Deno names
   * them: `net`, `read=/srv/extra`, `env=API_TOKEN`, `run`, `import`, … Every
   * worker gets them, so every plugin of the grid does.
   */
  pluginAllow: z.array(
    z.string().regex(grantPattern, {
      message: `expected a permission (${grantKinds.join(", ")}), optionally =<value>`,
    }),
  ).default([]),
  /** Options per data-source name. */
  sourceOptions: pluginOptions.default({}),
  /** Options per agent name. */
  agentOptions: pluginOptions.default({}),
  /** Folders searched for D4RL HDF5 files (e.g. `maze2d-umaze-v1.hdf5`) before collecting. */
  dataDirs: z.array(z.string()).default(["data/d4rl"]),
  /** Folder for collected datasets and trained models, shared across runs. */
  cacheDir: z.string().min(1).default(".cache"),
  /**
   * Longest a data source's `prepare` or `generate` may take before its cell
   * fails naming the hook; absent: the preset's (see `hookTimeoutSeconds`).
   */
  hookTimeoutSeconds: z.number().positive().optional(),
}).superRefine((config, context) => {
  // A name twice would plan its cells twice; options for a plugin the grid
  // does not use are most likely a typo of one it does.
  for (const key of ["datasets", "sources", "agents", "seeds"] as const) {
    const values: unknown = config[key];
    // A field that failed its own check arrives here unparsed.
    if (!Array.isArray(values)) continue;
    const repeated = values.filter((value, i) => values.indexOf(value) !== i);
    if (repeated.length) {
      context.addIssue({
        code: "custom",
        path: [key],
        message: `listed more than once: ${[...new Set(repeated)].join(", ")}`,
      });
    }
  }
  for (
    const [key, names] of [["sourceOptions", config.sources], [
      "agentOptions",
      config.agents,
    ]] as const
  ) {
    if (!Array.isArray(names)) continue;
    for (const name of Object.keys(config[key] ?? {})) {
      if (!names.includes(name)) {
        context.addIssue({
          code: "custom",
          path: [key, name],
          message: `'${name}' is not in the grid (${names.join(", ")})`,
        });
      }
    }
  }
  // A plugin by URL is code fetched over the network at every run: only when granted.
  if (Array.isArray(config.plugins) && Array.isArray(config.pluginAllow)) {
    config.plugins.forEach((plugin, index) => {
      if (isUrlPlugin(plugin) && !grantsImport(config.pluginAllow)) {
        context.addIssue({
          code: "custom",
          path: ["plugins", index],
          message: `'${plugin}' is a URL: plugins are not fetched over the network unless ` +
            "granted (--plugin-allow import); download it and pass its path",
        });
      }
    });
  }
  const lists = [config.datasets, config.sources, config.agents, config.seeds] as unknown[];
  if (!lists.every(Array.isArray)) return;
  const cells = (lists as unknown[][]).reduce((product, list) => product * list.length, 1);
  if (cells > maxGridCells) {
    context.addIssue({
      code: "custom",
      path: ["seeds"],
      message: `the grid has ${cells} cells; at most ${maxGridCells}`,
    });
  }
});

/** A validated grid configuration (defaults applied, seeds expanded). */
export type GridConfig = z.output<typeof gridConfigSchema>;

/** What a user may write in a grid JSON file or pass as flags. */
export type GridConfigInput = z.input<typeof gridConfigSchema>;

/** Validates a config object; `where` names its origin (a file or `flags`) in errors. */
export function parseGridConfig(input: unknown, where = "config"): GridConfig {
  const parsed = gridConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    // One problem is one line; several get a line each under a heading.
    const problems = formatZodIssues(where, parsed.error);
    throw new UserError(`invalid grid config:${problems.includes("\n") ? "\n" : " "}${problems}`);
  }
  return parsed.data;
}

/** Reads a grid JSON file and merges flags over it (flags win), then validates. */
export async function loadGridConfig(
  file: string | undefined,
  flags: Record<string, unknown>,
): Promise<GridConfig> {
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      throw new UserError(`cannot read grid config '${file}': ${(error as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text);
    } catch (error) {
      throw new UserError(`grid config '${file}' is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof fromFile !== "object" || fromFile === null || Array.isArray(fromFile)) {
      throw new UserError(`grid config '${file}': expected a JSON object at the top level`);
    }
    parseGridConfig(fromFile, file);
    // Unless flags replace them, the file's data folders must exist: a typo
    // would silently mean collected data instead of the user's files.
    if (flags.dataDirs === undefined) await checkDataDirs(file, fromFile.dataDirs as string[]);
  }
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return parseGridConfig({ ...fromFile, ...defined }, file ? `${file} + flags` : "flags");
}

async function checkDataDirs(file: string, folders: string[] | undefined): Promise<void> {
  for (const [index, folder] of (folders ?? []).entries()) {
    const found = await Deno.stat(folder).catch(() => undefined);
    if (!found?.isDirectory) {
      throw new UserError(
        `grid config '${file}': key "dataDirs[${index}]": '${folder}' is not a folder; ` +
          "expected a folder holding D4RL files (e.g. maze2d-umaze-v1.hdf5)",
      );
    }
  }
}

/**
 * How long a data-source hook may run: the config's `hookTimeoutSeconds`, or
 * the preset's generous default (training a `paper` denoiser takes days on a
 * CPU, a `quick` one minutes).
 */
export function hookTimeoutSeconds(config: GridConfig): number {
  const byPreset = { smoke: 10 * 60, quick: 4 * 3600, paper: 14 * 24 * 3600 } as const;
  return config.hookTimeoutSeconds ?? byPreset[config.preset];
}

/** The number of worker processes a config asks for (0 → one per core). */
export function workerCount(config: GridConfig): number {
  return config.workers > 0 ? config.workers : Math.max(1, navigator.hardwareConcurrency || 1);
}
