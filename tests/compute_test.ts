import { assertEquals, assertOk, assertThrows, relativeError } from "./assert.ts";
import {
  adamStep,
  blasInstallHint,
  computeHint,
  FusedAdam,
  groupNorm,
  initCompute,
  type KernelSet,
  kernelSet,
  lerp,
  lerpInPlace,
  nativeKernelsAvailable,
  setKernelSet,
  tf,
} from "../core/compute.ts";
import { findBlas } from "../compute/blas.ts";
import { fusedMlp } from "../compute/fused_mlp.ts";
import { floatOffset, type WasmBackend } from "../compute/heap.ts";
import { type HeapLoops, heapLoops, preferScriptLoops } from "../compute/simd.ts";
import { Rng } from "../core/rng.ts";

const info = await initCompute("wasm");
const sets: KernelSet[] = nativeKernelsAvailable()
  ? ["shipped", "wasm", "blas"]
  : ["shipped", "wasm"];
const fastSets = sets.filter((set) => set !== "shipped");

function randomArray(rng: Rng, size: number): Float32Array {
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = rng.normal();
  return values;
}

function random(rng: Rng, shape: number[]): tf.Tensor {
  return tf.tensor(randomArray(rng, shape.reduce((p, d) => p * d, 1)), shape);
}

/** Runs `compute` under `set` and returns its outputs' values and shapes. */
function runUnder(set: KernelSet, compute: () => tf.Tensor | tf.Tensor[]) {
  const previous = kernelSet()!;
  setKernelSet(set);
  try {
    return tf.tidy(() => {
      const out = compute();
      return (Array.isArray(out) ? out : [out]).map((t) => ({
        shape: t.shape,
        values: Array.from(t.dataSync() as Float32Array),
      }));
    });
  } finally {
    setKernelSet(previous);
  }
}

/**
 * Every fast set gives the shipped kernels' results, to float32 rounding
 * (`reference`, if given, is what the shipped kernels run instead).
 */
function assertSetsAgree(
  label: string,
  compute: () => tf.Tensor | tf.Tensor[],
  tolerance = 2e-6,
  reference = runUnder("shipped", compute),
) {
  for (const set of fastSets) {
    const result = runUnder(set, compute);
    for (let i = 0; i < reference.length; i++) {
      assertEquals(result[i].shape, reference[i].shape, `${label} [${set}] output ${i} shape`);
      const error = relativeError(result[i].values, reference[i].values);
      assertOk(error <= tolerance, `${label} [${set}] output ${i}: relative error ${error}`);
    }
  }
}

Deno.test("initCompute reports the path it is on, with a hint when BLAS is missing", () => {
  assertEquals(info.backend, "wasm");
  assertEquals(info.simd, true, "the SIMD loops load on Deno's wasm");
  if (info.blas) {
    assertOk(info.path.includes(info.blas.vendor) && info.path.includes(info.blas.path), info.path);
    assertEquals(kernelSet(), "blas");
    assertEquals(computeHint(), undefined);
  } else {
    assertEquals(kernelSet(), "wasm");
    // Turned off on purpose, the path says so and no install hint is due.
    const off = Deno.env.get("PGD_BLAS") === "off";
    assertEquals(computeHint(), off ? undefined : blasInstallHint);
    // The advice is the hint's alone: the path line does not repeat it.
    assertOk(!info.path.includes("apt install"), info.path);
  }
});

Deno.test("findBlas: a named library that does not open is an error naming it", () => {
  assertThrows(
    () => findBlas({ libraryPath: "/nonexistent/libblas-missing.so" }),
    Error,
    "/nonexistent/libblas-missing.so",
  );
  assertEquals(findBlas({ candidates: ["/nonexistent/libopenblas.so.0"] }), undefined);
});

Deno.test("BLAS sgemm through FFI matches a direct product, transposes included", () => {
  const blas = findBlas();
  if (!blas) {
    console.log("no BLAS library on this machine: FFI sgemm not checked");
    return;
  }
  const rng = new Rng(1);
  const [m, n, k] = [7, 5, 9];
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      const a = randomArray(rng, m * k);
      const b = randomArray(rng, k * n);
      const c = new Float32Array(m * n).fill(1);
      blas.sgemm(
        transposeA,
        transposeB,
        m,
        n,
        k,
        1,
        a,
        transposeA ? m : k,
        b,
        transposeB ? k : n,
        0.5,
        c,
        n,
      );
      const expected = new Float32Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let sum = 0.5;
          for (let p = 0; p < k; p++) {
            sum += (transposeA ? a[p * m + i] : a[i * k + p]) *
              (transposeB ? b[j * k + p] : b[p * n + j]);
          }
          expected[i * n + j] = sum;
        }
      }
      assertOk(relativeError(c, expected) < 1e-6, `sgemm ${transposeA} ${transposeB}`);
    }
  }
});

Deno.test("BatchMatMul matches the shipped kernel: shapes, transposes, batch broadcast", () => {
  const rng = new Rng(2);
  const sizes = [[1, 1, 1], [3, 5, 7], [64, 17, 33], [256, 23, 256], [100, 256, 6]];
  for (const [m, k, n] of sizes) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const a = random(rng, transposeA ? [k, m] : [m, k]);
        const b = random(rng, transposeB ? [n, k] : [k, n]);
        assertSetsAgree(
          `matMul ${m}x${k}x${n} ${transposeA} ${transposeB}`,
          () => tf.matMul(a, b, transposeA, transposeB),
        );
      }
    }
  }
  const batched = [
    [[2, 4, 3], [3, 5]],
    [[2, 4, 3], [2, 3, 5]],
    [[1, 4, 3], [3, 3, 5]],
    [[2, 3, 4, 3], [3, 5]],
    [[2, 1, 4, 3], [1, 3, 3, 5]],
  ];
  for (const [aShape, bShape] of batched) {
    const a = random(rng, aShape);
    const b = random(rng, bShape);
    assertSetsAgree(`batched matMul ${aShape} x ${bShape}`, () => tf.matMul(a, b));
    const aT = random(rng, [...aShape.slice(0, -2), aShape.at(-1)!, aShape.at(-2)!]);
    assertSetsAgree(`batched matMul ${aShape}ᵀ x ${bShape}`, () => tf.matMul(aT, b, true, false));
  }
});

/** The unfused activation TF.js's fused kernels stand for. */
function activate(x: tf.Tensor, activation: string): tf.Tensor {
  switch (activation) {
    case "relu":
      return tf.relu(x);
    case "relu6":
      return tf.relu6(x);
    case "elu":
      return tf.elu(x);
    case "leakyrelu":
      return tf.leakyRelu(x, 0.1);
    case "sigmoid":
      return tf.sigmoid(x);
    default:
      return x;
  }
}

Deno.test("_FusedMatMul takes one bias row per stacked network ([members, 1, n])", () => {
  // The shipped kernel refuses such biases; the reference is product, add, relu.
  const rng = new Rng(15);
  const x = random(rng, [1, 32, 9]);
  const w = random(rng, [3, 9, 7]);
  const bias = random(rng, [3, 1, 7]);
  for (const set of fastSets) {
    const [fused, plain] = runUnder(set, () => [
      tf.engine().runKernel("_FusedMatMul", { a: x, b: w, bias }, {
        transposeA: false,
        transposeB: false,
        activation: "relu",
        leakyreluAlpha: 0,
      }) as tf.Tensor,
      tf.relu(tf.add(tf.matMul(x, w), bias)),
    ]);
    assertEquals(fused.shape, [3, 32, 7]);
    assertOk(relativeError(fused.values, plain.values) < 1e-6, `stacked bias [${set}]`);
  }
});

// The shipped fused kernel gives wrong results with transposed operands, so
// the reference is the unfused product, bias and activation on shipped kernels.
Deno.test("_FusedMatMul matches: bias, activations, transposes, and its gradients", () => {
  const rng = new Rng(3);
  const activations = ["linear", "relu", "relu6", "elu", "leakyrelu", "sigmoid"] as const;
  for (const [m, k, n] of [[8, 5, 3], [64, 23, 48]]) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const a = random(rng, transposeA ? [k, m] : [m, k]);
        const b = random(rng, transposeB ? [n, k] : [k, n]);
        const bias = random(rng, [n]);
        const label = `fused ${m}x${k}x${n} tA=${transposeA} tB=${transposeB}`;
        for (const activation of activations) {
          assertSetsAgree(
            `${label} ${activation}`,
            () =>
              tf.fused.matMul({
                a,
                b,
                bias,
                activation,
                transposeA,
                transposeB,
                leakyreluAlpha: 0.1,
              }),
            2e-6,
            runUnder(
              "shipped",
              () => activate(tf.add(tf.matMul(a, b, transposeA, transposeB), bias), activation),
            ),
          );
        }
        assertSetsAgree(
          `${label} scalar bias`,
          () =>
            tf.fused.matMul({
              a,
              b,
              bias: tf.scalar(0.5),
              activation: "relu",
              transposeA,
              transposeB,
            }),
          2e-6,
          runUnder("shipped", () => tf.relu(tf.add(tf.matMul(a, b, transposeA, transposeB), 0.5))),
        );
        const weights = random(rng, [m, n]);
        const loss = (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) =>
          tf.sum(
            tf.mul(
              tf.relu(tf.fused.matMul({ a: x, b: w, bias: c, transposeA, transposeB })),
              weights,
            ),
          );
        const unfusedLoss = (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) =>
          tf.sum(tf.mul(tf.relu(tf.add(tf.matMul(x, w, transposeA, transposeB), c)), weights));
        assertSetsAgree(
          `${label} gradients`,
          () => tf.grads(loss)([a, b, bias]),
          1e-5,
          runUnder("shipped", () => tf.grads(unfusedLoss)([a, b, bias])),
        );
      }
    }
  }
});

/** Direct channels-last convolution and its two gradients, as a reference. */
function referenceConv(
  x: Float32Array,
  xShape: number[],
  filter: Float32Array,
  filterShape: number[],
  stride: number,
  pad: "same" | "valid",
  dilation: number,
  dy?: Float32Array,
) {
  const [batch, height, width, inC] = xShape;
  const [fh, fw, , outC] = filterShape;
  const span = (f: number) => (f - 1) * dilation + 1;
  const outH = pad === "same"
    ? Math.ceil(height / stride)
    : Math.ceil((height - span(fh) + 1) / stride);
  const outW = pad === "same"
    ? Math.ceil(width / stride)
    : Math.ceil((width - span(fw) + 1) / stride);
  const top = pad === "same"
    ? Math.floor(Math.max((outH - 1) * stride + span(fh) - height, 0) / 2)
    : 0;
  const left = pad === "same"
    ? Math.floor(Math.max((outW - 1) * stride + span(fw) - width, 0) / 2)
    : 0;
  const y = new Float32Array(batch * outH * outW * outC);
  const dx = new Float32Array(x.length);
  const dw = new Float32Array(filter.length);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let fy = 0; fy < fh; fy++) {
          const iy = oy * stride - top + fy * dilation;
          if (iy < 0 || iy >= height) continue;
          for (let fx = 0; fx < fw; fx++) {
            const ix = ox * stride - left + fx * dilation;
            if (ix < 0 || ix >= width) continue;
            for (let c = 0; c < inC; c++) {
              const xi = ((b * height + iy) * width + ix) * inC + c;
              for (let o = 0; o < outC; o++) {
                const yi = ((b * outH + oy) * outW + ox) * outC + o;
                const wi = ((fy * fw + fx) * inC + c) * outC + o;
                y[yi] += x[xi] * filter[wi];
                if (dy) {
                  dx[xi] += dy[yi] * filter[wi];
                  dw[wi] += dy[yi] * x[xi];
                }
              }
            }
          }
        }
      }
    }
  }
  return { y, dx, dw, outShape: [batch, outH, outW, outC] };
}

Deno.test("conv2d and conv1d, with both gradients, match a direct convolution", () => {
  const rng = new Rng(4);
  const cases = [
    { x: [2, 1, 16, 5], f: [1, 3, 5, 8], stride: 1, pad: "same", dilation: 1 },
    { x: [3, 1, 9, 4], f: [1, 2, 4, 6], stride: 1, pad: "same", dilation: 1 },
    { x: [2, 1, 16, 6], f: [1, 1, 6, 7], stride: 1, pad: "valid", dilation: 1 },
    { x: [2, 1, 12, 3], f: [1, 3, 3, 4], stride: 1, pad: "valid", dilation: 1 },
    { x: [3, 1, 4, 5], f: [1, 4, 5, 2], stride: 1, pad: "same", dilation: 1 },
    { x: [2, 1, 11, 3], f: [1, 3, 3, 2], stride: 2, pad: "same", dilation: 1 },
    { x: [2, 7, 8, 3], f: [3, 3, 3, 4], stride: 2, pad: "same", dilation: 1 },
    { x: [1, 9, 9, 2], f: [3, 2, 2, 3], stride: 1, pad: "valid", dilation: 1 },
    { x: [2, 10, 10, 2], f: [3, 3, 2, 2], stride: 1, pad: "same", dilation: 2 },
  ] as const;
  for (const c of cases) {
    const xValues = randomArray(rng, c.x.reduce((p: number, d: number) => p * d, 1));
    const fValues = randomArray(rng, c.f.reduce((p: number, d: number) => p * d, 1));
    const probe = referenceConv(xValues, [...c.x], fValues, [...c.f], c.stride, c.pad, c.dilation);
    const dyValues = randomArray(rng, probe.y.length);
    const ref = referenceConv(
      xValues,
      [...c.x],
      fValues,
      [...c.f],
      c.stride,
      c.pad,
      c.dilation,
      dyValues,
    );
    const x = tf.tensor4d(xValues, [...c.x] as [number, number, number, number]);
    const filter = tf.tensor4d(fValues, [...c.f] as [number, number, number, number]);
    const dy = tf.tensor4d(dyValues, ref.outShape as [number, number, number, number]);
    const label = `conv x=${c.x} f=${c.f} s=${c.stride} ${c.pad} d=${c.dilation}`;
    for (const set of fastSets) {
      const [y] = runUnder(set, () => tf.conv2d(x, filter, c.stride, c.pad, "NHWC", c.dilation));
      assertEquals(y.shape, ref.outShape, label);
      assertOk(relativeError(y.values, ref.y) < 1e-5, `${label} [${set}] forward`);
      if (c.dilation !== 1) continue; // TF.js has no gradient for dilated conv2d
      const [dx, dw] = runUnder(
        set,
        () =>
          tf.grads((xs: tf.Tensor, fs: tf.Tensor) =>
            tf.sum(tf.mul(tf.conv2d(xs as tf.Tensor4D, fs as tf.Tensor4D, c.stride, c.pad), dy))
          )([x, filter]),
      );
      assertOk(relativeError(dx.values, ref.dx) < 1e-5, `${label} [${set}] input gradient`);
      assertOk(relativeError(dw.values, ref.dw) < 1e-5, `${label} [${set}] filter gradient`);
    }
  }
  const x1 = random(rng, [4, 12, 6]) as tf.Tensor3D;
  const f1 = random(rng, [3, 6, 5]) as tf.Tensor3D;
  const b1 = random(rng, [5]);
  assertSetsAgree("conv1d", () => tf.conv1d(x1, f1, 1, "same"), 1e-5);
  assertSetsAgree(
    "fused conv2d with bias and relu",
    () =>
      tf.fused.conv2d({
        x: tf.reshape(x1, [4, 1, 12, 6]) as tf.Tensor4D,
        filter: tf.reshape(f1, [1, 3, 6, 5]) as tf.Tensor4D,
        strides: 1,
        pad: "same",
        bias: b1,
        activation: "relu",
      }),
    1e-5,
  );
});

Deno.test("element-wise replacements match the shipped kernels, broadcasts included", () => {
  const rng = new Rng(5);
  const pairs = [
    [[256, 64], [256, 64]],
    [[256, 64], [64]],
    [[64], [256, 64]],
    [[256, 64], [1, 64]],
    [[256, 64], []],
    [[2, 3, 8], [8]],
    [[256, 1], [256, 1]],
    [[5, 1], [5, 4]],
  ];
  for (const [aShape, bShape] of pairs) {
    const a = random(rng, aShape);
    const b = random(rng, bShape);
    assertSetsAgree(`minimum ${aShape} ${bShape}`, () => tf.minimum(a, b), 0);
    assertSetsAgree(`maximum ${aShape} ${bShape}`, () => tf.maximum(a, b), 0);
  }
  const wide = tf.mul(random(rng, [128, 64]), 4);
  assertSetsAgree("tanh", () => tf.tanh(wide), 1e-6);
  assertSetsAgree(
    "tanh extremes",
    () => tf.tanh(tf.tensor([-100, -9, -1e-6, 0, 1e-6, 0.5, 9, 100])),
    1e-6,
  );
  const cube = random(rng, [6, 5, 4]);
  for (const axis of [0, [0, 1], -3, 1, 2, [1, 2], [0, 2]]) {
    for (const keepDims of [false, true]) {
      assertSetsAgree(`sum ${axis} ${keepDims}`, () => tf.sum(cube, axis, keepDims), 1e-6);
      assertSetsAgree(`mean ${axis} ${keepDims}`, () => tf.mean(cube, axis, keepDims), 1e-6);
    }
  }
  assertSetsAgree("sum over all axes", () => tf.sum(cube), 1e-6);
  assertSetsAgree(
    "int sum stays shipped",
    () => tf.sum(tf.tensor2d([[1, 2], [3, 4]], [2, 2], "int32"), 0),
    0,
  );
});

Deno.test("comparisons, slices and splits match the shipped kernels", () => {
  const rng = new Rng(8);
  const pairs = [
    [[32, 8, 2, 16], [32, 8, 1, 16]],
    [[64, 32], []],
    [[64, 32], [64, 32]],
    [[5, 1, 3], [1, 4, 3]],
    [[], []],
  ];
  for (const [aShape, bShape] of pairs) {
    // Rounded values make ties, so equality is exercised.
    const a = tf.round(random(rng, aShape));
    const b = tf.round(random(rng, bShape));
    for (const op of [tf.equal, tf.notEqual, tf.greater, tf.greaterEqual, tf.less, tf.lessEqual]) {
      assertSetsAgree(`${op.name} ${aShape} ${bShape}`, () => tf.cast(op(a, b), "float32"), 0);
    }
  }
  const ints = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32");
  assertSetsAgree(
    "int comparison",
    () => tf.cast(tf.greater(ints, tf.scalar(3, "int32")), "float32"),
    0,
  );
  const cube = random(rng, [4, 6, 5]);
  const boxes: [number[], number[]][] = [
    [[0, 0, 0], [4, 6, 5]],
    [[1, 0, 0], [2, 6, 5]],
    [[1, 2, 0], [3, 3, 5]],
    [[0, 1, 2], [4, 4, 2]],
    [[3, 5, 4], [1, 1, 1]],
    [[0, 0, 0], [-1, 2, -1]],
    [[2, 0, 0], [0, 6, 5]],
  ];
  for (const [begin, size] of boxes) {
    assertSetsAgree(`slice ${begin} ${size}`, () => tf.slice(cube, begin, size), 0);
  }
  assertSetsAgree("int slice", () => tf.cast(tf.slice(ints, [0, 1], [2, 2]), "float32"), 0);
  const flat = random(rng, [1000]);
  assertSetsAgree("split a flat vector", () => tf.split(flat, [10, 300, 1, 689]), 0);
  assertSetsAgree("concat along axis 0", () => tf.concat([cube, cube, tf.slice(cube, 0, 1)]), 0);
  assertSetsAgree(
    "concat along axis 1",
    () => tf.concat([cube, tf.slice(cube, 0, [4, 2, 5])], 1),
    0,
  );
  assertSetsAgree(
    "concat along the last axis",
    () => tf.concat([cube, tf.zeros([4, 6, 0]), cube], 2),
    0,
  );
  assertSetsAgree("concat of one", () => tf.concat([cube], 1), 0);
  assertSetsAgree("split along axis 1", () => tf.split(cube, [2, 1, 3], 1), 0);
  assertSetsAgree("split along the last axis", () => tf.split(cube, 5, -1), 0);
  assertSetsAgree(
    "concat gradient",
    () =>
      tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.concat([x, y], 1))))([
        cube,
        cube,
      ]),
    0,
  );
});

Deno.test("adamStep and lerp match the same arithmetic in TF.js ops", () => {
  const rng = new Rng(9);
  const [param, grad, m] = [random(rng, [500]), random(rng, [500]), random(rng, [500])];
  const v = tf.abs(random(rng, [500]));
  const options = { learningRate: 3e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, step: 7 };
  const reference = tf.tidy(() => {
    const m1 = tf.add(tf.mul(m, 0.9), tf.mul(grad, 0.1));
    const v1 = tf.add(tf.mul(v, 0.999), tf.mul(tf.square(grad), 0.001));
    const mHat = tf.div(m1, 1 - 0.9 ** 7);
    const vHat = tf.div(v1, 1 - 0.999 ** 7);
    const p1 = tf.sub(param, tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), 1e-8)), 3e-3));
    return [p1, m1, v1].map((t) => t.dataSync() as Float32Array);
  });
  for (const set of sets) {
    const [p1, m1, v1] = runUnder(set, () => {
      const next = adamStep(param, grad, m, v, options);
      return [next.param, next.m, next.v];
    });
    assertOk(relativeError(p1.values, reference[0]) < 1e-6, `adamStep param [${set}]`);
    assertOk(relativeError(m1.values, reference[1]) < 1e-6, `adamStep m [${set}]`);
    assertOk(relativeError(v1.values, reference[2]) < 1e-6, `adamStep v [${set}]`);
    const [mixed] = runUnder(set, () => lerp(param, grad, 0.25));
    const expected = tf.tidy(() => tf.add(tf.mul(param, 0.75), tf.mul(grad, 0.25)).dataSync());
    assertOk(relativeError(mixed.values, expected) < 1e-6, `lerp [${set}]`);
  }
  assertThrows(
    () => adamStep(param, random(rng, [499]), m, v, options),
    Error,
    "'grad' has shape [499]",
  );
  assertThrows(() => adamStep(param, grad, m, v, { ...options, step: 0 }), Error, "'step'");
});

Deno.test("FusedAdam and lerpInPlace update in place as the TF.js arithmetic does", () => {
  const rng = new Rng(13);
  const initial = [random(rng, [7, 5]), random(rng, [5]), random(rng, [3, 2, 4])];
  const gradients = Array.from({ length: 3 }, () => initial.map((t) => random(rng, t.shape)));
  const results: Record<string, number[][]> = {};
  for (const set of sets) {
    setKernelSet(set);
    const variables = initial.map((t) => tf.variable(t)); // shares each initial tensor's buffer
    const adam = new FusedAdam(variables, { learningRate: 0.01 });
    const before = tf.memory().numTensors;
    for (const step of gradients) adam.step(step);
    lerpInPlace(variables, gradients[0], 0.3);
    assertEquals(tf.memory().numTensors, before, `FusedAdam keeps no new tensors [${set}]`);
    assertEquals(adam.iterations, 3);
    results[set] = variables.map((v) => Array.from(v.dataSync()));
    adam.dispose();
    tf.dispose(variables);
  }
  setKernelSet(info.blas ? "blas" : "wasm");
  // The variables were made from `initial`, which must be left as it was.
  const untouched = tf.variable(initial[0]);
  const original = Array.from(initial[0].dataSync());
  const adam = new FusedAdam([untouched], { learningRate: 0.5 });
  adam.step([tf.onesLike(initial[0])]);
  assertEquals(Array.from(initial[0].dataSync()), original);
  assertOk(relativeError(untouched.dataSync(), original) > 1e-3, "the variable itself moved");
  adam.dispose();
  for (const set of fastSets) {
    results[set].forEach((values, i) => {
      const error = relativeError(values, results.shipped[i]);
      assertOk(error < 1e-6, `FusedAdam variable ${i} [${set}]: relative error ${error}`);
    });
  }
  assertThrows(() => adam.step([tf.ones([2])]), Error, "expected [7,5]");
});

Deno.test("FusedAdam trains the same on every path inside tf.tidy, weights read afresh after each step", () => {
  // Products between steps would read stale weights if a kernel cached them
  // by tensor id while the optimiser wrote them in place.
  const rng = new Rng(14);
  const inputs = random(rng, [32, 6]);
  const targets = random(rng, [32, 2]);
  const initial = [random(rng, [6, 16]), random(rng, [16]), random(rng, [16, 2])];
  const curves: Record<string, number[]> = {};
  for (const set of sets) {
    setKernelSet(set);
    const [w1, b1, w2] = initial.map((t) => tf.variable(tf.mul(t, 0.5)));
    const adam = new FusedAdam([w1, b1, w2], { learningRate: 0.02 });
    const loss = () =>
      tf.mean(tf.square(tf.sub(
        tf.matMul(tf.fused.matMul({ a: inputs, b: w1, bias: b1, activation: "relu" }), w2),
        targets,
      ))) as tf.Scalar;
    const curve: number[] = [];
    for (let step = 0; step < 8; step++) {
      // Inside tf.tidy, as the agents step: the optimiser's state must survive it.
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(loss);
        curve.push(value.dataSync()[0]);
        adam.step(grads);
      });
    }
    curves[set] = curve;
    adam.dispose();
    tf.dispose([w1, b1, w2]);
  }
  setKernelSet(info.blas ? "blas" : "wasm");
  assertOk(curves.shipped[7] < curves.shipped[0], `loss fell: ${curves.shipped}`);
  for (const set of fastSets) {
    const error = relativeError(curves[set], curves.shipped);
    assertOk(error < 1e-4, `FusedAdam loss curve [${set}] differs by ${error}: ${curves[set]}`);
  }
});

Deno.test("groupNorm (with and without its ReLU) and its gradients match the composite of TF.js ops", () => {
  const rng = new Rng(10);
  for (const [shape, groups] of [[[4, 16, 32], 8], [[3, 5, 2, 12], 4], [[2, 7], 7]] as const) {
    const x = tf.add(tf.mul(random(rng, [...shape]), 3), 1);
    const channels = shape[shape.length - 1];
    const gamma = random(rng, [channels]);
    const beta = random(rng, [channels]);
    const weights = random(rng, [...shape]);
    for (const relu of [false, true]) {
      const loss = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(groupNorm(a, g, b, groups, { relu }), weights));
      // The shipped set has no group-norm kernel, so it runs the composite;
      // the fast sets run the SIMD loops, then their TypeScript twins.
      for (const script of [false, true]) {
        const label = `${shape} / ${groups}, relu ${relu}, script ${script}`;
        preferScriptLoops(script);
        try {
          assertSetsAgree(
            `groupNorm ${label}`,
            () => groupNorm(x, gamma, beta, groups, { relu }),
            1e-5,
          );
          assertSetsAgree(
            `groupNorm gradients ${label}`,
            () => tf.grads(loss)([x, gamma, beta]),
            1e-4,
          );
        } finally {
          preferScriptLoops(false);
        }
      }
    }
  }
  const x = random(rng, [2, 3, 6]);
  assertThrows(() => groupNorm(x, tf.ones([6]), tf.zeros([6]), 4), Error, "'groups' (4)");
  assertThrows(() => groupNorm(x, tf.ones([5]), tf.zeros([6]), 3), Error, "'gamma' has shape [5]");
});

Deno.test("a small network trains the same on every path, and the loss falls", () => {
  const rng = new Rng(6);
  const inputs = random(rng, [64, 8]);
  const targets = tf.tidy(() => tf.sum(tf.tanh(inputs), 1, true));
  const initial = [random(rng, [8, 32]), tf.zeros([32]), random(rng, [32, 1]), tf.zeros([1])];
  const losses: Record<string, number[]> = {};
  for (const set of sets) {
    setKernelSet(set);
    const params = initial.map((p) => tf.variable(tf.mul(p, 0.3)));
    const optimizer = tf.train.adam(0.01);
    const curve: number[] = [];
    for (let step = 0; step < 60; step++) {
      const loss = optimizer.minimize(() => {
        const hidden = tf.relu(tf.add(tf.matMul(inputs, params[0]), params[1]));
        const output = tf.fused.matMul({ a: hidden, b: params[2], bias: params[3] });
        return tf.mean(tf.square(tf.sub(output, targets))) as tf.Scalar;
      }, true)!;
      curve.push(loss.dataSync()[0]);
      loss.dispose();
    }
    losses[set] = curve;
    optimizer.dispose();
    tf.dispose(params);
  }
  setKernelSet(info.blas ? "blas" : "wasm");
  const reference = losses.shipped;
  assertOk(
    reference.at(-1)! < 0.2 * reference[0],
    `loss fell from ${reference[0]} to ${reference.at(-1)}`,
  );
  for (const set of fastSets) {
    const error = relativeError(losses[set], reference);
    assertOk(error < 1e-3, `loss curve on '${set}' differs from shipped by ${error}`);
  }
});

Deno.test("tensors and heap records stay flat over repeated steps", () => {
  const rng = new Rng(7);
  const x = random(rng, [32, 1, 16, 8]) as tf.Tensor4D;
  const filter = tf.variable(random(rng, [1, 3, 8, 8]));
  const weights = tf.variable(random(rng, [128, 4]));
  const optimizer = tf.train.sgd(0.01);
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const step = () =>
    tf.dispose(
      optimizer.minimize(() => {
        const conv = tf.conv2d(x, filter as tf.Tensor4D, 1, "same");
        const h = groupNorm(conv, tf.ones([8]), tf.zeros([8]), 4, { relu: true });
        const flat = tf.reshape(h, [32, 128]);
        return tf.mean(tf.square(tf.tanh(tf.matMul(flat, weights, false, false)))) as tf.Scalar;
      }, true)!,
    );
  for (let i = 0; i < 3; i++) step();
  const tensors = tf.memory().numTensors;
  const records = backend.numDataIds();
  for (let i = 0; i < 20; i++) step();
  assertEquals(tf.memory().numTensors, tensors);
  assertEquals(backend.numDataIds(), records);
  tf.dispose([x, filter, weights]);
  optimizer.dispose();
});

async function runScript(code: string, env: Record<string, string>, permissions = ["--allow-all"]) {
  // The child sees only the switches a test names, whatever this process was started with.
  const inherited = Deno.env.toObject();
  delete inherited.PGD_BLAS;
  delete inherited.PGD_BLAS_LIB;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...permissions, "-"],
    env: { ...inherited, ...env },
    clearEnv: true,
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(code));
  await writer.close();
  const { code: status, stdout, stderr } = await child.output();
  return { status, out: new TextDecoder().decode(stdout), err: new TextDecoder().decode(stderr) };
}

Deno.test("PGD_BLAS=off and missing FFI permission keep the pure-wasm path; a bad PGD_BLAS_LIB is a clear error", async () => {
  const url = new URL("../core/compute.ts", import.meta.url).href;
  const script =
    `import { initCompute, kernelSet } from "${url}"; const i = await initCompute("wasm"); console.log(i.path + "|" + kernelSet());`;
  const off = await runScript(script, { PGD_BLAS: "off" });
  assertEquals(off.status, 0, off.err);
  assertEquals(off.out.trim(), "wasm (native BLAS turned off)|wasm");
  const bad = await runScript(script, { PGD_BLAS_LIB: "/nonexistent/libfoo.so" });
  assertOk(bad.status !== 0, "a missing PGD_BLAS_LIB must fail");
  assertOk(bad.err.includes("PGD_BLAS_LIB '/nonexistent/libfoo.so'"), bad.err);
  const noFfi = await runScript(script, {}, ["--allow-read", "--allow-env"]);
  assertEquals(noFfi.status, 0, noFfi.err);
  assertEquals(noFfi.out.trim(), "wasm (native BLAS needs --allow-ffi)|wasm");
});

/** A small fixed computation touching every replaced kernel family; prints its results as JSON. */
const crossBackendScript = (backend: string) => `
import { groupNorm, initCompute, tf } from "${new URL("../core/compute.ts", import.meta.url).href}";
await initCompute("${backend}");
const values = (n, scale) => Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + scale) * scale);
const x = tf.tensor(values(2 * 8 * 6, 1.5), [2, 1, 8, 6]);
const filter = tf.variable(tf.tensor(values(3 * 6 * 8, 0.4), [1, 3, 6, 8]));
const weight = tf.variable(tf.tensor(values(64 * 5, 0.2), [64, 5]));
// Plain gradient descent: Adam's first steps follow gradient signs, which
// rounding can flip where a gradient is nearly zero.
const optimizer = tf.train.sgd(0.05);
const losses = [];
for (let step = 0; step < 5; step++) {
  const { value, grads } = tf.variableGrads(() => {
    const h = groupNorm(tf.conv2d(x, filter, 1, "same"), tf.ones([8]), tf.zeros([8]), 4, {
      relu: true,
    });
    const y = tf.tanh(tf.matMul(tf.reshape(tf.slice(h, [0, 0, 0, 0], [2, 1, 8, 8]), [2, 64]), weight));
    return tf.mean(tf.square(tf.sub(tf.minimum(y, 0.5), 0.4)));
  });
  optimizer.applyGradients(grads);
  losses.push(await value.data().then((d) => d[0]));
}
console.log(JSON.stringify({ losses, weight: Array.from(await weight.data()) }));
`;

Deno.test("cpu, wasm and BLAS paths give the same training results to float32 rounding", async () => {
  const results: Record<string, { losses: number[]; weight: number[] }> = {};
  for (
    const [name, backend, env] of [
      ["cpu", "cpu", {}],
      ["wasm", "wasm", { PGD_BLAS: "off" }],
      ["blas", "wasm", {}],
    ] as const
  ) {
    const run = await runScript(crossBackendScript(backend), env);
    assertEquals(run.status, 0, run.err);
    results[name] = JSON.parse(run.out.trim().split("\n").at(-1)!);
  }
  const reference = results.cpu;
  assertOk(reference.losses[4] < reference.losses[0], `loss fell: ${reference.losses}`);
  for (const name of ["wasm", "blas"]) {
    const lossError = relativeError(results[name].losses, reference.losses);
    const weightError = relativeError(results[name].weight, reference.weight);
    assertOk(
      lossError < 1e-5 && weightError < 1e-5,
      `${name} vs cpu: ${lossError}, ${weightError}`,
    );
  }
});

Deno.test("fusedMlp matches ReLU layers of TF.js ops: outputs and every gradient", () => {
  const rng = new Rng(21);
  const reference = (x: tf.Tensor3D, weights: tf.Tensor3D[], biases: tf.Tensor[]) => {
    // TF.js's own matMul gradient does not sum over a broadcast batch axis: tile instead.
    let h: tf.Tensor = x.shape[0] === weights[0].shape[0]
      ? x
      : tf.tile(x, [weights[0].shape[0], 1, 1]);
    weights.forEach((weight, i) => {
      const z = tf.add(tf.matMul(h as tf.Tensor3D, weight), biases[i]);
      h = i < weights.length - 1 ? tf.relu(z) : z;
    });
    return h as tf.Tensor3D;
  };
  const cases = [
    { members: 1, inputMembers: 1, widths: [5, 7, 3] },
    { members: 2, inputMembers: 1, widths: [23, 16, 16, 1] },
    { members: 3, inputMembers: 3, widths: [6, 9, 4] },
    { members: 2, inputMembers: 2, widths: [4, 3] },
  ];
  for (const { members, inputMembers, widths } of cases) {
    const batch = 11;
    const x = random(rng, [inputMembers, batch, widths[0]]) as tf.Tensor3D;
    const weights = widths.slice(1).map((out, i) =>
      random(rng, [members, widths[i], out]) as tf.Tensor3D
    );
    const biases = widths.slice(1).map((out) =>
      random(rng, members === 1 ? [out] : [members, 1, out])
    );
    const label = `members ${members}, input ${inputMembers}, widths ${widths}`;
    const upstream = random(rng, [members, batch, widths[widths.length - 1]]);
    const expected = runUnder("shipped", () => {
      const loss = (...args: tf.Tensor[]) => {
        const [input, ...parameters] = args;
        const w = parameters.filter((_, i) => i % 2 === 0) as tf.Tensor3D[];
        const b = parameters.filter((_, i) => i % 2 === 1);
        return tf.sum(tf.mul(reference(input as tf.Tensor3D, w, b), upstream));
      };
      const parameters = weights.flatMap((w, i) => [w, biases[i]]);
      return [reference(x, weights, biases), ...tf.grads(loss)([x, ...parameters])];
    });
    for (const [set, script] of fastSets.flatMap((set) => [[set, false], [set, true]] as const)) {
      preferScriptLoops(script);
      try {
        for (
          const gradients of [
            { input: true, parameters: true },
            { input: true, parameters: false },
            { input: false, parameters: true },
          ]
        ) {
          const result = runUnder(set, () => {
            const loss = (...args: tf.Tensor[]) => {
              const input = gradients.input ? args.shift()! : x;
              const w = gradients.parameters
                ? args.filter((_, i) => i % 2 === 0) as tf.Tensor3D[]
                : weights;
              const b = gradients.parameters ? args.filter((_, i) => i % 2 === 1) : biases;
              return tf.sum(tf.mul(fusedMlp(input as tf.Tensor3D, w, b, gradients), upstream));
            };
            const parameters = weights.flatMap((w, i) => [w, biases[i]]);
            const inputs = [
              ...(gradients.input ? [x] : []),
              ...(gradients.parameters ? parameters : []),
            ];
            return [fusedMlp(x, weights, biases, gradients), ...tf.grads(loss)(inputs)];
          });
          const wanted = [
            expected[0],
            ...(gradients.input ? [expected[1]] : []),
            ...(gradients.parameters ? expected.slice(2) : []),
          ];
          assertEquals(result.length, wanted.length, `${label} [${set}] output count`);
          wanted.forEach((want, i) => {
            assertEquals(result[i].shape, want.shape, `${label} [${set}] output ${i} shape`);
            const error = relativeError(result[i].values, want.values);
            assertOk(
              error < 1e-5,
              `${label} ${
                JSON.stringify(gradients)
              } [${set}, script ${script}] output ${i}: ${error}`,
            );
          });
        }
      } finally {
        preferScriptLoops(false);
      }
    }
  }
});

Deno.test("the SIMD heap loops and their TypeScript twins agree, odd lengths included", () => {
  const backend = tf.backend() as unknown as WasmBackend;
  // Buffers of 37 floats (not a multiple of the vector width), one 3×5×7 block and one 3×7,
  // and 120 floats for column matrices.
  const sizes = [37, 37, 37, 3 * 5 * 7, 3 * 7, 37, 37, 120];
  const values = sizes.map((n, i) => {
    const a = randomArray(new Rng(30 + i), n);
    // Buffer 1 is a ReLU output (for the mask) and a second moment (for Adam): non-negative.
    return i === 1 ? a.map((x) => Math.max(0, x)) : a;
  });
  const cases: [string, (loops: HeapLoops, o: number[]) => void][] = [
    ["reluMask", (l, o) => l.reluMask(o[0], o[1], o[2], 37)],
    ["sumRows", (l, o) => l.sumRows(o[3], 3, 5, 7, o[4])],
    ["adam", (l, o) =>
      l.adam(o[0], o[2], o[5], o[1], o[0], o[5], o[1], 37, {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        stepSize: 0.01,
        inverseRootCorrection2: 3,
      })],
    ["lerp", (l, o) => l.lerp(o[0], o[6], o[0], 37, 0.3)],
    [
      "biasActivation, ReLU, a bias row per member",
      (l, o) => l.biasActivation(o[3], o[4], 7, 3, 5, 7, true),
    ],
    ["biasActivation, one bias row", (l, o) => l.biasActivation(o[3], o[4], 0, 3, 5, 7, false)],
    ["maximum", (l, o) => l.maximum(o[0], 1, o[2], 1, o[5], 37)],
    ["minimum against one value", (l, o) => l.minimum(o[0], 1, o[2], 0, o[5], 37)],
    ["maximum of one value", (l, o) => l.maximum(o[0], 0, o[2], 1, o[5], 37)],
    ["copyBlocks", (l, o) => l.copyBlocks(o[3], 7, o[0], 6, 5, 5)],
    ["im2col", (l, o) =>
      l.im2col(
        {
          batchSize: 2,
          inHeight: 1,
          inWidth: 5,
          inChannels: 3,
          outHeight: 1,
          outWidth: 5,
          outChannels: 4,
          filterHeight: 1,
          filterWidth: 3,
          strideHeight: 1,
          strideWidth: 1,
          dilationHeight: 1,
          dilationWidth: 1,
          padInfo: { top: 0, left: 1 },
        },
        o[0],
        o[3],
      )],
    // Two examples of three stored steps, upsampled to six, as the second part of five channels.
    ["im2colRows", (l, o) =>
      l.im2colRows(
        { batch: 2, length: 6, repeat: 2, channels: 3, taps: 2, before: 0, total: 5, offset: 2 },
        o[4],
        o[7],
      )],
    ["col2imRows", (l, o) =>
      l.col2imRows(
        { batch: 2, length: 6, repeat: 1, channels: 3, taps: 2, before: 1, total: 5, offset: 2 },
        o[7],
        o[0],
      )],
    ["maxPairs", (l, o) => l.maxPairs(o[3], 7, 7, o[7])],
    ["maxPairsBackward", (l, o) => l.maxPairsBackward(o[3], o[4], 3, 7, false, o[7])],
    ["maxPairsBackward, added", (l, o) => l.maxPairsBackward(o[3], o[4], 3, 7, true, o[7])],
  ];
  const simd = heapLoops(backend).simd;
  for (const [name, apply] of cases) {
    const [script, fast] = [true, false].map((useScript) => {
      preferScriptLoops(useScript);
      try {
        return tf.tidy(() => {
          const tensors = values.map((v) => tf.tensor1d(v));
          const loops = heapLoops(backend);
          assertEquals(loops.simd, useScript ? false : simd, `${name}: loops kind`);
          apply(loops, tensors.map((t) => floatOffset(backend, t)));
          return tensors.map((t) => Array.from(t.dataSync()));
        });
      } finally {
        preferScriptLoops(false);
      }
    });
    script.forEach((expected, i) => {
      // Float32 arithmetic against TypeScript's float64 intermediates.
      const error = relativeError(fast[i], expected);
      assertOk(error < 1e-5, `${name} (simd ${simd}) buffer ${i}: relative error ${error}`);
    });
    assertOk(
      script.some((after, i) => relativeError(after, values[i]) > 1e-3),
      `${name} changed nothing`,
    );
  }
  assertOk(simd, "the SIMD module loads on the wasm backend's memory");
});

Deno.test("Identity shares buffers; in-place optimiser steps leave shared copies untouched", () => {
  for (const set of fastSets) {
    const previous = kernelSet()!;
    setKernelSet(set);
    try {
      const variable = tf.variable(tf.tensor1d([1, 2, 3]));
      const copy = tf.clone(variable);
      assertEquals(Array.from(copy.dataSync()), [1, 2, 3]);
      const adam = new FusedAdam([variable], { learningRate: 0.5 });
      adam.step([tf.tensor1d([1, 1, 1])]);
      lerpInPlace([variable], [tf.tensor1d([0, 0, 0])], 0.5);
      assertEquals(Array.from(copy.dataSync()), [1, 2, 3], `copy changed [${set}]`);
      assertOk(variable.dataSync()[0] < 1, `variable did not move [${set}]`);
      adam.dispose();
      tf.dispose([variable, copy]);
    } finally {
      setKernelSet(previous);
    }
  }
});
