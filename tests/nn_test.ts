import assert from "node:assert/strict";
import { initCompute, kernelSet, setKernelSet, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { linearInit } from "../nn/init.ts";
import { Mlp } from "../nn/mlp.ts";
import { Adam } from "../nn/adam.ts";
import { polyakUpdate } from "../nn/polyak.ts";

await initCompute("wasm");

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number) {
  assert.equal(actual.length, expected.length, "lengths differ");
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const scale = Math.max(1, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / scale);
  }
  assert.ok(worst <= tolerance, `largest difference ${worst} exceeds ${tolerance}`);
}

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  return tf.tensor(data, shape);
}

/** The same network written with plain TF.js ops and autodiff, one member at a time. */
function referenceForward(net: Mlp, input: tf.Tensor, member: number): tf.Tensor {
  let hidden = input.rank === 3
    ? tf.squeeze(tf.slice(input, [member, 0, 0], [1, -1, -1]), [0])
    : input;
  const last = net.weights.length - 1;
  net.weights.forEach((weight, layer) => {
    const w = tf.squeeze(tf.slice(weight, [member, 0, 0], [1, -1, -1]), [0]);
    const bias = net.biases[layer];
    const b = bias.rank === 1 ? bias : tf.reshape(tf.slice(bias, [member, 0, 0], [1, 1, -1]), [-1]);
    hidden = tf.add(tf.matMul(hidden, w), b);
    if (layer < last) hidden = tf.relu(hidden);
  });
  return hidden;
}

Deno.test("linearInit draws PyTorch's nn.Linear bounds, reproducibly", () => {
  const a = linearInit(new Rng(3), 16, 8);
  const b = linearInit(new Rng(3), 16, 8);
  assert.deepEqual(a.weight, b.weight);
  const bound = 1 / Math.sqrt(16);
  const maxAbs = Math.max(...a.weight.map(Math.abs), ...a.bias.map(Math.abs));
  assert.ok(maxAbs <= bound && maxAbs > 0.8 * bound, `max |w| ${maxAbs} vs bound ${bound}`);
  assert.throws(() => linearInit(new Rng(1), 0, 3), /inputDim/);
});

Deno.test("Mlp forward and gradients match plain TF.js autodiff (single network)", () => {
  const net = new Mlp({ inputDim: 5, hiddenDims: [7, 6], outputDim: 3, seed: 11 });
  const input = randomTensor([9, 5], 1);
  const weights = randomTensor([9, 3], 2);
  const loss = (forward: () => tf.Tensor) => () => tf.sum(tf.mul(forward(), weights)) as tf.Scalar;
  const ours = tf.variableGrads(loss(() => net.apply(input)), net.variables);
  const reference = tf.variableGrads(loss(() => referenceForward(net, input, 0)), net.variables);
  assertClose(ours.value.dataSync(), reference.value.dataSync(), 1e-5);
  for (const variable of net.variables) {
    assertClose(
      ours.grads[variable.name].dataSync(),
      reference.grads[variable.name].dataSync(),
      1e-4,
    );
  }
  assertClose(net.predict(input).dataSync(), referenceForward(net, input, 0).dataSync(), 1e-5);
  // Gradient with respect to the input, as an actor loss through a critic needs.
  const dOurs = tf.grad((x: tf.Tensor) =>
    tf.sum(tf.mul(net.apply(x, { inputGradient: true }), weights))
  )(input);
  const dReference = tf.grad((x: tf.Tensor) =>
    tf.sum(tf.mul(referenceForward(net, x, 0), weights))
  )(input);
  assertClose(dOurs.dataSync(), dReference.dataSync(), 1e-4);
  net.dispose();
});

Deno.test("an ensemble is K independent networks in one batched product", () => {
  const members = 3;
  const net = new Mlp({
    inputDim: 4,
    hiddenDims: [8, 8],
    outputDim: 2,
    ensembleSize: members,
    seed: 5,
  });
  const shared = randomTensor([6, 4], 3);
  const perMember = randomTensor([members, 6, 4], 4);
  const weights = randomTensor([members, 6, 2], 5);
  for (const input of [shared, perMember]) {
    const output = net.apply(input, { inputGradient: true });
    assert.deepEqual(output.shape, [members, 6, 2]);
    const reference = tf.stack([0, 1, 2].map((k) => referenceForward(net, input, k)));
    assertClose(output.dataSync(), reference.dataSync(), 1e-5);
    const ours = tf.variableGrads(
      () => tf.sum(tf.mul(net.apply(input), weights)) as tf.Scalar,
      net.variables,
    );
    const plain = tf.variableGrads(
      () =>
        tf.sum(
          tf.mul(tf.stack([0, 1, 2].map((k) => referenceForward(net, input, k))), weights),
        ) as tf.Scalar,
      net.variables,
    );
    for (const variable of net.variables) {
      assertClose(
        ours.grads[variable.name].dataSync(),
        plain.grads[variable.name].dataSync(),
        1e-4,
      );
    }
    const dOurs = tf.grad((x: tf.Tensor) =>
      tf.sum(tf.mul(net.apply(x, { inputGradient: true }), weights))
    )(input);
    const dPlain = tf.grad((x: tf.Tensor) =>
      tf.sum(tf.mul(tf.stack([0, 1, 2].map((k) => referenceForward(net, x, k))), weights))
    )(input);
    assert.deepEqual(dOurs.shape, input.shape);
    assertClose(dOurs.dataSync(), dPlain.dataSync(), 1e-4);
  }
  // Members differ: each is initialised on its own.
  const out = net.predict(shared).arraySync() as number[][][];
  assert.notDeepEqual(out[0], out[1]);
  assert.throws(() => net.apply(tf.zeros([2, 6, 4])), /input of shape \[2,6,4\]/);
  net.dispose();
});

Deno.test("Adam follows PyTorch's update rule step by step", () => {
  const start = [0.5, -1.5, 2.0, 0.1, -0.3];
  const a = tf.variable(tf.tensor2d(start.slice(0, 4), [2, 2]));
  const b = tf.variable(tf.tensor1d(start.slice(4)));
  const options = { learningRate: 0.1, beta1: 0.8, beta2: 0.95, epsilon: 1e-3 };
  const adam = new Adam([a, b], options);
  // Hand computation in float64 of torch.optim.Adam on f(θ) = Σ c_i θ_i² / 2.
  const curvature = [1, 2, 3, 4, 5];
  const theta = [...start];
  const m = theta.map(() => 0);
  const v = theta.map(() => 0);
  for (let t = 1; t <= 5; t++) {
    const grads = tf.variableGrads(() => {
      const flat = tf.concat([tf.reshape(a, [-1]), b]);
      return tf.mul(0.5, tf.sum(tf.mul(tf.square(flat), tf.tensor1d(curvature)))) as tf.Scalar;
    }, [a, b]);
    adam.step(grads.grads);
    tf.dispose(grads.grads);
    grads.value.dispose();
    for (let i = 0; i < theta.length; i++) {
      const g = curvature[i] * theta[i];
      m[i] = options.beta1 * m[i] + (1 - options.beta1) * g;
      v[i] = options.beta2 * v[i] + (1 - options.beta2) * g * g;
      const mHat = m[i] / (1 - options.beta1 ** t);
      const vHat = v[i] / (1 - options.beta2 ** t);
      theta[i] -= options.learningRate * mHat / (Math.sqrt(vHat) + options.epsilon);
    }
    assertClose([...a.dataSync(), ...b.dataSync()], theta, 1e-5);
  }
  assert.equal(adam.iterations, 5);
  assert.throws(() => adam.step([tf.zeros([3])]), /variables against|shape/);
  assert.throws(() => new Adam([a], { learningRate: 0.1, beta1: 1 }), /beta1/);
  adam.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("polyakUpdate moves targets by τ towards the sources", () => {
  const source = [tf.variable(tf.tensor1d([1, 2])), tf.variable(tf.tensor2d([[3]]))];
  const target = [tf.variable(tf.tensor1d([0, 0])), tf.variable(tf.tensor2d([[1]]))];
  polyakUpdate(target, source, 0.25);
  assertClose(target[0].dataSync(), [0.25, 0.5], 1e-7);
  assertClose(target[1].dataSync(), [1.5], 1e-7);
  assert.throws(() => polyakUpdate(target, source.slice(0, 1), 0.1), /variables against/);
  assert.throws(() => polyakUpdate(target, source, 2), /tau/);
  tf.dispose([...source, ...target]);
});

Deno.test("training an MLP ensemble with Adam lowers the loss and keeps the tensor count flat", () => {
  const rng = new Rng(9);
  const batch = 64;
  const xs = new Float32Array(batch * 3);
  const ys = new Float32Array(batch);
  for (let i = 0; i < batch; i++) {
    for (let j = 0; j < 3; j++) xs[i * 3 + j] = rng.range(-1, 1);
    ys[i] = Math.sin(2 * xs[i * 3]) + xs[i * 3 + 1] * xs[i * 3 + 2];
  }
  const x = tf.tensor2d(xs, [batch, 3]);
  const y = tf.tensor2d(ys, [batch, 1]);
  const net = new Mlp({
    inputDim: 3,
    hiddenDims: [32, 32],
    outputDim: 1,
    ensembleSize: 2,
    seed: 1,
  });
  const target = net.clone("target");
  const adam = new Adam(net.variables, { learningRate: 3e-3, epsilon: 1e-5 });
  const losses: number[] = [];
  let tensorsAfterWarmup = 0;
  for (let step = 0; step < 300; step++) {
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.squaredDifference(net.apply(x), y)) as tf.Scalar,
      net.variables,
    );
    adam.step(grads);
    polyakUpdate(target.variables, net.variables, 0.05);
    losses.push(value.dataSync()[0]);
    tf.dispose([value, ...Object.values(grads)]);
    if (step === 10) tensorsAfterWarmup = tf.memory().numTensors;
  }
  assert.equal(tf.memory().numTensors, tensorsAfterWarmup, "tensor count grew during training");
  const first = losses.slice(0, 10).reduce((a, b) => a + b) / 10;
  const last = losses.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(last < 0.1 * first, `loss fell only from ${first} to ${last}`);
  tf.dispose([x, y]);
  net.dispose();
  target.dispose();
  adam.dispose();
});

Deno.test("Adam notices values written to its variables elsewhere between steps", () => {
  const a = tf.variable(tf.tensor1d([1, 2]));
  const b = tf.variable(tf.tensor1d([3]));
  const adam = new Adam([a, b], { learningRate: 0.5 });
  const step = () => {
    const { value, grads } = tf.variableGrads(
      () => tf.add(tf.sum(a), tf.sum(b)) as tf.Scalar,
      [a, b],
    );
    adam.step(grads);
    tf.dispose([value, ...Object.values(grads)]);
  };
  step();
  // A first Adam step moves each parameter by about the learning rate against the gradient sign.
  assertClose(a.dataSync(), [0.5, 1.5], 1e-4);
  a.assign(tf.tensor1d([10, 20]));
  step();
  assertClose(a.dataSync(), [9.5, 19.5], 1e-4);
  assertClose(b.dataSync(), [2], 1e-4);
  adam.dispose();
  tf.dispose([a, b]);
});

Deno.test("an Mlp passes gradients through to its input without making its own", () => {
  const net = new Mlp({ inputDim: 3, hiddenDims: [5], outputDim: 2, ensembleSize: 2, seed: 2 });
  const input = randomTensor([4, 3], 8);
  const through = (x: tf.Tensor) =>
    tf.sum(net.apply(x, { inputGradient: true, parameterGradient: false }));
  const full = (x: tf.Tensor) => tf.sum(net.apply(x, { inputGradient: true }));
  assertClose(tf.grad(through)(input).dataSync(), tf.grad(full)(input).dataSync(), 1e-5);
  assert.throws(
    () => tf.variableGrads(() => through(input) as tf.Scalar, net.variables),
    /Cannot find a connection/,
  );
  net.dispose();
});

Deno.test("Mlp.forward's backward gives autodiff's parameter gradients, with and without the fused kernels", () => {
  const active = kernelSet()!;
  // The active set runs the fused kernels; TF.js as shipped has none, so `backward` uses the tape.
  for (const set of [active, "shipped" as const]) {
    setKernelSet(set);
    try {
      for (const ensembleSize of [1, 2]) {
        const net = new Mlp({
          inputDim: 4,
          hiddenDims: [6, 5],
          outputDim: 2,
          ensembleSize,
          seed: 7,
        });
        const input = randomTensor([5, 4], 12);
        const outputGradient = randomTensor(ensembleSize === 1 ? [5, 2] : [ensembleSize, 5, 2], 13);
        tf.tidy(() => {
          const pass = net.forward(input);
          assertClose(pass.output.dataSync(), net.predict(input).dataSync(), 1e-6);
          const gradients = pass.backward(outputGradient);
          const reference = tf.variableGrads(
            () => tf.sum(tf.mul(net.apply(input), outputGradient)) as tf.Scalar,
            net.variables,
          );
          assert.equal(gradients.length, net.variables.length);
          net.variables.forEach((variable, i) => {
            assert.deepEqual(gradients[i].shape, variable.shape);
            assertClose(gradients[i].dataSync(), reference.grads[variable.name].dataSync(), 1e-4);
          });
        });
        tf.dispose([input, outputGradient]);
        net.dispose();
      }
    } finally {
      setKernelSet(active);
    }
  }
});

Deno.test("Mlp.gather copies the chosen members exactly; a run of members computes as they do", () => {
  const before = tf.memory().numTensors;
  const spec = { inputDim: 3, hiddenDims: [5], outputDim: 2 };
  const single = new Mlp({ ...spec, seed: 1 });
  const pair = new Mlp({ ...spec, ensembleSize: 2, seed: 2 });
  const stack = Mlp.gather([[pair, 1], [single, 0], [pair, 0]]);
  assert.equal(stack.spec.ensembleSize, 3);
  const member = (net: Mlp, index: number) =>
    net.variables.map((v) =>
      tf.tidy(() => Array.from((v.rank === 1 ? v : tf.slice(v, index, 1)).dataSync()))
    );
  assert.deepEqual(member(stack, 0), member(pair, 1));
  assert.deepEqual(member(stack, 1), member(single, 0));
  assert.deepEqual(member(stack, 2), member(pair, 0));
  // One source gives a single network, shaped as one alone.
  const lone = Mlp.gather([[pair, 1]]);
  assert.equal(lone.spec.ensembleSize, 1);
  assert.deepEqual(lone.biases.map((b) => b.shape), single.biases.map((b) => b.shape));
  assert.deepEqual(member(lone, 0), member(pair, 1));

  tf.tidy(() => {
    const inputs = randomTensor([3, 4, 3], 5);
    const all = stack.predict(inputs).arraySync() as number[][][];
    const run = stack.apply(tf.slice(inputs, 1, 2), { members: { start: 1, count: 2 } });
    assert.deepEqual(run.shape, [2, 4, 2]);
    assert.deepEqual(run.arraySync(), all.slice(1, 3));
    const one = stack.predict(tf.squeeze(tf.slice(inputs, 2, 1), [0]), 2);
    assert.deepEqual(one.arraySync(), all[2]);
  });
  tf.tidy(() =>
    assert.throws(
      () => stack.apply(randomTensor([2, 4, 3], 1), { members: { start: 2, count: 2 } }),
      /members 2…3 do not exist/,
    )
  );
  const wider = new Mlp({ ...spec, outputDim: 3, seed: 1 });
  assert.throws(() => Mlp.gather([[single, 0], [wider, 0]]), /differ in shape/);
  for (const net of [single, pair, stack, lone, wider]) net.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors left after dispose");
});
