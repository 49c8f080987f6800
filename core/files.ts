/**
 * Files that are never half-written (a temporary file in the same folder,
 * then a rename), tolerant reads, and a recursive file listing.
 *
 * @module
 */
import { dirname, join } from "./paths.ts";

// Re-exported so that importers from before the kit was split keep working.
export { digest, stableStringify } from "./fingerprint.ts";
export { withLock } from "./lock.ts";

let counter = 0;

/** A temporary name beside `path`, unique per process; merges skip names ending in `.tmp`. */
function temporaryName(path: string): string {
  counter += 1;
  return `${path}.${Deno.pid}.${counter}.tmp`;
}

/**
 * Makes `path` appear atomically: `write` fills a temporary file beside it,
 * which is then renamed over `path`, so readers see the old file or the whole
 * new one. The temporary file is removed when `write` fails. The folder must
 * exist.
 */
export async function replaceAtomically(
  path: string,
  write: (temporary: string) => Promise<void>,
): Promise<void> {
  const temporary = temporaryName(path);
  try {
    await write(temporary);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/** Writes bytes or text to `path` atomically, making its folder if needed. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await replaceAtomically(path, async (temporary) => {
    if (typeof data === "string") await Deno.writeTextFile(temporary, data);
    else await Deno.writeFile(temporary, data);
  });
}

/** Writes a value as pretty JSON, atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Reads a file's bytes, or `undefined` when it does not exist. */
export async function readFileIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Reads a JSON file, or `undefined` when it does not exist. */
export async function readJsonIfExists(path: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`cannot read JSON '${path}': ${(error as Error).message}`);
  }
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Every file under `folder`, in its sub-folders too, as full paths sorted by
 * code unit; `keep` (given the path and the entry) filters them. A missing
 * folder has none.
 */
export async function listFilesRecursively(
  folder: string,
  keep: (path: string, entry: Deno.DirEntry) => boolean = () => true,
): Promise<string[]> {
  const found: string[] = [];
  const visit = async (at: string): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(at));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(at, entry.name);
      if (entry.isDirectory) await visit(path);
      else if (entry.isFile && keep(path, entry)) found.push(path);
    }
  };
  await visit(folder);
  return found.sort();
}
