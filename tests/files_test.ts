import { assertEquals, assertOk } from "./assert.ts";
import { writeJsonAtomic } from "../core/files.ts";
import { digest, stableStringify } from "../core/fingerprint.ts";
import { withLock, withLocks } from "../core/lock.ts";
import { ResultStore } from "../core/store.ts";

Deno.test("files: atomic writes leave no temporary files behind", async () => {
  const folder = await Deno.makeTempDir();
  await Promise.all([...Array(8).keys()].map((i) => writeJsonAtomic(`${folder}/a/b.json`, { i })));
  const names = [...Deno.readDirSync(`${folder}/a`)].map((entry) => entry.name);
  assertEquals(names, ["b.json"]);
  assertOk(typeof JSON.parse(Deno.readTextFileSync(`${folder}/a/b.json`)).i === "number");
  await Deno.remove(folder, { recursive: true });
});

Deno.test("files: a lock runs holders one at a time", async () => {
  const folder = await Deno.makeTempDir();
  const events: string[] = [];
  const hold = (name: string) =>
    withLock(`${folder}/artefact`, async () => {
      events.push(`${name}+`);
      await new Promise((done) => setTimeout(done, 50));
      events.push(`${name}-`);
    });
  await Promise.all([hold("a"), hold("b")]);
  assertEquals(events.length, 4);
  assertEquals(events[0][0], events[1][0], events.join(" "));
  assertEquals(events[2][0], events[3][0], events.join(" "));
  await Deno.remove(folder, { recursive: true });
});

Deno.test("files: holders of overlapping lock sets, asked for in opposite orders, take turns", async () => {
  const folder = await Deno.makeTempDir();
  const events: string[] = [];
  const hold = (name: string, paths: string[]) =>
    withLocks(paths.map((path) => `${folder}/${path}`), async () => {
      events.push(`${name}+`);
      await new Promise((done) => setTimeout(done, 50));
      events.push(`${name}-`);
    }, () => ({ pollMs: 10 }));
  // Taken in the orders given, each would hold one lock the other waits for.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadlock = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("the holders wait on each other")), 5_000);
  });
  await Promise.race([Promise.all([hold("a", ["x", "y"]), hold("b", ["y", "x"])]), deadlock])
    .finally(() => clearTimeout(timer));
  assertEquals(events.length, 4);
  assertEquals(events[0][0], events[1][0], events.join(" "));
  assertEquals([...Deno.readDirSync(folder)], []);
  await Deno.remove(folder, { recursive: true });
});

Deno.test("files: a lock whose holder died is taken over once stale", async () => {
  const folder = await Deno.makeTempDir();
  await Deno.mkdir(`${folder}/artefact.lock`);
  const old = new Date(Date.now() - 10_000);
  await Deno.utime(`${folder}/artefact.lock`, old, old);
  const value = await withLock(`${folder}/artefact`, () => Promise.resolve(42), { staleMs: 5_000 });
  assertEquals(value, 42);
  await Deno.remove(folder, { recursive: true });
});

Deno.test("files: stable JSON and digests ignore key order", async () => {
  assertEquals(stableStringify({ b: 1, a: [1, { d: 2, c: 3 }] }), '{"a":[1,{"c":3,"d":2}],"b":1}');
  assertEquals(
    await digest(stableStringify({ x: 1, y: 2 })),
    await digest(stableStringify({ y: 2, x: 1 })),
  );
});

Deno.test("store: unreadable or foreign files are not taken for results", async () => {
  const folder = await Deno.makeTempDir();
  const store = new ResultStore(folder);
  const cell = { dataset: "maze2d-umaze", source: "real", agent: "iql", seed: 0 };
  assertEquals(await store.read(cell), undefined);
  await Deno.mkdir(`${folder}/cells/maze2d-umaze/real/iql`, { recursive: true });
  await Deno.writeTextFile(store.pathOf(cell), "{ half a file");
  assertEquals(await store.read(cell), undefined);
  assertEquals(await store.isFinished(cell, "hash"), false);
  assertEquals(await store.readAll(), []);
  await Deno.remove(folder, { recursive: true });
});
