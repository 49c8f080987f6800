/**
 * The permissions of a worker process, where plugin code runs: read the
 * project, the data, cache and output folders and the npm packages; write the
 * output and cache folders; FFI for the one BLAS library found; the
 * environment variables the harness reads; the host name (lock records name
 * it). No network, no subprocesses, no other files. A user widens them only
 * explicitly, with grants such as `net` or `read=/srv/data`
 * (`--plugin-allow`), which apply to every worker and so to every plugin of
 * the grid.
 *
 * @module
 */
import { dirname, fromFileUrl, resolve } from "./paths.ts";

/** The kinds of permission a grant may name (Deno's `--allow-<kind>`). */
export const grantKinds = ["read", "write", "net", "env", "run", "sys", "ffi", "import"] as const;

/** One of {@link grantKinds}. */
export type GrantKind = (typeof grantKinds)[number];

/** A grant as a user writes it: `net`, or `net=example.org:443`, `read=/srv/data`. */
export const grantPattern = new RegExp(`^(${grantKinds.join("|")})(=.+)?$`);

/**
 * The environment variables a worker gets: the harness's own (`PGD_*`: BLAS
 * choice, debug), the BLAS libraries' settings (threads, and the CPU kernel
 * and cache sizes OpenBLAS is told, which change its rounding), and `NO_COLOR`.
 * Its environment holds these alone (and `DENO_DIR`, where Deno finds its
 * caches): the HDF5 library reads the whole environment when it starts, so
 * the worker may read all of it, and all of it is this.
 */
export const workerEnvironmentNames = [
  "PGD_*",
  "OPENBLAS_*",
  "GOTO_*",
  "MKL_*",
  "VECLIB_*",
  "OMP_NUM_THREADS",
  "NO_COLOR",
];

function denoDir(): string | undefined {
  const home = readEnv("HOME");
  const cache = readEnv("XDG_CACHE_HOME") ??
    (home ? (Deno.build.os === "darwin" ? `${home}/Library/Caches` : `${home}/.cache`) : undefined);
  return readEnv("DENO_DIR") ?? (cache ? `${cache}/deno` : undefined);
}

/**
 * The environment a worker starts with: the variables of
 * {@link workerEnvironmentNames} and those granted by name (`env=NAME`)
 * that are set here, and `DENO_DIR`. `undefined` when `env` is granted
 * whole: the worker inherits everything.
 */
export function workerEnvironment(grants: readonly string[]): Record<string, string> | undefined {
  if (grants.includes("env")) return undefined;
  const granted = grants.filter((grant) => grant.startsWith("env="))
    .flatMap((grant) => grant.slice(4).split(","));
  // A process a plugin may start is found on the PATH.
  if (grants.some((grant) => /^run(=|$)/.test(grant))) granted.push("PATH");
  // A name ending in `*` (PGD_*) stands for every name with that prefix.
  const names = [...workerEnvironmentNames, ...granted];
  const allowed = (name: string) =>
    names.some((pattern) =>
      pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern
    );
  let all: Record<string, string> = {};
  try {
    all = Deno.env.toObject();
  } catch {
    // Without env access here, the worker gets none either.
  }
  const env = Object.fromEntries(
    Object.entries(all).filter(([name]) => allowed(name)),
  );
  const dir = denoDir();
  if (dir) env.DENO_DIR = dir;
  return env;
}

/** What a worker's permissions are made of. */
export interface WorkerAccess {
  /** Folders (or files) the worker reads. */
  read: string[];
  /** Folders the worker writes. */
  write: string[];
  /** The BLAS library the worker may open through FFI, if one was found. */
  ffi?: string;
  /** The user's grants (see {@link grantPattern}). */
  grants: readonly string[];
}

/** The folder holding this project (core/ lies in it); `undefined` when loaded from a URL. */
export function projectRoot(): string | undefined {
  const url = new URL("..", import.meta.url);
  return url.protocol === "file:" ? fromFileUrl(url).replace(/\/$/, "") : undefined;
}

function realPath(path: string): string | undefined {
  try {
    return Deno.realPathSync(path);
  } catch {
    return undefined;
  }
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Where npm packages load from: the project's `node_modules` (its real
 * folder, when it is a link) and Deno's npm cache, which `nodeModulesDir`
 * modes other than `auto` read from.
 */
export function packageFolders(root = projectRoot()): string[] {
  const folders: string[] = [];
  if (root) {
    const modules = realPath(resolve(root, "node_modules"));
    if (modules) folders.push(modules);
  }
  const dir = denoDir();
  const npm = dir ? realPath(resolve(dir, "npm")) : undefined;
  if (npm) folders.push(npm);
  return folders;
}

/**
 * The folders a plugin module needs to be imported: its own folder (a
 * module may import its neighbours and read its files). URL plugins are
 * fetched, not read.
 */
export function pluginFolders(plugins: readonly string[]): string[] {
  return plugins.filter((plugin) => !isUrlPlugin(plugin)).map((plugin) =>
    dirname(plugin.startsWith("file:") ? fromFileUrl(plugin) : resolve(plugin))
  );
}

/**
 * Whether a plugin specifier is fetched rather than read: a URL (`https:`,
 * `jsr:`, …) other than `file:`, and not a Windows drive path.
 */
export function isUrlPlugin(specifier: string): boolean {
  return /^[a-z][a-z0-9+.-]+:/i.test(specifier) && !/^(file:|[a-z]:[\\/])/i.test(specifier);
}

/** Whether the grants let a worker fetch a plugin by URL (`import` or `net`). */
export function grantsImport(grants: readonly string[]): boolean {
  return grants.some((grant) => /^(import|net)(=|$)/.test(grant));
}

function unique(values: Iterable<string>): string[] {
  return [...new Set(values)];
}

/**
 * Deno's permission flags for a worker: the harness's access plus the
 * user's grants. A grant without a value (`net`) grants the whole kind; one
 * with a value adds to that kind's list. Imports by URL are denied unless
 * granted, since Deno otherwise fetches from a few well-known hosts.
 */
export function permissionFlags(access: WorkerAccess): string[] {
  const lists = new Map<GrantKind, Set<string> | "all">();
  const add = (kind: GrantKind, value?: string) => {
    const existing = lists.get(kind);
    if (value === undefined) lists.set(kind, "all");
    else if (existing !== "all") lists.set(kind, (existing ?? new Set()).add(value));
  };
  for (const path of access.read) add("read", path);
  for (const path of access.write) add("write", path);
  if (access.ffi) add("ffi", access.ffi);
  // The environment is cleared to what the worker may see (workerEnvironment).
  add("env");
  add("sys", "hostname");
  for (const grant of access.grants) {
    const match = grantPattern.exec(grant);
    if (!match) throw new Error(`permissions: not a grant: '${grant}'`);
    const kind = match[1] as GrantKind;
    const value = match[2]?.slice(1);
    for (const item of value === undefined ? [undefined] : value.split(",")) {
      // Paths are resolved here, where the user's working folder is known.
      add(
        kind,
        item !== undefined && ["read", "write", "ffi"].includes(kind) ? resolve(item) : item,
      );
    }
  }
  const flags = ["--no-prompt"];
  for (const [kind, values] of lists) {
    flags.push(
      values === "all" ? `--allow-${kind}` : `--allow-${kind}=${unique(values).join(",")}`,
    );
  }
  if (!lists.has("import") && !lists.has("net")) flags.push("--deny-import");
  return flags;
}

/**
 * The message of a permission refusal inside a worker, naming who asked:
 * the plugin module in whose code the refusal happened (found on the
 * stack), and the grant that would allow it.
 */
export function describeRefusal(error: Error, plugins: readonly string[]): string {
  const stack = error.stack ?? "";
  const plugin = plugins.find((specifier) => {
    const url = /^[a-z][a-z0-9+.-]+:/i.test(specifier)
      ? specifier
      : new URL(`file://${resolve(specifier)}`).href;
    return stack.includes(url);
  });
  const kind = /Requires (\w+) access/.exec(error.message)?.[1];
  const who = plugin ? `plugin '${plugin}'` : "the cell's code";
  const grant = kind ? ` (grant it with --plugin-allow ${kind}, if it should)` : "";
  return `permission denied to ${who}: ${error.message}${grant}`;
}
