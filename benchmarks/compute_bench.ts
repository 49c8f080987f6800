/**
 * Compute paths side by side: native BLAS (`blas`), pure wasm (`wasm`) and
 * TF.js as shipped (`shipped`), switched inside one process, against the
 * PyTorch anchors in /work/shared/anchors run in the same sitting.
 *
 * Benches: single products at training sizes; one TD3+BC-like update (actor
 * 17→256→256→6, twin critics 23→256→256→1, batch 256, Adam; critics every
 * step, actor and targets every second step); one EDM training step of a
 * 1-D U-Net like the anchor's (widths F, 2F, 4F, GroupNorm(8), concatenated
 * skips) at F = 64 and 128. At the end a table gives each median and its
 * ratio to PyTorch.
 *
 * Environment: `PGD_BENCH_ANCHORS=off` skips the PyTorch runs;
 * `PGD_BENCH_SHIPPED=off` skips the (slow) shipped-kernel runs of the
 * training steps; `PGD_ANCHOR_PYTHON` names the Python (default /usr/bin/python3),
 * `PGD_ANCHOR_DIR` the anchors' folder (default ../shared/anchors beside the checkout).
 *
 * @module
 */
import {
  FusedAdam,
  groupNorm,
  initCompute,
  type KernelSet,
  lerpInPlace,
  nativeKernelsAvailable,
  setKernelSet,
  tf,
} from "../core/compute.ts";
import { Rng } from "../core/rng.ts";

const info = await initCompute("wasm");
const paths: KernelSet[] = nativeKernelsAvailable()
  ? ["blas", "wasm", "shipped"]
  : ["wasm", "shipped"];
const env = (name: string) => Deno.env.get(name)?.toLowerCase();
const runShippedSteps = env("PGD_BENCH_SHIPPED") !== "off";
const anchorDir = Deno.env.get("PGD_ANCHOR_DIR") ??
  new URL("../../shared/anchors/", import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Timings kept here, so that the closing table can show medians and ratios.

const samples = new Map<string, number[]>();

/**
 * Wraps `body` to record its time per call divided by `unitsPerCall` (a TD3+BC
 * call runs two updates, since the actor and targets move every second one).
 */
function timed(name: string, body: () => void, unitsPerCall = 1): () => void {
  const list: number[] = [];
  samples.set(name, list);
  return () => {
    const start = performance.now();
    body();
    list.push((performance.now() - start) / unitsPerCall);
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// ---------------------------------------------------------------------------
// PyTorch anchors, run before the benches and again after them: on a shared
// machine the load drifts, so each ratio uses the faster of the two runs.

interface Anchor {
  script: string;
  args: string[];
  /** Median milliseconds of each run. */
  runs: number[];
}

const anchors: Record<string, Anchor> = {
  td3bc: { script: "torch_td3bc_step.py", args: ["1"], runs: [] },
  unet64: { script: "torch_unet_step.py", args: ["64", "32", "16", "25"], runs: [] },
  unet128: { script: "torch_unet_step.py", args: ["128", "32", "16", "25"], runs: [] },
};
const runAnchors = env("PGD_BENCH_ANCHORS") !== "off";

function runAnchor(anchor: Anchor): void {
  const python = Deno.env.get("PGD_ANCHOR_PYTHON") ?? "/usr/bin/python3";
  try {
    const { success, stdout, stderr } = new Deno.Command(python, {
      args: [anchorDir.replace(/\/?$/, "/") + anchor.script, ...anchor.args],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const match = /median=([\d.]+)/.exec(new TextDecoder().decode(stdout));
    if (success && match) anchor.runs.push(Number(match[1]));
    else {
      const message = new TextDecoder().decode(stderr).trim().slice(-300);
      console.error(`anchor ${anchor.script}: ${message}`);
    }
  } catch (error) {
    console.error(`anchor ${anchor.script} did not run: ${(error as Error).message}`);
  }
}

if (runAnchors) { for (const anchor of Object.values(anchors)) runAnchor(anchor); }

// ---------------------------------------------------------------------------
// Helpers shared by the models.

function randomTensor(rng: Rng, shape: number[], scale = 1): tf.Tensor {
  const size = shape.reduce((p, d) => p * d, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = rng.normal() * scale;
  return tf.tensor(values, shape);
}

/** PyTorch's default Linear/Conv initialisation: U(±1/√fanIn). */
function uniformInit(rng: Rng, shape: number[], fanIn: number): tf.Variable {
  const bound = 1 / Math.sqrt(fanIn);
  const size = shape.reduce((p, d) => p * d, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = rng.range(-bound, bound);
  return tf.variable(tf.tensor(values, shape));
}

/** Which gradients a {@link dense} layer's backward pass makes. */
interface Gradients {
  /** With respect to the layer's input (not needed when it is data). */
  input: boolean;
  /** With respect to its weight and bias (not needed when only an input is trained through it). */
  parameters: boolean;
}

/**
 * `relu(x·W + b)` or `x·W + b` as one fused kernel forward, with its backward
 * pass written out (TF.js only fuses outside gradient recording) and making
 * only the gradients asked for.
 */
function dense(
  x: tf.Tensor2D,
  w: tf.Variable,
  b: tf.Variable,
  relu: boolean,
  gradients: Gradients,
): tf.Tensor2D {
  const activation = relu ? "relu" : "linear";
  if (!gradients.input && !gradients.parameters) {
    return tf.fused.matMul({ a: x, b: w, bias: b, activation }) as tf.Tensor2D;
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const y = tf.fused.matMul({ a: x, b: w, bias: b, activation }) as tf.Tensor2D;
    save([x, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [input, output] = saved as tf.Tensor2D[];
        const dz = relu ? tf.mul(dy, tf.step(output)) : dy;
        return [
          ...(gradients.input ? [tf.matMul(dz, w, false, true)] : []),
          ...(gradients.parameters ? [tf.matMul(input, dz, true, false), tf.sum(dz, 0)] : []),
        ];
      },
    };
  });
  return op(
    ...(gradients.input ? [x] : []),
    ...(gradients.parameters ? [w, b] : []),
  ) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------
// A TD3+BC-like update, as in torch_td3bc_step.py.

interface Mlp {
  params: tf.Variable[];
}

function mlp(rng: Rng, sizes: number[]): Mlp {
  const params: tf.Variable[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    params.push(uniformInit(rng, [sizes[i], sizes[i + 1]], sizes[i]));
    params.push(uniformInit(rng, [sizes[i + 1]], sizes[i]));
  }
  return { params };
}

/**
 * The network's output; `inputGradient` and `parameterGradients` say which
 * gradients a loss through it needs (none for targets).
 */
function forward(
  net: Mlp,
  x: tf.Tensor2D,
  inputGradient = false,
  parameterGradients = false,
): tf.Tensor2D {
  const p = net.params;
  const layers = p.length / 2;
  let h = x;
  for (let layer = 0; layer < layers; layer++) {
    const gradients = {
      input: layer === 0 ? inputGradient : inputGradient || parameterGradients,
      parameters: parameterGradients,
    };
    h = dense(h, p[2 * layer], p[2 * layer + 1], layer < layers - 1, gradients);
  }
  return h;
}

function makeTd3bcUpdate(seed: number): () => void {
  const rng = new Rng(seed);
  const [obs, act, batch, hidden] = [17, 6, 256, 256];
  const actor = mlp(rng, [obs, hidden, hidden, act]);
  const critic1 = mlp(rng, [obs + act, hidden, hidden, 1]);
  const critic2 = mlp(rng, [obs + act, hidden, hidden, 1]);
  const copy = (net: Mlp): Mlp => ({ params: net.params.map((p) => tf.variable(p.clone())) });
  const [actorTarget, critic1Target, critic2Target] = [copy(actor), copy(critic1), copy(critic2)];
  const actorOptimizer = new FusedAdam(actor.params, { learningRate: 3e-4 });
  const criticParams = [...critic1.params, ...critic2.params];
  const criticOptimizer = new FusedAdam(criticParams, { learningRate: 3e-4 });
  const s = randomTensor(rng, [batch, obs]) as tf.Tensor2D;
  const a = tf.clipByValue(randomTensor(rng, [batch, act], 0.5), -1, 1) as tf.Tensor2D;
  const r = randomTensor(rng, [batch, 1]);
  const s2 = randomTensor(rng, [batch, obs]) as tf.Tensor2D;
  const notDone = tf.onesLike(r);
  const sa = tf.concat([s, a], 1) as tf.Tensor2D;
  const onlineTargetPairs = [
    [actor, actorTarget],
    [critic1, critic1Target],
    [critic2, critic2Target],
  ] as const;
  let iteration = 0;
  return () => {
    const y = tf.tidy(() => {
      const noise = tf.clipByValue(tf.mul(tf.randomNormal([batch, act]), 0.2), -0.5, 0.5);
      const a2 = tf.clipByValue(tf.add(tf.tanh(forward(actorTarget, s2)), noise), -1, 1);
      const sa2 = tf.concat([s2, a2], 1) as tf.Tensor2D;
      const q = tf.minimum(forward(critic1Target, sa2), forward(critic2Target, sa2));
      return tf.add(r, tf.mul(tf.mul(notDone, 0.99), q));
    });
    const { value: criticLoss, grads: criticGrads } = tf.variableGrads(
      () =>
        tf.add(
          tf.mean(tf.squaredDifference(forward(critic1, sa, false, true), y)),
          tf.mean(tf.squaredDifference(forward(critic2, sa, false, true), y)),
        ) as tf.Scalar,
      criticParams,
    );
    criticOptimizer.step(criticGrads);
    tf.dispose([y, criticLoss, criticGrads]);
    if (iteration % 2 === 0) {
      const { value: actorLoss, grads: actorGrads } = tf.variableGrads(() => {
        const pi = tf.tanh(forward(actor, s, false, true)) as tf.Tensor2D;
        const q = forward(critic1, tf.concat([s, pi], 1) as tf.Tensor2D, true, false);
        // λ = 2.5 / mean|Q| is a constant of the step (no gradient through it).
        const lambda = 2.5 / (tf.mean(tf.abs(q)).dataSync()[0] as number);
        return tf.add(
          tf.mul(tf.mean(q), -lambda),
          tf.mean(tf.squaredDifference(pi, a)),
        ) as tf.Scalar;
      }, actor.params);
      actorOptimizer.step(actorGrads);
      tf.dispose([actorLoss, actorGrads]);
      for (const [online, target] of onlineTargetPairs) {
        lerpInPlace(target.params, online.params, 0.005);
      }
    }
    iteration++;
  };
}

// ---------------------------------------------------------------------------
// An EDM training step of a 1-D U-Net, as in torch_unet_step.py (channels last).

interface Conv {
  filter: tf.Variable;
  bias: tf.Variable;
}

function conv(rng: Rng, inChannels: number, outChannels: number, width: number): Conv {
  return {
    filter: uniformInit(rng, [1, width, inChannels, outChannels], inChannels * width),
    bias: uniformInit(rng, [outChannels], inChannels * width),
  };
}

/** A 1-D convolution with bias, as TF.js's fused 2-D convolution of height 1. */
function applyConv(c: Conv, x: tf.Tensor3D): tf.Tensor3D {
  const [batch, length, channels] = x.shape;
  const y = tf.fused.conv2d({
    x: tf.reshape(x, [batch, 1, length, channels]) as tf.Tensor4D,
    filter: c.filter as tf.Tensor4D,
    strides: 1,
    pad: "same",
    bias: c.bias,
  });
  return tf.reshape(y, [batch, length, y.shape[3]]);
}

interface Norm {
  gamma: tf.Variable;
  beta: tf.Variable;
}

function norm(channels: number): Norm {
  return { gamma: tf.variable(tf.ones([channels])), beta: tf.variable(tf.zeros([channels])) };
}

/** GroupNorm(8) over [batch, length, channels]. */
function applyNorm(n: Norm, x: tf.Tensor3D): tf.Tensor3D {
  return groupNorm(x, n.gamma, n.beta, 8) as tf.Tensor3D;
}

interface Linear {
  weight: tf.Variable;
  bias: tf.Variable;
}

function linear(rng: Rng, inputs: number, outputs: number): Linear {
  return {
    weight: uniformInit(rng, [inputs, outputs], inputs),
    bias: uniformInit(rng, [outputs], inputs),
  };
}

function applyLinear(l: Linear, x: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(x, l.weight), l.bias);
}

interface Block {
  conv1: Conv;
  conv2: Conv;
  norm1: Norm;
  norm2: Norm;
  time: Linear;
}

function block(rng: Rng, inChannels: number, outChannels: number, embedding: number): Block {
  return {
    conv1: conv(rng, inChannels, outChannels, 3),
    conv2: conv(rng, outChannels, outChannels, 3),
    norm1: norm(outChannels),
    norm2: norm(outChannels),
    time: linear(rng, embedding, outChannels),
  };
}

function applyBlock(b: Block, x: tf.Tensor3D, e: tf.Tensor2D): tf.Tensor3D {
  const t = tf.expandDims(applyLinear(b.time, e), 1);
  const h = tf.relu(applyNorm(b.norm1, tf.add(applyConv(b.conv1, x), t)));
  return tf.relu(applyNorm(b.norm2, applyConv(b.conv2, h)));
}

function makeUnetStep(seed: number, features: number): () => void {
  const [batch, length, channels, levels] = [32, 16, 25, 3];
  const rng = new Rng(seed);
  const existing = new Set(Object.keys(tf.engine().state.registeredVariables));
  const widths = Array.from({ length: levels }, (_, i) => features * 2 ** i);
  const timeIn = linear(rng, features / 4, features);
  const timeOut = linear(rng, features, features);
  const down: Block[] = [];
  let inChannels = channels;
  for (const w of widths) {
    down.push(block(rng, inChannels, w, features));
    inChannels = w;
  }
  const up: { conv: Conv; time: Linear; norm: Norm; block: Block }[] = [];
  for (let i = levels - 2; i >= 0; i--) {
    up.push({
      conv: conv(rng, inChannels, widths[i], 2),
      time: linear(rng, features, widths[i]),
      norm: norm(widths[i]),
      block: block(rng, 2 * widths[i], widths[i], features),
    });
    inChannels = widths[i];
  }
  const out = conv(rng, inChannels, channels, 1);
  const modelVariables = Object.entries(tf.engine().state.registeredVariables)
    .filter(([name]) => !existing.has(name))
    .map(([, variable]) => variable);
  const optimizer = new FusedAdam(modelVariables, { learningRate: 2e-3 });
  const data = randomTensor(rng, [batch, length, channels]) as tf.Tensor3D;
  const half = features / 8;
  const frequencies = tf.tensor(
    Array.from({ length: half }, (_, i) => Math.exp(-Math.log(10000) * i / half)),
    [1, half],
  );

  const network = (x: tf.Tensor3D, noiseLevel: tf.Tensor2D): tf.Tensor3D => {
    const angles = tf.mul(noiseLevel, frequencies);
    const hidden = applyLinear(
      timeIn,
      tf.concat([tf.sin(angles), tf.cos(angles)], 1) as tf.Tensor2D,
    );
    const e = applyLinear(timeOut, tf.mul(hidden, tf.sigmoid(hidden)) as tf.Tensor2D);
    const skips: tf.Tensor3D[] = [];
    let h = x;
    down.forEach((b, i) => {
      h = applyBlock(b, h, e);
      skips.push(h);
      if (i < levels - 1) {
        const [n, l, c] = h.shape;
        h = tf.max(tf.reshape(h, [n, l / 2, 2, c]), 2);
      }
    });
    up.forEach((u, j) => {
      const skip = skips[levels - 2 - j];
      const [n, l, c] = h.shape;
      const doubled = tf.reshape(tf.concat([tf.expandDims(h, 2), tf.expandDims(h, 2)], 2), [
        n,
        2 * l,
        c,
      ]);
      const t = tf.expandDims(applyLinear(u.time, e), 1);
      h = tf.relu(applyNorm(u.norm, tf.add(applyConv(u.conv, doubled as tf.Tensor3D), t)));
      h = applyBlock(u.block, tf.concat([h, skip], 2), e);
    });
    return applyConv(out, h);
  };

  return () => {
    const { value, grads } = tf.variableGrads(() => {
      const sigma = tf.exp(tf.sub(tf.mul(tf.randomNormal([batch, 1, 1]), 1.2), 1.2));
      const sigma2 = tf.square(sigma);
      const cSkip = tf.div(1, tf.add(sigma2, 1));
      const cOut = tf.div(sigma, tf.sqrt(tf.add(sigma2, 1)));
      const cIn = tf.rsqrt(tf.add(sigma2, 1));
      const noisy = tf.add(data, tf.mul(tf.randomNormal(data.shape), sigma));
      const noiseLevel = tf.reshape(tf.div(tf.log(sigma), 4), [batch, 1]) as tf.Tensor2D;
      const denoised = tf.add(
        tf.mul(cSkip, noisy),
        tf.mul(cOut, network(tf.mul(cIn, noisy) as tf.Tensor3D, noiseLevel)),
      );
      const weight = tf.div(tf.add(sigma2, 1), sigma2);
      return tf.mean(tf.mul(weight, tf.square(tf.sub(denoised, data)))) as tf.Scalar;
    }, modelVariables);
    optimizer.step(grads);
    tf.dispose([value, grads]);
  };
}

// ---------------------------------------------------------------------------
// The benches.

const productShapes: [number, number, number, boolean, boolean][] = [
  [256, 17, 256, false, false],
  [256, 256, 256, false, false],
  [256, 256, 256, true, false],
  [256, 256, 256, false, true],
  [256, 256, 6, false, false],
  [512, 384, 128, false, false],
  [1024, 1024, 1024, false, false],
];

for (const [m, k, n, transposeA, transposeB] of productShapes) {
  const rng = new Rng(m + k + n);
  const a = randomTensor(rng, transposeA ? [k, m] : [m, k]);
  const b = randomTensor(rng, transposeB ? [n, k] : [k, n]);
  const shape = `${m}x${k}x${n}${transposeA ? " Aᵀ" : ""}${transposeB ? " Bᵀ" : ""}`;
  for (const path of paths) {
    if (path === "shipped" && m === 1024 && (transposeA || transposeB)) continue;
    const name = `matMul ${shape} [${path}]`;
    const body = timed(name, () => tf.tidy(() => void tf.matMul(a, b, transposeA, transposeB)));
    Deno.bench({
      name,
      group: `matMul ${shape}`,
      baseline: path === paths[0],
      fn: () => {
        setKernelSet(path);
        body();
      },
    });
  }
}

function trainingBench(
  group: string,
  make: () => () => void,
  iterations: number,
  anchor: Anchor,
  shippedTrains = true,
  stepsPerCall = 1,
): void {
  for (const path of paths) {
    if (path === "shipped" && (!runShippedSteps || !shippedTrains)) continue;
    let step: (() => void) | undefined;
    const name = `${group} [${path}]`;
    const body = timed(name, () => {
      for (let i = 0; i < stepsPerCall; i++) step!();
    }, stepsPerCall);
    Deno.bench({
      name,
      group,
      baseline: path === paths[0],
      n: path === "shipped" ? Math.ceil(iterations / 4) : iterations,
      warmup: 5,
      fn: () => {
        setKernelSet(path);
        step ??= make();
        body();
      },
    });
  }
  anchorRows.push([group, anchor]);
}

const anchorRows: [string, Anchor][] = [];
// Two updates per timed call: one critic-only, one with the actor and targets.
trainingBench("TD3+BC update", () => makeTd3bcUpdate(1), 60, anchors.td3bc, true, 2);
// The shipped wasm kernels cannot train a convolution: Conv2DBackpropFilter is missing.
trainingBench("U-Net step F=64", () => makeUnetStep(2, 64), 30, anchors.unet64, false);
trainingBench("U-Net step F=128", () => makeUnetStep(3, 128), 20, anchors.unet128, false);

globalThis.addEventListener("unload", () => {
  if (runAnchors) { for (const anchor of Object.values(anchors)) runAnchor(anchor); }
  const lines = [
    `compute path: ${info.path}`,
    "work | path | median ms | min ms | × PyTorch (median)",
  ];
  for (const [group, anchor] of anchorRows) {
    const torch = anchor.runs.length > 0 ? Math.min(...anchor.runs) : undefined;
    const runs = anchor.runs.map((ms) => ms.toFixed(2)).join(", ") || "not run";
    lines.push(`${group} | torch (runs: ${runs}) | ${torch?.toFixed(2) ?? "-"} | - | 1.00`);
    for (const path of paths) {
      const list = samples.get(`${group} [${path}]`);
      if (!list || list.length === 0) continue;
      const kept = list.slice(Math.min(5, list.length - 1));
      const ms = median(kept);
      const ratio = torch ? (ms / torch).toFixed(2) : "-";
      lines.push(
        `${group} | ${path} | ${ms.toFixed(2)} | ${Math.min(...kept).toFixed(2)} | ${ratio}`,
      );
    }
  }
  console.log(lines.join("\n"));
});
