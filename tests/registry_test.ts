import { assertEquals, assertOk, assertRejects, assertThrows } from "./assert.ts";
import { PluginRegistry } from "../core/registry.ts";
import { UserError } from "../core/errors.ts";
import { builtinPlugins } from "../plugins/mod.ts";

Deno.test("registry: built-ins are listed and made by name", () => {
  const registry = new PluginRegistry(builtinPlugins);
  const names = registry.list().map((entry) => `${entry.kind}:${entry.name}`);
  assertOk(names.includes("source:real"), names.join(","));
  assertEquals(registry.source("real").name, "real");
});

Deno.test("registry: an unknown plugin names itself and the known ones", () => {
  const registry = new PluginRegistry(builtinPlugins);
  const error = assertThrows(() => registry.source("diffusion-xl"), UserError);
  assertOk(error.message.includes("unknown data source 'diffusion-xl'"), error.message);
  assertOk(error.message.includes("real"), error.message);
  assertThrows(() => registry.agent("sac-n"), UserError, "unknown agent 'sac-n'");
  assertThrows(
    () => registry.environmentFor("pong-medium"),
    UserError,
    "unknown dataset 'pong-medium'",
  );
});

Deno.test("registry: a plugin's bad options are an error naming the plugin", () => {
  const registry = new PluginRegistry(builtinPlugins);
  const error = assertThrows(() => registry.source("real", { mix: 0.5 }), UserError);
  assertOk(error.message.startsWith("real options"), error.message);
  assertOk(error.message.includes("mix"), error.message);
});

Deno.test("registry: the example plugin loads by path", async () => {
  const registry = new PluginRegistry(builtinPlugins);
  const [entry] = await registry.load("./examples/noisy_source.ts");
  assertEquals(entry.kind, "source");
  assertEquals(entry.name, "noisy-real");
  assertEquals(registry.source("noisy-real", { noiseScale: 0.1 }).options, { noiseScale: 0.1 });
});

Deno.test("registry: a module missing a hook is refused with what is missing", async () => {
  const registry = new PluginRegistry(builtinPlugins);
  const error = await assertRejects(
    () => registry.load("./tests/fixtures/plugins/missing_generate.ts"),
    UserError,
  );
  assertOk(error.message.includes("data source contract"), error.message);
  assertOk(error.message.includes("generate"), error.message);
  await assertRejects(
    () => registry.load("./tests/fixtures/plugins/not_an_object.ts"),
    UserError,
    "expected a plugin object",
  );
  await assertRejects(() => registry.load("./no/such/plugin.ts"), UserError, "cannot load plugin");
});
