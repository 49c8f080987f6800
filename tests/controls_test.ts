/**
 * Controls: exact dynamics restore a transition's `s′` and `r` from the
 * simulator (exact reward and exact next state each its half alone),
 * shuffled actions permute actions and keep the dynamics exact, state noise
 * has the asked size per entry; control names and settings are checked with
 * one-line errors; `pgd controls` runs the whole set and reports it.
 */
import assert from "node:assert/strict";
import { applyControl, makeSource, parseSourceName } from "../core/controls.ts";
import { UserError } from "../core/errors.ts";
import { PluginRegistry } from "../core/registry.ts";
import { Rng } from "../core/rng.ts";
import { copyTransitions } from "../core/transitions.ts";
import { toTransitions } from "../core/d4rl.ts";
import { cellResultSchema } from "../core/results.ts";
import { makeMaze2d, maze2d } from "../plugins/envs/maze2d.ts";
import { builtinPlugins } from "../plugins/mod.ts";

const dataset = await maze2d().collect!({ dataset: "maze2d-umaze", seed: 5, preset: "smoke" });
const real = toTransitions(dataset);

/** The real transitions with every `s′` entry set to 3 and every reward to 0.5. */
function spoiledCopy() {
  const spoiled = copyTransitions(real);
  spoiled.nextObservations.fill(3);
  spoiled.rewards.fill(0.5);
  return spoiled;
}

Deno.test("controls: exact dynamics put back the simulator's s′ and r", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const spoiled = spoiledCopy();
    const fixed = applyControl({ kind: "exact-dynamics" }, spoiled, environment, new Rng(1));
    let worst = 0;
    for (let i = 0; i < real.nextObservations.length; i++) {
      worst = Math.max(worst, Math.abs(fixed.nextObservations[i] - real.nextObservations[i]));
    }
    assert.ok(worst < 1e-5, `largest difference ${worst}`);
    // Rewards agree but where float32 rounding puts a state on the goal's edge.
    const differing = fixed.rewards.filter((reward, i) => reward !== real.rewards[i]).length;
    assert.ok(differing <= real.size / 100, `${differing} rewards differ`);
    assert.ok(fixed.rewards.every((reward) => reward === 0 || reward === 1));
    assert.equal(spoiled.rewards[0], 0.5, "the input is left as it was");
  } finally {
    environment.close();
  }
});

Deno.test("controls: exact reward and exact next state each restore their half alone", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const spoiled = spoiledCopy();
    const both = applyControl({ kind: "exact-dynamics" }, spoiled, environment, new Rng(1));
    const reward = applyControl({ kind: "exact-reward" }, spoiled, environment, new Rng(1));
    const next = applyControl({ kind: "exact-next-state" }, spoiled, environment, new Rng(1));
    assert.deepEqual([...reward.rewards], [...both.rewards]);
    assert.deepEqual([...reward.nextObservations], [...spoiled.nextObservations]);
    assert.deepEqual([...next.nextObservations], [...both.nextObservations]);
    assert.deepEqual([...next.dones], [...both.dones]);
    assert.deepEqual([...next.rewards], [...spoiled.rewards]);
    assert.ok(reward.rewards.some((value) => value !== 0.5), "rewards were replaced");
  } finally {
    environment.close();
  }
});

Deno.test("controls: shuffled actions are a permutation, with dynamics exact for the new actions", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const shuffled = applyControl({ kind: "shuffled-actions" }, real, environment, new Rng(2));
    const pairs = (actions: Float32Array) =>
      Array.from(
        { length: actions.length / 2 },
        (_, i) => `${actions[2 * i]},${actions[2 * i + 1]}`,
      )
        .sort();
    assert.deepEqual(pairs(shuffled.actions), pairs(real.actions));
    let moved = 0;
    for (let i = 0; i < real.actions.length; i++) {
      moved += shuffled.actions[i] !== real.actions[i] ? 1 : 0;
    }
    assert.ok(moved > real.actions.length / 2, "most actions moved");
    const check = applyControl({ kind: "exact-dynamics" }, shuffled, environment, new Rng(3));
    assert.deepEqual([...check.nextObservations], [...shuffled.nextObservations]);
  } finally {
    environment.close();
  }
});

Deno.test("controls: action noise moves actions by σ within [−1, 1], with dynamics exact for them", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const noisy = applyControl({ kind: "action-noise", sigma: 0.2 }, real, environment, new Rng(6));
    let squares = 0;
    let inside = 0;
    for (let i = 0; i < real.actions.length; i++) {
      assert.ok(Math.abs(noisy.actions[i]) <= 1);
      if (Math.abs(real.actions[i]) < 0.5) {
        squares += (noisy.actions[i] - real.actions[i]) ** 2;
        inside += 1;
      }
    }
    const spread = Math.sqrt(squares / inside);
    assert.ok(Math.abs(spread - 0.2) < 0.03, `spread ${spread} of actions away from the bounds`);
    const check = applyControl({ kind: "exact-dynamics" }, noisy, environment, new Rng(7));
    assert.deepEqual([...check.nextObservations], [...noisy.nextObservations]);
  } finally {
    environment.close();
  }
});

Deno.test("controls: state noise has k times the given error per entry; k = 0 changes nothing", async () => {
  const environment = await makeMaze2d("maze2d-umaze");
  try {
    const noise = { kind: "state-noise", positionError: 0.02, velocityError: 0.3 } as const;
    const same = applyControl({ ...noise, scale: 0 }, real, environment, new Rng(4));
    assert.deepEqual([...same.observations], [...real.observations]);
    const noisy = applyControl({ ...noise, scale: 0.5 }, real, environment, new Rng(4));
    const spread = (entry: number) => {
      let sum = 0;
      for (let row = 0; row < real.size; row++) {
        sum += (noisy.observations[row * 4 + entry] - real.observations[row * 4 + entry]) ** 2;
      }
      return Math.sqrt(sum / real.size);
    };
    for (const entry of [0, 1]) {
      assert.ok(Math.abs(spread(entry) - 0.01) < 0.001, `${spread(entry)}`);
    }
    for (const entry of [2, 3]) {
      assert.ok(Math.abs(spread(entry) - 0.15) < 0.015, `${spread(entry)}`);
    }
  } finally {
    environment.close();
  }
});

Deno.test("controls: names and settings are checked with one line naming the source", () => {
  const registry = new PluginRegistry(builtinPlugins);
  assert.deepEqual(parseSourceName("unguided+exact-dynamics"), {
    base: "unguided",
    control: "exact-dynamics",
  });
  assert.deepEqual(parseSourceName("real"), { base: "real" });
  assert.equal(makeSource(registry, "real", undefined).control, undefined);
  assert.deepEqual(makeSource(registry, "real+shuffled-actions", undefined).control, {
    kind: "shuffled-actions",
  });
  const noisy = makeSource(registry, "real+state-noise-0.25", {
    control: { positionError: 0.01, velocityError: 0.1 },
  });
  assert.deepEqual(noisy.control, {
    kind: "state-noise",
    scale: 0.25,
    positionError: 0.01,
    velocityError: 0.1,
  });
  assert.equal(noisy.source.name, "real");
  // The source's own options still reach it, without the control's.
  const guided = makeSource(registry, "policy-guided+exact-dynamics", { guidanceStrength: 2 });
  assert.equal(guided.source.options.guidanceStrength, 2);
  assert.deepEqual(makeSource(registry, "unguided+exact-reward", undefined).control, {
    kind: "exact-reward",
  });
  assert.deepEqual(makeSource(registry, "unguided+exact-next-state", undefined).control, {
    kind: "exact-next-state",
  });
  assert.deepEqual(makeSource(registry, "real+action-noise-0.2", undefined).control, {
    kind: "action-noise",
    sigma: 0.2,
  });
  assert.throws(() => makeSource(registry, "real+mirrored", undefined), UserError);
  assert.throws(
    () => makeSource(registry, "real+mirrored", undefined),
    /source 'real\+mirrored': unknown control 'mirrored'/,
  );
  assert.throws(
    () => makeSource(registry, "real+state-noise-1", undefined),
    /source 'real\+state-noise-1' control options: /,
  );
  assert.throws(
    () => makeSource(registry, "real+exact-dynamics", { control: { positionError: 1 } }),
    /takes no settings/,
  );
  assert.throws(
    () => makeSource(registry, "nothing+exact-dynamics", undefined),
    /unknown data source/,
  );
});

Deno.test("cli: `controls` runs the subject beside its controls and reports them", async () => {
  const cacheDir = await Deno.makeTempDir({ prefix: "pgd-controls-cache-" });
  const out = await Deno.makeTempDir({ prefix: "pgd-controls-" });
  await Deno.mkdir(`${cacheDir}/none`);
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        new URL("../cli/main.ts", import.meta.url).pathname,
        "controls",
        "--preset=smoke",
        "--datasets=maze2d-umaze",
        "--agents=td3bc",
        "--seeds=1",
        "--workers=1",
        "--noise-scales=0,1",
        `--out=${out}`,
        `--cache-dir=${cacheDir}`,
        `--data-dir=${cacheDir}/none`,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", CI: "1" },
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 0, output);
    const sources = [
      "real",
      "unguided",
      "unguided+exact-dynamics",
      "real+shuffled-actions",
      "real+state-noise-0",
      "real+state-noise-1",
    ];
    const unguided = cellResultSchema.parse(
      JSON.parse(await Deno.readTextFile(`${out}/cells/maze2d-umaze/unguided/td3bc/seed-0.json`)),
    );
    const generations = unguided.quality!.generations;
    const meanPosition = generations.reduce((sum, g) => sum + g.simulator!.position, 0) /
      generations.length;
    for (const source of sources) {
      const result = cellResultSchema.parse(
        JSON.parse(
          await Deno.readTextFile(`${out}/cells/maze2d-umaze/${source}/td3bc/seed-0.json`),
        ),
      );
      assert.ok(Number.isFinite(result.finalScore), source);
      if (source === "real+state-noise-1") {
        const control = result.sourceOptions.control as { positionError: number };
        assert.ok(Math.abs(control.positionError - meanPosition) < 1e-12);
      }
    }
    const summary = await Deno.readTextFile(`${out}/summary.md`);
    for (const source of sources) assert.ok(summary.includes(`| ${source} |`), source);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});
