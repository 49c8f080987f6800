/**
 * Collected datasets in the cache folder: a folder that has been moved or
 * copied (to a cluster's shared disk, say) still serves its data, with no
 * second collection, whatever path its records were written with.
 */
import { basename, join } from "node:path";
import { assertEquals } from "./assert.ts";
import { listCachedDatasets, loadDataset, resolveDataset } from "../core/datasets.ts";
import type { EnvironmentPlugin } from "../core/contracts/environment.ts";
import { maze2d } from "../plugins/envs/maze2d.ts";

Deno.test("a collected dataset is read from its cache folder after the folder has moved", async () => {
  const plugin = maze2d();
  let collections = 0;
  const counting: EnvironmentPlugin = {
    ...plugin,
    collect: (request) => {
      collections++;
      return plugin.collect!(request);
    },
  };
  const parent = await Deno.makeTempDir({ prefix: "pgd-moved-cache-" });
  const options = (cacheDir: string) => ({ dataDirs: [], cacheDir, preset: "smoke" as const });
  try {
    const first = await resolveDataset(counting, "maze2d-umaze", options(join(parent, "a")));
    await Deno.rename(join(parent, "a"), join(parent, "b"));
    const moved = await resolveDataset(counting, "maze2d-umaze", options(join(parent, "b")));
    assertEquals(collections, 1);
    const expected = join(parent, "b", "datasets", basename(first.path));
    assertEquals(moved.path, expected);
    assertEquals((await loadDataset(moved)).rewards.length, first.size);
    const listed = await listCachedDatasets(join(parent, "b"));
    assertEquals(listed.map((record) => record.path), [expected]);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});
