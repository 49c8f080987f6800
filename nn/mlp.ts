/**
 * Multi-layer perceptrons with ReLU hidden layers and a linear output, one
 * network or an ensemble of K same-shaped networks stored as stacked weights
 * (`[K, in, out]` per layer), so the ensemble costs one op per layer, and
 * on the wasm backend the whole network one op forward and one backward.
 *
 * @module
 */
import {
  fusedMlp,
  fusedMlpAvailable,
  fusedMlpBackward,
  fusedMlpForward,
  tf,
} from "../core/compute.ts";
import { Rng } from "../core/rng.ts";
import { dense } from "./dense.ts";
import { variableFrom } from "./flat.ts";
import { linearInit } from "./init.ts";

/** Shape and initialisation of an {@link Mlp}. */
export interface MlpSpec {
  /** Width of the input. */
  inputDim: number;
  /** Widths of the hidden (ReLU) layers, e.g. `[256, 256]`. */
  hiddenDims: readonly number[];
  /** Width of the (linear) output. */
  outputDim: number;
  /** Number of stacked networks; 1 (default) is a single network. */
  ensembleSize?: number;
  /** Seed of the initialisation (PyTorch `nn.Linear` style, each member independently). */
  seed: number;
  /** Prefix of the variable names, for debugging. */
  name?: string;
}

/** Options of {@link Mlp.apply}. */
export interface ApplyOptions {
  /** Let gradients flow into the input (e.g. a critic's action input for an actor loss); default false. */
  inputGradient?: boolean;
  /**
   * Make gradients for the network's own parameters; default true. False
   * when a loss only passes through the network (an actor loss through a
   * critic), which skips the parameter products.
   */
  parameterGradient?: boolean;
  /**
   * Run only this member of an ensemble, as a single network (output
   * `[batch, outputDim]`): TD3's actor loss reads Q₁ alone, and the other
   * member's forward and backward products would be wasted.
   */
  member?: number;
  /**
   * Run only the members `start … start + count − 1`, as an ensemble of
   * `count` (output `[count, batch, outputDim]`; a rank-3 input holds `count`
   * inputs): a stack of seeds' twin critics reads every seed's Q₁ alone.
   */
  members?: MemberRange;
}

/** A run of consecutive members of an ensemble. */
export interface MemberRange {
  /** First member. */
  start: number;
  /** Number of members. */
  count: number;
}

/** A forward pass kept for one backward pass (see {@link Mlp.forward}). */
export interface MlpPass {
  /** The network's output, shaped as {@link Mlp.predict} shapes it. */
  readonly output: tf.Tensor;
  /**
   * The gradients of a loss with respect to the network's parameters, in the
   * order of {@link Mlp.variables}, from its gradient with respect to
   * {@link output} (same shape as the output).
   */
  backward(outputGradient: tf.Tensor): tf.Tensor[];
}

let mlpCounter = 0;

function checkSpec(spec: MlpSpec): void {
  const positive = (value: number, field: string) => {
    if (!Number.isInteger(value) || value <= 0) {
      throw new Error(`Mlp: '${field}' must be a positive integer, got ${value}`);
    }
  };
  positive(spec.inputDim, "inputDim");
  positive(spec.outputDim, "outputDim");
  positive(spec.ensembleSize ?? 1, "ensembleSize");
  spec.hiddenDims.forEach((width, i) => positive(width, `hiddenDims[${i}]`));
}

/**
 * A ReLU MLP (or an ensemble of them) whose parameters are TF.js variables.
 *
 * A single network maps `[batch, inputDim]` to `[batch, outputDim]`. An
 * ensemble maps `[batch, inputDim]` (the same input for every member) or
 * `[K, batch, inputDim]` (one input per member) to `[K, batch, outputDim]`.
 */
export class Mlp {
  /** Shape of the network. */
  readonly spec: Readonly<Required<Omit<MlpSpec, "seed" | "name">>>;
  /** Weights `[K, in, out]` per layer. */
  readonly weights: tf.Variable<tf.Rank.R3>[];
  /** Biases per layer: `[out]` for a single network, `[K, 1, out]` for an ensemble. */
  readonly biases: tf.Variable[];

  /** Makes and initialises a network from its spec. */
  constructor(spec: MlpSpec) {
    checkSpec(spec);
    const members = spec.ensembleSize ?? 1;
    this.spec = {
      inputDim: spec.inputDim,
      hiddenDims: [...spec.hiddenDims],
      outputDim: spec.outputDim,
      ensembleSize: members,
    };
    const prefix = `${spec.name ?? "mlp"}_${mlpCounter++}`;
    const widths = [spec.inputDim, ...spec.hiddenDims, spec.outputDim];
    const rng = new Rng(spec.seed);
    this.weights = [];
    this.biases = [];
    for (let layer = 0; layer + 1 < widths.length; layer++) {
      const [inputDim, outputDim] = [widths[layer], widths[layer + 1]];
      const weight = new Float32Array(members * inputDim * outputDim);
      const bias = new Float32Array(members * outputDim);
      for (let member = 0; member < members; member++) {
        const init = linearInit(rng, inputDim, outputDim);
        weight.set(init.weight, member * inputDim * outputDim);
        bias.set(init.bias, member * outputDim);
      }
      const biasShape = members === 1 ? [outputDim] : [members, 1, outputDim];
      this.weights.push(
        variableFrom(
          tf.tensor3d(weight, [members, inputDim, outputDim]),
          true,
          `${prefix}_w${layer}`,
        ),
      );
      this.biases.push(variableFrom(tf.tensor(bias, biasShape), true, `${prefix}_b${layer}`));
    }
  }

  /** Every parameter, layer by layer (weight, bias, weight, bias, …). */
  get variables(): tf.Variable[] {
    return this.weights.flatMap((weight, i) => [weight, this.biases[i]]);
  }

  /** Number of scalar parameters. */
  get parameterCount(): number {
    return this.variables.reduce((count, variable) => count + variable.size, 0);
  }

  /**
   * The network's output, differentiable with respect to its variables (and
   * to the input when `inputGradient` is set).
   */
  apply(input: tf.Tensor, options: ApplyOptions = {}): tf.Tensor {
    if (options.member !== undefined && options.members !== undefined) {
      throw new Error("Mlp.apply: give 'member' or 'members', not both");
    }
    const range = options.member !== undefined
      ? { start: options.member, count: 1 }
      : options.members;
    return this.#run(
      input,
      options.inputGradient ?? false,
      options.parameterGradient ?? true,
      range,
      options.members === undefined,
    );
  }

  /**
   * A forward pass whose activations are kept for one backward pass, outside
   * TF.js's gradient tape. A training step that writes out its loss's
   * gradient with respect to the output and hands it to `backward` runs two
   * kernels for the network on wasm, where the tape's bookkeeping would cost
   * more than the products of a small network. On other backends `backward`
   * runs the network again under the tape. Call inside `tf.tidy`.
   */
  forward(input: tf.Tensor): MlpPass {
    const { inputDim, outputDim, ensembleSize } = this.spec;
    const batch = this.#checkInput(input);
    const shaped = (output: tf.Tensor) =>
      ensembleSize === 1 ? tf.reshape(output, [batch, outputDim]) : output;
    if (fusedMlpAvailable()) {
      const stacked =
        (input.rank === 2 ? tf.reshape(input, [1, batch, inputDim]) : input) as tf.Tensor3D;
      const { output, hidden } = fusedMlpForward(stacked, this.weights, this.biases);
      return {
        output: shaped(output),
        backward: (outputGradient) =>
          fusedMlpBackward(
            stacked,
            hidden,
            this.weights,
            this.biases,
            tf.reshape(outputGradient, output.shape),
            { input: false, parameters: true },
          ),
      };
    }
    return {
      output: this.predict(input),
      backward: (outputGradient) => {
        const { grads } = tf.variableGrads(
          () => tf.sum(tf.mul(this.apply(input), outputGradient)) as tf.Scalar,
          this.variables,
        );
        return this.variables.map((variable) => grads[variable.name]);
      },
    };
  }

  /**
   * The output without gradient bookkeeping, for acting and targets; with
   * `member`, that member's output alone, as a single network's
   * (`[batch, outputDim]`).
   */
  predict(input: tf.Tensor, member?: number): tf.Tensor {
    return this.#run(
      input,
      false,
      false,
      member === undefined ? undefined : {
        start: member,
        count: 1,
      },
    );
  }

  #run(
    input: tf.Tensor,
    inputGradient: boolean,
    parameters: boolean,
    range?: MemberRange,
    singleMember = true,
  ): tf.Tensor {
    const { inputDim, outputDim, ensembleSize } = this.spec;
    const batch = this.#checkInput(input, range, singleMember);
    let hidden =
      (input.rank === 2 ? tf.reshape(input, [1, batch, inputDim]) : input) as tf.Tensor3D;
    const { weights, biases } = range === undefined ? this : this.#memberParameters(range);
    const single = ensembleSize === 1 || (range !== undefined && singleMember);
    if (fusedMlpAvailable()) {
      const output = fusedMlp(hidden, weights, biases, { input: inputGradient, parameters });
      return single ? tf.reshape(output, [batch, outputDim]) : output;
    }
    const last = weights.length - 1;
    for (let layer = 0; layer <= last; layer++) {
      const activation = layer === last ? "linear" : "relu";
      // Hidden layers pass gradients back whenever anything upstream needs them.
      const gradients = {
        input: layer > 0 ? inputGradient || parameters : inputGradient,
        parameters,
      };
      hidden = dense(hidden, weights[layer], biases[layer], activation, gradients);
    }
    return single ? tf.reshape(hidden, [batch, outputDim]) : hidden;
  }

  /** The weights `[count, in, out]` and biases `[count, 1, out]` of a run of members (copies). */
  #memberParameters(range: MemberRange): { weights: tf.Tensor3D[]; biases: tf.Tensor[] } {
    const { ensembleSize } = this.spec;
    const { start, count } = range;
    if (
      !Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 ||
      start + count > ensembleSize
    ) {
      throw new Error(
        count === 1
          ? `Mlp: member ${start} does not exist (ensemble of ${ensembleSize})`
          : `Mlp: members ${start}…${start + count - 1} do not exist (ensemble of ${ensembleSize})`,
      );
    }
    const pick = (tensor: tf.Tensor) =>
      tf.slice(tensor.rank === 1 ? tf.reshape(tensor, [1, 1, -1]) : tensor, start, count);
    return {
      weights: this.weights.map((weight) => pick(weight) as tf.Tensor3D),
      biases: this.biases.map(pick),
    };
  }

  #checkInput(input: tf.Tensor, range?: MemberRange, singleMember = true): number {
    const { inputDim, ensembleSize } = this.spec;
    // One member run as a single network reads a rank-2 input; a run of members, one input each.
    const members = range === undefined ? ensembleSize : singleMember ? 0 : range.count;
    const ok = input.shape[input.rank - 1] === inputDim &&
      (input.rank === 2 || (input.rank === 3 && input.shape[0] === members));
    if (!ok) {
      throw new Error(
        `Mlp: input of shape [${input.shape}] does not fit: expected [batch, ${inputDim}]` +
          (ensembleSize > 1 ? ` or [${ensembleSize}, batch, ${inputDim}]` : ""),
      );
    }
    return input.shape[input.rank - 2];
  }

  /** Copies another same-shaped network's parameters into this one. */
  copyFrom(source: Mlp): void {
    const targets = this.variables;
    const sources = source.variables;
    if (targets.length !== sources.length) {
      throw new Error("Mlp.copyFrom: the networks have different numbers of layers");
    }
    targets.forEach((target, i) => {
      if (!tf.util.arraysEqual(target.shape, sources[i].shape)) {
        throw new Error(
          `Mlp.copyFrom: parameter ${i} has shape [${
            sources[i].shape
          }], expected [${target.shape}]`,
        );
      }
      target.assign(sources[i]);
    });
  }

  /** A new network with the same shape and a copy of this one's parameters (e.g. a target network). */
  clone(name?: string): Mlp {
    const copy = new Mlp({ ...this.spec, seed: 0, name: name ?? "copy" });
    copy.copyFrom(this);
    return copy;
  }

  /**
   * A new ensemble whose member `i` is a copy of member `sources[i][1]` of
   * network `sources[i][0]` (all of one shape): a stack of seeds' networks,
   * each member starting exactly where it would start alone. Of one source it
   * is a single network, shaped as that member alone.
   */
  static gather(sources: readonly (readonly [Mlp, number])[], name?: string): Mlp {
    if (sources.length === 0) throw new Error("Mlp.gather: no members to gather");
    const { inputDim, hiddenDims, outputDim } = sources[0][0].spec;
    for (const [net, member] of sources) {
      const spec = net.spec;
      if (
        spec.inputDim !== inputDim || spec.outputDim !== outputDim ||
        !tf.util.arraysEqual([...spec.hiddenDims], [...hiddenDims])
      ) {
        throw new Error("Mlp.gather: the networks differ in shape");
      }
      if (!Number.isInteger(member) || member < 0 || member >= spec.ensembleSize) {
        throw new Error(`Mlp.gather: member ${member} does not exist`);
      }
    }
    const stack = new Mlp({
      inputDim,
      hiddenDims,
      outputDim,
      ensembleSize: sources.length,
      seed: 0,
      name: name ?? "stack",
    });
    const memberOf = (tensor: tf.Tensor, member: number) =>
      tensor.rank === 1 ? tf.reshape(tensor, [1, 1, -1]) : tf.slice(tensor, member, 1);
    stack.weights.forEach((weight, layer) =>
      tf.tidy(() =>
        weight.assign(
          tf.concat(
            sources.map(([net, member]) => memberOf(net.weights[layer], member)),
            0,
          ) as tf.Tensor3D,
        )
      )
    );
    // Through a fresh buffer (× 1 is exact): TF.js's wasm kernels read a
    // buffer's shape as it was made, and a single network's bias must be made
    // rank 1 to fuse into its product.
    stack.biases.forEach((bias, layer) =>
      tf.tidy(() => {
        const gathered = tf.concat(
          sources.map(([net, member]) => memberOf(net.biases[layer], member)),
          0,
        );
        bias.assign(tf.mul(tf.reshape(gathered, bias.shape), 1));
      })
    );
    return stack;
  }

  /** Frees the parameters. */
  dispose(): void {
    for (const variable of this.variables) variable.dispose();
  }
}
