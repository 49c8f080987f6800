/**
 * The training loop at the heart of PGD (`runCell`, core/cell.ts), around a
 * fake data source, a fake agent and a fake environment that record what the
 * loop does to them:
 *
 * - `generate` is called at step 0 with no policy, then every
 *   `regenerateEvery` agent steps with the agent's policy as it is at that
 *   step (the paper's periodic generation, Table 2), and the agent trains on
 *   the newest generation;
 * - evaluations run every `evaluateEvery` steps and after the last one, with
 *   deterministic actions;
 * - the logged losses are averages over the steps since the previous record.
 *
 * The fake agent's policy and actions are its update count, so every record
 * says how many updates had been made when the loop looked.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { runCell } from "../core/cell.ts";
import { parseGridConfig } from "../core/config.ts";
import { PluginRegistry } from "../core/registry.ts";
import type { Agent, AgentPlugin, AgentSchedule } from "../core/contracts/agent.ts";
import { silentReporter } from "../core/contracts/common.ts";
import type { Environment, EnvironmentPlugin } from "../core/contracts/environment.ts";
import type { DataSource, GenerateRequest, SourceContext } from "../core/contracts/source.ts";
import type { D4rlDataset, PolicyView, TransitionBatch, Transitions } from "../core/types.ts";
import { writeD4rl } from "../core/d4rl.ts";

const datasetId = "loop-line";
/** Steps of an evaluation episode: an episode's return is this times the action. */
const episodeSteps = 3;

/**
 * A one-dimensional environment whose reward is the action itself, unclipped:
 * an episode under a constant action `a` returns `episodeSteps·a`.
 */
function lineEnvironment(): EnvironmentPlugin {
  const spec = {
    id: datasetId,
    observationDim: 1,
    actionDim: 1,
    maxEpisodeSteps: episodeSteps,
    scoreReference: { min: 0, max: 1 },
  };
  return {
    name: "line",
    datasets: [datasetId],
    spec: () => spec,
    make(): Promise<Environment> {
      return Promise.resolve({
        spec,
        reset: () => Float32Array.of(0),
        step: (action: Float32Array) => ({
          observation: Float32Array.of(0),
          reward: action[0],
          terminated: false,
        }),
        close() {},
      });
    },
  };
}

/** What the fake source saw of one `generate` call. */
interface GenerateCall {
  /** The request's generation number. */
  generation: number;
  /** The policy view handed over (absent at generation 0). */
  policy: PolicyView | undefined;
  /** Whether the request has a `policy` key at all. */
  hasPolicyKey: boolean;
  /** The view's mean action when `generate` ran: the agent's update count at that moment. */
  policyMean: number | undefined;
}

/** Everything the fakes record during one cell. */
interface LoopRecord {
  /** Calls of `regenerateEvery`, with the context's `agentSteps`. */
  agentStepsSeen: number[];
  /** Calls of `prepare`, in order with generates (`"prepare"` or `"generate"`). */
  hooks: string[];
  /** One entry per `generate` call. */
  generates: GenerateCall[];
  /** The generation whose data each update trained on (the batch's reward), by update. */
  trainedOn: number[];
  /** Every agent the plugin created. */
  agents: Agent[];
  /** `dispose` calls of the source and the agents. */
  disposed: string[];
}

function newRecord(): LoopRecord {
  return { agentStepsSeen: [], hooks: [], generates: [], trainedOn: [], agents: [], disposed: [] };
}

/** Five transitions whose rewards all equal the generation that made them. */
function generationData(generation: number): Transitions {
  const size = 5;
  return {
    size,
    observationDim: 1,
    actionDim: 1,
    observations: new Float32Array(size),
    actions: new Float32Array(size),
    rewards: new Float32Array(size).fill(generation),
    nextObservations: new Float32Array(size),
    dones: new Float32Array(size),
  };
}

/** A source that asks to regenerate every `every` steps (none when undefined). */
function recordingSource(record: LoopRecord, every: number | undefined): () => DataSource {
  return () => ({
    name: "recording",
    options: {},
    ...(every === undefined ? {} : {
      regenerateEvery(context: SourceContext) {
        record.agentStepsSeen.push(context.agentSteps);
        return every;
      },
    }),
    prepare() {
      record.hooks.push("prepare");
      return Promise.resolve();
    },
    generate(_context: SourceContext, request: GenerateRequest) {
      record.hooks.push("generate");
      record.generates.push({
        generation: request.generation,
        policy: request.policy,
        hasPolicyKey: "policy" in request,
        policyMean: request.policy?.actionDistribution(Float32Array.of(0), 1).mean[0],
      });
      return Promise.resolve(generationData(request.generation));
    },
    dispose() {
      record.disposed.push("source");
    },
  });
}

/**
 * An agent whose policy mean and deterministic action are its update count,
 * and whose losses are `update` (the count after the update) and `square`
 * (its square). Non-deterministic actions are −1000, so an evaluation that
 * used them would show.
 */
function countingAgent(record: LoopRecord, schedule: AgentSchedule): () => AgentPlugin {
  return () => ({
    name: "counting",
    options: {},
    create() {
      let updates = 0;
      const agent: Agent = {
        schedule,
        update(batch: TransitionBatch) {
          record.trainedOn.push(batch.rewards[0]);
          updates += 1;
          return { update: updates, square: updates * updates };
        },
        act(_observations, count, deterministic) {
          return new Float32Array(count).fill(deterministic ? updates : -1000);
        },
        actionDistribution(_observations, count) {
          return {
            mean: new Float32Array(count).fill(updates),
            std: new Float32Array(count).fill(1),
          };
        },
        dispose() {
          record.disposed.push("agent");
        },
      };
      record.agents.push(agent);
      return agent;
    },
  });
}

/** A tiny D4RL-layout file to satisfy `runCell`'s dataset read (its rows are never trained on). */
async function writeLineDataset(folder: string): Promise<string> {
  const size = 8;
  const timeouts = new Uint8Array(size);
  timeouts[size - 1] = 1;
  const dataset: D4rlDataset = {
    size,
    observationDim: 1,
    actionDim: 1,
    observations: Float32Array.from({ length: size }, (_, i) => i),
    actions: new Float32Array(size),
    rewards: new Float32Array(size),
    terminals: new Uint8Array(size),
    timeouts,
    infos: {},
    metadata: {},
  };
  const path = `${folder}/loop-line.hdf5`;
  await writeD4rl(path, dataset);
  return path;
}

/** Runs one cell of the fakes and returns the result with what the fakes recorded. */
async function runLoop(schedule: AgentSchedule, regenerateEvery: number | undefined) {
  const folder = await Deno.makeTempDir({ prefix: "pgd-cell-loop-" });
  try {
    const record = newRecord();
    const registry = new PluginRegistry({
      sources: [recordingSource(record, regenerateEvery)],
      agents: [countingAgent(record, schedule)],
      environments: [lineEnvironment],
    });
    const result = await runCell(
      { dataset: datasetId, source: "recording", agent: "counting", seed: 0 },
      {
        config: parseGridConfig({ preset: "smoke", cacheDir: `${folder}/cache` }),
        registry,
        datasetPath: await writeLineDataset(folder),
        datasetIdentity: { origin: "collected", key: "line-dataset" },
        reporter: silentReporter,
      },
    );
    return { result, record };
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
}

const schedule: AgentSchedule = {
  trainingSteps: 200,
  batchSize: 4,
  evaluateEvery: 80,
  evaluationEpisodes: 2,
};

Deno.test("cell loop: generation 0 has no policy; later ones get the agent's policy as it is then", async () => {
  const { result, record } = await runLoop(schedule, 60);
  const [agent] = record.agents;
  assertEquals(record.agents.length, 1);
  assertEquals(record.agentStepsSeen, [schedule.trainingSteps]);
  assertEquals(record.hooks[0], "prepare");
  assertEquals(record.hooks.filter((hook) => hook === "prepare").length, 1);

  // Regeneration every 60 of 200 steps: steps 0, 60, 120 and 180.
  assertEquals(result.generations.map((g) => g.step), [0, 60, 120, 180]);
  assertEquals(result.generations.map((g) => g.transitions), [5, 5, 5, 5]);
  assertEquals(record.generates.map((call) => call.generation), [0, 1, 2, 3]);

  // Generation 0: no policy at all (not even a key holding undefined).
  assertEquals(record.generates[0].policy, undefined);
  assertEquals(record.generates[0].hasPolicyKey, false);
  // Later generations: the agent itself, read before the update of that step.
  for (const [index, call] of record.generates.entries()) {
    if (index === 0) continue;
    assertOk(call.policy === agent, `generation ${index} did not get the agent's policy view`);
    assertEquals(
      call.policyMean,
      result.generations[index].step,
      `generation ${index} saw the policy after ${call.policyMean} updates`,
    );
  }

  // Each update trains on the newest generation.
  assertEquals(record.trainedOn.length, schedule.trainingSteps);
  for (const [update, generation] of record.trainedOn.entries()) {
    assertEquals(generation, Math.floor(update / 60), `update ${update + 1}`);
  }
  assertEquals(record.disposed.sort(), ["agent", "source"]);
});

Deno.test("cell loop: a source without regenerateEvery is asked once, with no policy", async () => {
  const { result, record } = await runLoop(schedule, undefined);
  assertEquals(result.generations.map((g) => g.step), [0]);
  assertEquals(record.generates.length, 1);
  assertEquals(record.generates[0].policy, undefined);
  assertOk(record.trainedOn.every((generation) => generation === 0));
});

Deno.test("cell loop: a regeneration period of 0 means one generation for the run", async () => {
  const { result } = await runLoop(schedule, 0);
  assertEquals(result.generations.map((g) => g.step), [0]);
});

Deno.test("cell loop: evaluations every evaluateEvery steps and after the last, deterministic", async () => {
  const { result } = await runLoop(schedule, 60);
  // 80 and 160, then the last step (200) although 200 is not a multiple of 80.
  assertEquals(result.evaluations.map((e) => e.step), [80, 160, 200]);
  // Deterministic actions equal the update count, so each episode returns 3 × updates.
  assertEquals(result.evaluations.map((e) => e.meanReturn), [240, 480, 600]);
  for (const evaluation of result.evaluations) {
    assertEquals(evaluation.episodeScores.length, schedule.evaluationEpisodes);
  }
  assertEquals(result.finalReturn, 600);
  assertEquals(result.finalScore, 100 * 600);
});

Deno.test("cell loop: losses are averaged over the steps since the previous record", async () => {
  const { result } = await runLoop(schedule, 60);
  // 50 records over 200 steps: one every 4 steps, each the mean of its 4 updates.
  const every = schedule.trainingSteps / 50;
  assertEquals(result.losses.length, 50);
  for (const [index, record] of result.losses.entries()) {
    const step = (index + 1) * every;
    const updates = Array.from({ length: every }, (_, i) => step - every + 1 + i);
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    assertEquals(record.step, step);
    assertEquals(record.metrics, {
      update: mean(updates),
      square: mean(updates.map((u) => u * u)),
    });
  }
});
