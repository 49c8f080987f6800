/**
 * One cross-process lock for work that two processes (the cells of a grid,
 * workers on a shared filesystem) could start at once: a lock file beside
 * the artefact, created exclusively, holding a {@link LockRecord} that names
 * its owner and is rewritten as a heartbeat.
 *
 * A waiter polls until the lock is gone. It takes the lock over at once when
 * the record names a process of this host that no longer runs, and after
 * `staleMs` without a heartbeat otherwise (a holder on another host of a
 * shared filesystem, or a record it cannot read).
 *
 * @module
 */
import { dirname } from "./paths.ts";

/** How a lock waits for another holder. */
export interface LockOptions {
  /** A lock untouched for this long is taken to be left by a dead process. */
  staleMs: number;
  /** Wait between looks at a held lock. */
  pollMs: number;
  /** Called once when the lock is held by someone else, with the holder's record if readable. */
  onWait?: (holder: LockRecord | undefined) => void;
}

/** What a lock file holds: who owns it and when it last showed life. */
export interface LockRecord {
  /** Process id of the owner, on `host`. */
  pid: number;
  /** Host name of the owner. */
  host: string;
  /** A random id of this acquisition, so an owner recognises its own lock. */
  token: string;
  /** When the lock was taken (ISO 8601). */
  acquiredAt: string;
  /** The owner's latest heartbeat (ISO 8601); the file's mtime moves with it. */
  heartbeatAt: string;
}

/** Refreshes the held lock; cheap to call often (it writes at most every few seconds). */
export type Heartbeat = () => void;

/** The defaults of {@link withLock}. */
export const defaultLockOptions: LockOptions = { staleMs: 60_000, pollMs: 250 };

/** The lock file guarding `path`. */
export function lockPathOf(path: string): string {
  return `${path}.lock`;
}

/** A lock file's text as its record, or `undefined` when it holds none (empty, legacy). */
export function parseLockRecord(text: string): LockRecord | undefined {
  try {
    const record = JSON.parse(text);
    return typeof record?.token === "string" ? record as LockRecord : undefined;
  } catch {
    return undefined;
  }
}

/** A lock's record, or `undefined` when there is none or it is unreadable (being written, legacy). */
export function readLockRecord(lockPath: string): LockRecord | undefined {
  try {
    return parseLockRecord(Deno.readTextFileSync(lockPath));
  } catch {
    return undefined;
  }
}

/**
 * Creates the lock file with its record in one step: the record is written
 * beside it and hard-linked into place, which fails if the lock exists. A
 * file created empty and written after could be left empty by a process
 * killed in between, and a waiter cannot tell whose such a lock is.
 */
async function tryCreate(lockPath: string, record: LockRecord): Promise<boolean> {
  const staged = `${lockPath}.${record.token}.staged`;
  await Deno.writeTextFile(staged, JSON.stringify(record));
  try {
    await Deno.link(staged, lockPath);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw error;
  } finally {
    await Deno.remove(staged).catch(() => {});
  }
}

/**
 * Whether a process of this host is alive, where the system can tell
 * (Linux's `/proc`); `undefined` where it cannot, so callers fall back to
 * staleness.
 */
export function processAlive(pid: number): boolean | undefined {
  try {
    Deno.statSync("/proc/self");
  } catch {
    return undefined;
  }
  try {
    // A zombie (state Z, or X while it is reaped) has exited; only its parent has not looked yet.
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

/** One line saying who holds a lock and since when, for a waiter to print. */
export function describeHolder(lockPath: string, holder: LockRecord | undefined): string {
  return holder
    ? `waiting for ${lockPath}: held by pid ${holder.pid} on ${holder.host} since ${holder.acquiredAt} (last heartbeat ${holder.heartbeatAt})`
    : `waiting for ${lockPath}: held by a process that left no readable record`;
}

/** Whether a process of this host is alive: `undefined` where this process cannot tell. */
export type LivenessProbe = (pid: number) => boolean | undefined | Promise<boolean | undefined>;

let probe: LivenessProbe = processAlive;

/**
 * Sets how this process tells whether a lock's owner lives. A worker process
 * may not read `/proc` (it would show other processes' environments), so it
 * asks its scheduler instead.
 */
export function setLivenessProbe(next: LivenessProbe): void {
  probe = next;
}

/** Whether a lock's owner is a process of this host that has exited. */
async function ownerIsDead(holder: LockRecord | undefined): Promise<boolean> {
  return holder !== undefined && holder.host === Deno.hostname() && holder.pid !== Deno.pid &&
    (await probe(holder.pid)) === false;
}

async function isStale(lockPath: string, staleMs: number): Promise<boolean> {
  const info = await Deno.stat(lockPath).catch(() => undefined);
  return info?.mtime !== null && info?.mtime !== undefined &&
    Date.now() - info.mtime.getTime() > staleMs;
}

/**
 * Runs `work` while holding the lock of `path` (the file `path + ".lock"`);
 * another holder makes it wait. The lock is kept fresh by a timer and by the
 * `heartbeat` that `work` receives, which work that blocks the event loop
 * (synchronous training) calls now and then. The lock is removed afterwards
 * unless someone else has taken it over meanwhile.
 */
export async function withLock<T>(
  path: string,
  work: (heartbeat: Heartbeat) => Promise<T>,
  options: Partial<LockOptions> = {},
): Promise<T> {
  const { staleMs, pollMs, onWait } = { ...defaultLockOptions, ...options };
  const lockPath = lockPathOf(path);
  await Deno.mkdir(dirname(lockPath), { recursive: true });
  const now = new Date().toISOString();
  const record: LockRecord = {
    pid: Deno.pid,
    host: Deno.hostname(),
    token: crypto.randomUUID(),
    acquiredAt: now,
    heartbeatAt: now,
  };
  let told = false;
  while (!(await tryCreate(lockPath, record))) {
    const holder = readLockRecord(lockPath);
    if (await ownerIsDead(holder)) {
      // Only that owner's lock goes: another waiter may have replaced it already.
      if (readLockRecord(lockPath)?.token === holder!.token) {
        await Deno.remove(lockPath).catch(() => {});
      }
      continue;
    }
    if (await isStale(lockPath, staleMs)) {
      // Recursive: locks of older releases were directories.
      await Deno.remove(lockPath, { recursive: true }).catch(() => {});
      continue;
    }
    if (!told) {
      told = true;
      onWait?.(holder);
    }
    await new Promise((done) => setTimeout(done, pollMs));
  }
  const ours = () => readLockRecord(lockPath)?.token === record.token;
  const beatMs = Math.max(1000, Math.floor(staleMs / 6));
  let lastBeat = Date.now();
  let lost = false;
  const beat = (force: boolean) => {
    const at = Date.now();
    if (lost || (!force && at - lastBeat < Math.min(5000, beatMs))) return;
    lastBeat = at;
    if (!ours()) {
      // Taken over as stale: leave the new owner's record alone; the result is still written atomically.
      lost = true;
      return;
    }
    record.heartbeatAt = new Date(at).toISOString();
    try {
      Deno.writeTextFileSync(lockPath, JSON.stringify(record), { create: false });
    } catch {
      lost = true;
    }
  };
  const timer = setInterval(() => beat(true), beatMs);
  try {
    return await work(() => beat(false));
  } finally {
    clearInterval(timer);
    if (ours()) await Deno.remove(lockPath).catch(() => {});
  }
}

/**
 * {@link withLock} over several paths: takes their locks one at a time in
 * sorted order, runs `work` holding all of them, and releases them. One
 * order for every process means two processes that want overlapping sets
 * never each hold a lock the other waits for. `optionsOf` gives each path's
 * options (e.g. an `onWait` naming what waits); `work`'s heartbeat
 * refreshes every lock.
 */
export function withLocks<T>(
  paths: readonly string[],
  work: (heartbeat: Heartbeat) => Promise<T>,
  optionsOf: (path: string) => Partial<LockOptions> = () => ({}),
): Promise<T> {
  const sorted = [...new Set(paths)].sort();
  const heartbeats: Heartbeat[] = [];
  const holdFrom = (index: number): Promise<T> => {
    if (index === sorted.length) return work(() => heartbeats.forEach((beat) => beat()));
    return withLock(sorted[index], (heartbeat) => {
      heartbeats.push(heartbeat);
      return holdFrom(index + 1);
    }, optionsOf(sorted[index]));
  };
  return holdFrom(0);
}
