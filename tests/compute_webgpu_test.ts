import { assertEquals, assertOk, relativeError } from "./assert.ts";
import { adamStep, type ComputeInfo, initCompute, lerp, tf } from "../core/compute.ts";
import { Rng } from "../core/rng.ts";

// Deno runs each test file in its own isolate, so this file may pick a backend
// of its own. Without an adapter there is nothing to check, and it says so.
let info: ComputeInfo | undefined;
let skipReason = "";
try {
  info = await initCompute("webgpu");
} catch (error) {
  skipReason = (error as Error).message;
}
const ignore = info === undefined;
if (ignore) console.log(`WebGPU tests skipped: ${skipReason}`);

function randomMatrix(rng: Rng, rows: number, cols: number): Float32Array {
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal();
  return values;
}

/** Row-major product of an r×k and a k×c matrix, in float64. */
function product(
  a: Float32Array,
  b: Float32Array,
  r: number,
  k: number,
  c: number,
  transposeA = false,
) {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) {
    for (let p = 0; p < k; p++) {
      const x = transposeA ? a[p * r + i] : a[i * k + p];
      for (let j = 0; j < c; j++) out[i * c + j] += x * b[p * c + j];
    }
  }
  return out;
}

Deno.test({
  name: "webgpu: initCompute names the adapter",
  ignore,
  fn() {
    assertEquals(info!.backend, "webgpu");
    assertEquals(tf.getBackend(), "webgpu");
    assertOk(info!.path.startsWith("webgpu ("), info!.path);
  },
});

Deno.test({
  name: "webgpu: matMul and its gradients match a direct product",
  ignore,
  async fn() {
    const rng = new Rng(11);
    const [m, k, n] = [37, 23, 19];
    const aValues = randomMatrix(rng, m, k);
    const bValues = randomMatrix(rng, k, n);
    const weights = randomMatrix(rng, m, n);
    const a = tf.tensor2d(aValues, [m, k]);
    const b = tf.tensor2d(bValues, [k, n]);
    const w = tf.tensor2d(weights, [m, n]);
    const y = await tf.matMul(a, b).data();
    assertOk(relativeError(y, product(aValues, bValues, m, k, n)) < 1e-5, "matMul");
    // loss = Σ w ⊙ (a·b): dL/da = w·bᵀ, dL/db = aᵀ·w.
    const [da, db] = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, z), w)))([
      a,
      b,
    ]);
    const bT = new Float32Array(n * k);
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) bT[j * k + i] = bValues[i * n + j];
    assertOk(relativeError(await da.data(), product(weights, bT, m, n, k)) < 1e-5, "d/da");
    assertOk(
      relativeError(await db.data(), product(aValues, weights, k, m, n, true)) < 1e-5,
      "d/db",
    );
    tf.dispose([a, b, w, da, db]);
  },
});

Deno.test({
  name: "webgpu: fused matMul, conv1d and the fused optimiser ops run and agree with plain ops",
  ignore,
  async fn() {
    const rng = new Rng(12);
    const a = tf.tensor2d(randomMatrix(rng, 16, 8), [16, 8]);
    const b = tf.tensor2d(randomMatrix(rng, 8, 4), [8, 4]);
    const bias = tf.tensor1d(randomMatrix(rng, 1, 4));
    const fused = await tf.fused.matMul({ a, b, bias, activation: "relu" }).data();
    const plain = await tf.relu(tf.add(tf.matMul(a, b), bias)).data();
    assertOk(relativeError(fused, plain) < 1e-6, "fused matMul");
    const x = tf.tensor3d(randomMatrix(rng, 2 * 12, 3), [2, 12, 3]);
    const filter = tf.tensor3d(randomMatrix(rng, 3 * 3, 5), [3, 3, 5]);
    const conv = await tf.conv1d(x, filter, 1, "same").data();
    // The same convolution as a product of shifted copies of the input.
    const shifted = tf.concat(
      [-1, 0, 1].map((shift) => {
        const padded = tf.pad(x, [[0, 0], [1, 1], [0, 0]]);
        return tf.slice(padded, [0, 1 + shift, 0], [2, 12, 3]);
      }),
      2,
    );
    const viaProduct = await tf.reshape(
      tf.matMul(tf.reshape(shifted, [24, 9]), tf.reshape(filter, [9, 5])),
      [2, 12, 5],
    ).data();
    assertOk(relativeError(conv, viaProduct) < 1e-5, "conv1d");
    const next = adamStep(a, a, tf.zerosLike(a), tf.zerosLike(a), {
      learningRate: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
      step: 1,
    });
    // A first Adam step moves every parameter by the learning rate against its gradient's sign.
    const moved = await tf.sub(a, next.param).data();
    const signs = await tf.sign(a).data();
    assertOk(relativeError(moved, Array.from(signs, (s) => 0.1 * s)) < 1e-4, "adamStep");
    const mixed = await lerp(a, tf.zerosLike(a), 0.5).data();
    assertOk(relativeError(mixed, Array.from(await a.data(), (v) => v / 2)) < 1e-6, "lerp");
  },
});
