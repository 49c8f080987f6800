import { assertEquals, assertOk, assertThrows } from "./assert.ts";
import { z } from "zod";
import { formatOptionErrors, UserError } from "../core/errors.ts";
import { real } from "../plugins/sources/real.ts";
import {
  listFilesRecursively,
  readFileIfExists,
  replaceAtomically,
  writeFileAtomic,
} from "../core/files.ts";
import {
  datasetFingerprint,
  datasetSettingsKey,
  digest,
  stableStringify,
  valueKey,
} from "../core/fingerprint.ts";
import {
  describeHolder,
  lockPathOf,
  type LockRecord,
  parseLockRecord,
  readLockRecord,
  withLock,
} from "../core/lock.ts";
import { cacheKey, produceOnce } from "../diffusion/cache.ts";
import { contentKey } from "../worldmodel/cache.ts";
import type { D4rlDataset } from "../core/types.ts";

const dataset: D4rlDataset = {
  size: 3,
  observationDim: 2,
  actionDim: 1,
  observations: Float32Array.from([0.5, -1, 2, 3.25, 4, 5]),
  actions: Float32Array.from([0.1, -0.2, 0.3]),
  rewards: Float32Array.from([1, 0, -1]),
  terminals: Uint8Array.from([0, 0, 1]),
  timeouts: Uint8Array.from([0, 1, 0]),
  infos: {},
  metadata: {},
};
const settings = {
  model: "pets",
  ensemble: { members: 7, hidden: [200, 200] },
  lr: 1e-3,
  skip: undefined,
};

// The strings below were computed by the implementations before the kit
// (diffusion/cache.ts, worldmodel/cache.ts, core/files.ts at e23c7e6): cached
// artefacts and cell identities on disk are named by them.
Deno.test("fingerprint: dataset fingerprints and cache keys are the strings of before", async () => {
  const fingerprint = "c6461f45bcd872fa39a15082b07b29a7df4d2044cae8dcc66a9073a3770451f4";
  assertEquals(await datasetFingerprint(dataset), fingerprint);
  assertEquals(
    await cacheKey({ b: [1, { d: "x", c: null }], a: 0.1, e: { z: true, y: -2e-8 } }),
    "580f46e4007bb65fef56ebd07a35a3d3",
  );
  const settingsKey = "a92ad98fbad3c36b2b3ad09d2b73f8275b7fe6a05a75e4159e4cd673e0f380ef";
  assertEquals(await datasetSettingsKey(dataset, settings), settingsKey);
  assertEquals(await contentKey(dataset, settings), settingsKey);
  const withNext = { ...dataset, nextObservations: Float32Array.from([2, 3.25, 4, 5, 6, 7]) };
  assertEquals(
    await contentKey(withNext, settings),
    "cd70da985d1125a712dbd69a055420c2d71d76f8ac6562312cd8cf1e06d5b154",
  );
  const cell = { cell: { seed: 1, dataset: "maze2d-umaze" }, preset: "smoke" };
  assertEquals(await digest(stableStringify(cell)), "4d807980f2c9a30d");
  assertEquals(await valueKey(cell), "4d807980f2c9a30d");
});

Deno.test("fingerprint: stable under key order, sensitive to every covered array", async () => {
  assertEquals(await valueKey({ a: 1, b: { c: 2 } }), await valueKey({ b: { c: 2 }, a: 1 }));
  const first = await datasetFingerprint(dataset);
  assertEquals(await datasetFingerprint({ ...dataset }), first);
  for (const field of ["observations", "actions", "rewards"] as const) {
    const changed = { ...dataset, [field]: dataset[field].map((v, i) => (i === 0 ? v + 1 : v)) };
    assertOk((await datasetFingerprint(changed)) !== first, field);
  }
  const flipped = { ...dataset, timeouts: Uint8Array.from([1, 1, 0]) };
  assertOk((await datasetFingerprint(flipped)) !== first);
});

Deno.test("atomic write: a failed write leaves neither a partial file nor a temporary", async () => {
  const folder = await Deno.makeTempDir();
  const path = `${folder}/sub/artefact.bin`;
  await writeFileAtomic(path, Uint8Array.from([1, 2, 3]));
  let failed = false;
  try {
    await replaceAtomically(path, async (temporary) => {
      await Deno.writeFile(temporary, Uint8Array.from([9, 9]));
      throw new Error("disk full");
    });
  } catch {
    failed = true;
  }
  assertOk(failed);
  assertEquals([...(await readFileIfExists(path))!], [1, 2, 3]);
  assertEquals([...Deno.readDirSync(`${folder}/sub`)].map((entry) => entry.name), [
    "artefact.bin",
  ]);
  assertEquals(await readFileIfExists(`${folder}/missing.bin`), undefined);
  await Deno.remove(folder, { recursive: true });
});

Deno.test("atomic write: concurrent readers see the old or the whole new content", async () => {
  const folder = await Deno.makeTempDir();
  const path = `${folder}/big.txt`;
  const versions = ["a", "b", "c", "d"].map((letter) => letter.repeat(1 << 18));
  await writeFileAtomic(path, versions[0]);
  const writes = Promise.all(versions.slice(1).map((text) => writeFileAtomic(path, text)));
  for (let i = 0; i < 20; i++) assertOk(versions.includes(await Deno.readTextFile(path)));
  await writes;
  await Deno.remove(folder, { recursive: true });
});

Deno.test("lock: two holders run one at a time; the record names the owner", async () => {
  const folder = await Deno.makeTempDir();
  const path = `${folder}/artefact`;
  const events: string[] = [];
  const hold = (name: string) =>
    withLock(path, async (heartbeat) => {
      events.push(`${name}+`);
      const record = readLockRecord(lockPathOf(path))!;
      assertEquals(record.pid, Deno.pid);
      assertEquals(record.host, Deno.hostname());
      assertOk(Date.parse(record.heartbeatAt) >= Date.parse(record.acquiredAt));
      heartbeat();
      await new Promise((done) => setTimeout(done, 50));
      events.push(`${name}-`);
      return name;
    }, { pollMs: 10 });
  assertEquals(await Promise.all([hold("a"), hold("b")]), ["a", "b"]);
  assertEquals(events.length, 4);
  assertEquals(events[0][0], events[1][0], events.join(" "));
  assertEquals(events[2][0], events[3][0], events.join(" "));
  assertEquals([...Deno.readDirSync(folder)], []);
  await Deno.remove(folder, { recursive: true });
});

Deno.test("lock: the lock file never exists without its owner's record", async () => {
  // A lock created empty and written after would be left empty by an owner killed in between,
  // and its waiters could not tell that its owner died: they would wait out the staleness.
  const folder = await Deno.makeTempDir();
  const path = `${folder}/artefact`;
  let running = true;
  let seen = 0;
  let unreadable = 0;
  const watch = (async () => {
    while (running) {
      const text = await Deno.readTextFile(lockPathOf(path)).catch(() => undefined);
      if (text !== undefined) {
        seen += 1;
        if (parseLockRecord(text) === undefined) unreadable += 1;
      }
      await Promise.resolve();
    }
  })();
  for (let i = 0; i < 200; i++) await withLock(path, () => Promise.resolve(i), { pollMs: 1 });
  running = false;
  await watch;
  assertOk(seen > 0, "the watcher saw the lock");
  assertEquals(unreadable, 0, `${unreadable} of ${seen} looks found no record`);
  assertEquals([...Deno.readDirSync(folder)], [], "nothing staged is left behind");
  await Deno.remove(folder, { recursive: true });
});

Deno.test("lock: a stale lock file (its holder died) is taken over", async () => {
  const folder = await Deno.makeTempDir();
  const path = `${folder}/artefact`;
  await Deno.writeTextFile(lockPathOf(path), "");
  const old = new Date(Date.now() - 10_000);
  await Deno.utime(lockPathOf(path), old, old);
  assertEquals(await withLock(path, () => Promise.resolve(7), { staleMs: 5_000 }), 7);
  assertEquals(await readFileIfExists(lockPathOf(path)), undefined);
  await Deno.remove(folder, { recursive: true });
});

Deno.test("lock: a fresh lock of a dead process on this host is taken over at once, after saying who held it", async () => {
  const folder = await Deno.makeTempDir();
  try {
    // A process that has exited leaves its pid free (Linux reuses pids only much later).
    const child = new Deno.Command("true").spawn();
    const dead = child.pid;
    await child.status;
    const path = `${folder}/artefact`;
    const record = {
      pid: dead,
      host: Deno.hostname(),
      token: "left-behind",
      acquiredAt: "2026-01-01T00:00:00.000Z",
      heartbeatAt: new Date().toISOString(),
    };
    await Deno.writeTextFile(lockPathOf(path), JSON.stringify(record));
    const told: (LockRecord | undefined)[] = [];
    const started = performance.now();
    const value = await withLock(path, () => Promise.resolve(7), {
      staleMs: 600_000,
      onWait: (holder) => told.push(holder),
    });
    assertEquals(value, 7);
    assertOk(performance.now() - started < 2000, "no wait for staleness");
    assertEquals(told, [], "a dead owner is not waited for");
    // A live owner (this test's parent process stands in) is waited for, and named once.
    await Deno.writeTextFile(
      lockPathOf(path),
      JSON.stringify({ ...record, pid: Deno.ppid, token: "alive" }),
    );
    const waiting = withLock(path, () => Promise.resolve(8), {
      staleMs: 600_000,
      pollMs: 20,
      onWait: (holder) => told.push(holder),
    });
    await new Promise((done) => setTimeout(done, 200));
    assertEquals(told.length, 1);
    assertEquals(told[0]?.pid, Deno.ppid);
    assertOk(describeHolder("x.lock", told[0]).includes(`held by pid ${Deno.ppid}`));
    await Deno.remove(lockPathOf(path));
    assertEquals(await waiting, 8);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("lock: produceOnce makes an artefact once across concurrent callers", async () => {
  const folder = await Deno.makeTempDir();
  const path = `${folder}/value.txt`;
  let makes = 0;
  const load = async () => (await readFileIfExists(path)) && Deno.readTextFileSync(path);
  const make = async (heartbeat: () => void) => {
    makes += 1;
    heartbeat();
    await new Promise((done) => setTimeout(done, 30));
    await writeFileAtomic(path, "made");
    return "made";
  };
  const options = { staleMs: 60_000, pollMs: 10 };
  const made = await Promise.all([1, 2, 3].map(() => produceOnce(path, load, make, options)));
  assertEquals(made, ["made", "made", "made"]);
  assertEquals(makes, 1);
  await Deno.remove(folder, { recursive: true });
});

Deno.test("walker: every file under a folder, sorted, filtered; a missing folder has none", async () => {
  const folder = await Deno.makeTempDir();
  for (const name of ["b/z.json", "b/a.txt", "a.json", "c/d/e.json"]) {
    await writeFileAtomic(`${folder}/${name}`, "{}");
  }
  const relative = (paths: string[]) => paths.map((path) => path.slice(folder.length + 1));
  assertEquals(relative(await listFilesRecursively(folder)), [
    "a.json",
    "b/a.txt",
    "b/z.json",
    "c/d/e.json",
  ]);
  assertEquals(
    relative(await listFilesRecursively(folder, (path) => path.endsWith(".json"))),
    ["a.json", "b/z.json", "c/d/e.json"],
  );
  assertEquals(await listFilesRecursively(`${folder}/nowhere`), []);
  await Deno.remove(folder, { recursive: true });
});

Deno.test("option errors: one line per issue, naming the plugin, key path and expectation", () => {
  const schema = z.strictObject({
    alpha: z.number(),
    nested: z.strictObject({ steps: z.number() }),
  });
  const parsed = schema.safeParse({ alpha: "x", nested: { steps: 1, extra: 2 }, beta: 3 });
  assertOk(!parsed.success);
  const lines = formatOptionErrors("demo", parsed.error).split("\n");
  assertEquals(lines.length, 3, lines.join("\n"));
  assertOk(lines.some((line) => /^demo options\.alpha: .*expected number/.test(line)));
  assertOk(lines.includes("demo options.nested: unknown key 'extra'"));
  assertOk(lines.includes("demo options: unknown key 'beta'"));
  assertThrows(() => real({ bogus: 1 }), UserError, "real options: unknown key 'bogus'");
});
