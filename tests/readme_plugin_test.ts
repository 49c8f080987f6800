/**
 * The README's plugin example, copied verbatim into a folder outside the
 * checkout, loads by the names `pgd-bench` and `zod` and runs a smoke grid
 * through the CLI the way the README says to run it from a user's folder.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { cellResultSchema } from "../core/results.ts";
import { join, relative } from "../core/paths.ts";
import { run } from "./fixtures/cli_run.ts";

const root = new URL("../", import.meta.url).pathname;

/** The one `ts` code block of the README that starts `// my_source.ts`. */
function readmeExample(readme: string): string {
  const blocks = [...readme.matchAll(/```ts\n(\/\/ my_source\.ts\n[\s\S]*?)```/g)];
  assertEquals(blocks.length, 1, "the README has one `// my_source.ts` block");
  return blocks[0][1];
}

Deno.test("readme: the plugin example runs from a folder outside the checkout", async () => {
  const example = readmeExample(await Deno.readTextFile(join(root, "README.md")));
  const folder = await Deno.makeTempDir({ prefix: "pgd-user-plugins-" });
  try {
    // The point of the test: the plugin is not under the checkout, so
    // `./mod.ts` or a relative path into it could not resolve.
    assertOk(relative(root, folder).startsWith(".."), `${folder} lies outside ${root}`);
    await Deno.writeTextFile(join(folder, "my_source.ts"), example);
    // From the user's folder: the CLI (and its workers) find the import map
    // beside their own files, not in the working directory.
    const { code, output } = await run(
      "",
      [
        "run",
        "--plugin",
        "./my_source.ts",
        "--sources=first-half",
        `--source-options={"first-half":{"keepFraction":0.25}}`,
        "--agents=td3bc",
        "--datasets=maze2d-umaze",
        "--preset=smoke",
        "--seeds=1",
        "--workers=1",
        "--out=out",
        "--cache-dir=cache",
      ],
      {},
      folder,
    );
    assertEquals(code, 0, output);
    assertOk(/1 cells finished, 0 already done, 0 failed/.test(output), output);
    const cell = cellResultSchema.parse(JSON.parse(
      await Deno.readTextFile(join(folder, "out/cells/maze2d-umaze/first-half/td3bc/seed-0.json")),
    ));
    assertEquals(cell.sourceOptions, { keepFraction: 0.25 });
    assertOk(Number.isFinite(cell.finalScore), `final score ${cell.finalScore}`);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});
