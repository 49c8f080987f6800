import { assertEquals, assertOk, assertRejects, assertThrows } from "./assert.ts";
import { td3bcSchedules } from "../plugins/agents/td3_bc.ts";
import { iqlSchedules } from "../plugins/agents/iql.ts";
import { loadGridConfig, parseGridConfig } from "../core/config.ts";
import { UserError } from "../core/errors.ts";

Deno.test("config: defaults give the default grid", () => {
  const config = parseGridConfig({});
  assertEquals(config.datasets, ["maze2d-umaze"]);
  assertEquals(config.sources, ["real", "unguided", "policy-guided"]);
  assertEquals(config.agents, ["td3bc", "iql"]);
  assertEquals(config.seeds, [0, 1, 2, 3]);
  assertEquals(config.preset, "quick");
  assertEquals(config.backend, "wasm");
});

Deno.test("config: a seed count expands to 0…N−1", () => {
  assertEquals(parseGridConfig({ seeds: 3 }).seeds, [0, 1, 2]);
  assertEquals(parseGridConfig({ seeds: [4, 7] }).seeds, [4, 7]);
});

Deno.test("config: an unknown key is an error naming the key", () => {
  const error = assertThrows(() => parseGridConfig({ dataset: ["x"] }, "grid.json"), UserError);
  assertEquals(error.message.includes("grid.json: unknown key 'dataset'"), true, error.message);
});

Deno.test("config: a wrong type names the key and what was expected", () => {
  const error = assertThrows(() => parseGridConfig({ workers: "two" }, "flags"), UserError);
  assertEquals(error.message.includes("flags.workers"), true, error.message);
  assertEquals(/expected number/i.test(error.message), true, error.message);
  const preset = assertThrows(() => parseGridConfig({ preset: "huge" }), UserError);
  assertEquals(preset.message.includes("config.preset"), true, preset.message);
});

Deno.test("config: flags override the file; a bad file is named", async () => {
  const folder = await Deno.makeTempDir();
  const file = `${folder}/grid.json`;
  await Deno.writeTextFile(file, JSON.stringify({ seeds: 3, agents: ["iql"] }));
  const config = await loadGridConfig(file, { agents: ["td3bc"], preset: undefined });
  assertEquals(config.seeds, [0, 1, 2]);
  assertEquals(config.agents, ["td3bc"]);
  await Deno.writeTextFile(file, "{not json");
  const error = await assertRejects(() => loadGridConfig(file, {}), UserError);
  assertEquals(error.message.includes(file), true);
  await assertRejects(
    () => loadGridConfig(`${folder}/missing.json`, {}),
    UserError,
    "missing.json",
  );
  await Deno.remove(folder, { recursive: true });
});

Deno.test("config: the shipped grid files are valid, name known plugins and give them valid options", async () => {
  const { PluginRegistry } = await import("../core/registry.ts");
  const { builtinPlugins } = await import("../plugins/mod.ts");
  const registry = new PluginRegistry(builtinPlugins);
  for (const entry of Deno.readDirSync(new URL("../grids/", import.meta.url))) {
    const config = await loadGridConfig(`grids/${entry.name}`, {});
    for (const dataset of config.datasets) registry.environmentFor(dataset);
    for (const source of config.sources) registry.source(source, config.sourceOptions[source]);
    for (const agent of config.agents) registry.agent(agent, config.agentOptions[agent]);
  }
  // The paper's grid spells out the paper's choices, whatever the defaults become.
  const paper = await loadGridConfig("grids/paper-table2.json", {});
  assertEquals(registry.agent("td3bc", paper.agentOptions.td3bc).options.criticUpdatesPerStep, 2);
  assertEquals(
    registry.source("policy-guided", paper.sourceOptions["policy-guided"]).options.guidanceStrength,
    1,
  );
  for (const source of ["unguided", "policy-guided"]) {
    const options = registry.source(source, paper.sourceOptions[source]).options;
    assertEquals(options.logSigmaStd, 1.2);
    assertEquals(options.nextStates, "denoiser");
  }
});

Deno.test("config: a name twice, options for a plugin not in the grid and absurd sizes are errors", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ sources: ["real", "real"] }, /config\.sources: listed more than once: real/],
    [{ seeds: [0, 0] }, /config\.seeds: listed more than once: 0/],
    [{ agents: ["iql", "td3bc", "iql"] }, /config\.agents: listed more than once: iql/],
    [
      { sourceOptions: { "policy-guidd": { guidanceStrength: 2 } } },
      /config\.sourceOptions\.policy-guidd: 'policy-guidd' is not in the grid/,
    ],
    [{ agentOptions: { td3: {} } }, /config\.agentOptions\.td3: 'td3' is not in the grid/],
    [{ seeds: 20_000_000 }, /config\.seeds: Too big/],
    [{ seeds: 5_000_000_000 }, /config\.seeds: Too big/],
    [{ seeds: [2 ** 31] }, /config\.seeds\.0: Too big/],
  ];
  for (const [input, message] of cases) {
    const error = assertThrows(() => parseGridConfig(input), UserError);
    if (!message.test(error.message)) throw new Error(`${error.message} does not match ${message}`);
  }
  // 72000 cells is allowed; 4 agents make it 144000, which is not.
  const large = {
    seeds: 9000,
    datasets: ["maze2d-umaze", "maze2d-medium"],
    sources: ["real", "pets"],
  };
  parseGridConfig(large);
  assertThrows(
    () => parseGridConfig({ ...large, agents: ["td3bc", "iql", "a", "b"] }),
    UserError,
    "the grid has 144000 cells; at most 100000",
  );
});

Deno.test("presets: at quick each built-in agent is evaluated at least ten times a run", () => {
  // A learning curve of fewer points reads as a straight line.
  for (const [agent, schedules] of [["td3bc", td3bcSchedules], ["iql", iqlSchedules]] as const) {
    const { trainingSteps, evaluateEvery } = schedules.quick;
    const evaluations = Math.floor(trainingSteps / evaluateEvery) +
      (trainingSteps % evaluateEvery === 0 ? 0 : 1);
    assertOk(evaluations >= 10, `${agent}: ${evaluations} evaluations at quick`);
  }
});
