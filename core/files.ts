/**
 * Files that are never half-written: atomic writes (temp file + rename) and
 * a simple cross-process lock for work that two processes could start at once.
 *
 * @module
 */
import { dirname } from "./paths.ts";

let counter = 0;

function temporaryName(path: string): string {
  counter += 1;
  return `${path}.${Deno.pid}.${counter}.tmp`;
}

/** Writes bytes to `path` atomically: readers see the old file or the whole new one. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const temporary = temporaryName(path);
  try {
    if (typeof data === "string") await Deno.writeTextFile(temporary, data);
    else await Deno.writeFile(temporary, data);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/** Writes a value as pretty JSON, atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
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
 * Runs `work` while holding a lock directory at `path + ".lock"`. Another
 * process waits for it. The holder touches the lock every few seconds; a lock
 * untouched for `staleMs` (its holder died, on any host of a shared
 * filesystem) is taken over.
 */
export async function withLock<T>(
  path: string,
  work: () => Promise<T>,
  staleMs = 60_000,
): Promise<T> {
  const lock = `${path}.lock`;
  await Deno.mkdir(dirname(lock), { recursive: true });
  for (;;) {
    try {
      await Deno.mkdir(lock);
      await Deno.writeTextFile(`${lock}/owner`, `${Deno.pid}\n`);
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      const info = await Deno.stat(lock).catch(() => undefined);
      if (info?.mtime && Date.now() - info.mtime.getTime() > staleMs) {
        await Deno.remove(lock, { recursive: true }).catch(() => {});
        continue;
      }
      await new Promise((done) => setTimeout(done, 250));
    }
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    Deno.utime(lock, now, now).catch(() => {});
  }, Math.max(1000, Math.floor(staleMs / 6)));
  try {
    return await work();
  } finally {
    clearInterval(heartbeat);
    await Deno.remove(lock, { recursive: true }).catch(() => {});
  }
}

/** A short hex digest (SHA-256) of a string, for content keys. */
export async function digest(text: string, length = 16): Promise<string> {
  const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("").slice(
    0,
    length,
  );
}

/** JSON with object keys sorted, so equal values always give equal text (for hashing). */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
