/**
 * Parameter initialisers that match PyTorch's defaults, so networks start
 * where the reference implementations (CORL) start.
 *
 * @module
 */
import type { Rng } from "../core/rng.ts";

/** Weights and bias of one dense layer, row-major `inputDim × outputDim`. */
export interface LinearParameters {
  /** `inputDim × outputDim`: output `j` reads `weight[i * outputDim + j]` for input `i`. */
  weight: Float32Array;
  /** `outputDim`. */
  bias: Float32Array;
}

/**
 * PyTorch's `nn.Linear` initialisation: Kaiming-uniform with `a = √5` for the
 * weights, which reduces to `U(−1/√fanIn, 1/√fanIn)`, and the same bound for
 * the bias.
 */
export function linearInit(rng: Rng, inputDim: number, outputDim: number): LinearParameters {
  if (!Number.isInteger(inputDim) || inputDim <= 0) {
    throw new Error(`linearInit: inputDim must be a positive integer, got ${inputDim}`);
  }
  if (!Number.isInteger(outputDim) || outputDim <= 0) {
    throw new Error(`linearInit: outputDim must be a positive integer, got ${outputDim}`);
  }
  const bound = 1 / Math.sqrt(inputDim);
  const weight = new Float32Array(inputDim * outputDim);
  for (let i = 0; i < weight.length; i++) weight[i] = rng.range(-bound, bound);
  const bias = new Float32Array(outputDim);
  for (let j = 0; j < outputDim; j++) bias[j] = rng.range(-bound, bound);
  return { weight, bias };
}
