/**
 * The denoiser's U-Net as one op: one kernel forward and one backward on the
 * wasm backend (compute/kernels_unet.ts), with a custom gradient, so that a
 * gradient tape records one node for the whole network; and the two kernels
 * alone, for a training step that needs no tape at all.
 *
 * @module
 */
import { tf } from "./tf.ts";
import {
  type UNetBackwardAttrs,
  unetBackwardKernelName,
  type UNetForwardAttrs,
  unetForwardKernelName,
  type UNetKernelShape,
  unetKernelsVersion,
} from "./kernels_unet.ts";

export { type UNetKernelShape, unetKernelsVersion };

/** Whether the fused U-Net can run: the wasm backend with the U-Net kernels registered. */
export function fusedUNetAvailable(): boolean {
  return tf.getBackend() === "wasm" && tf.getKernel(unetForwardKernelName, "wasm") !== undefined;
}

/** The parameters as the kernels' named inputs. */
function named(names: readonly string[], params: readonly tf.Tensor[]): tf.NamedTensorMap {
  return Object.fromEntries(names.map((name, i) => [name, params[i]]));
}

/**
 * The forward kernel alone, outside any gradient tape: the output and, when
 * `save` is set, the workspace {@link fusedUNetBackward} reads (else
 * `undefined`; the batch then runs in chunks of bounded memory). Shapes and
 * names as for {@link fusedUNet}.
 */
export function fusedUNetForward(
  shape: UNetKernelShape,
  names: readonly string[],
  params: readonly tf.Tensor[],
  x: tf.Tensor3D,
  cNoise: tf.Tensor1D,
  save: boolean,
): { output: tf.Tensor3D; workspace?: tf.Tensor1D } {
  const result = tf.engine().runKernel(
    unetForwardKernelName,
    { x, cNoise, ...named(names, params) },
    { ...shape, save } satisfies UNetForwardAttrs as unknown as tf.NamedAttrMap,
  );
  if (!save) return { output: result as tf.Tensor3D };
  const [output, workspace] = result as tf.Tensor[];
  return { output: output as tf.Tensor3D, workspace: workspace as tf.Tensor1D };
}

/**
 * The backward kernel alone: from `dy`, the gradient of a loss with respect
 * to the output of {@link fusedUNetForward} (run with `save`, on the same
 * parameters and `cNoise`), the gradients of `x`, of `cNoise` and of every
 * parameter in the order of `names`.
 */
export function fusedUNetBackward(
  shape: UNetKernelShape,
  names: readonly string[],
  params: readonly tf.Tensor[],
  dy: tf.Tensor,
  cNoise: tf.Tensor1D,
  workspace: tf.Tensor1D,
): { dx: tf.Tensor3D; dCNoise: tf.Tensor1D; gradients: tf.Tensor[] } {
  const [dx, dCNoise, ...gradients] = tf.engine().runKernel(
    unetBackwardKernelName,
    { dy, cNoise, workspace, ...named(names, params) },
    { ...shape, names: [...names] } satisfies UNetBackwardAttrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  return { dx: dx as tf.Tensor3D, dCNoise: dCNoise as tf.Tensor1D, gradients };
}

/**
 * The U-Net `F(x, c_noise)` of diffusion/unet1d.ts, whose parameters `params`
 * are named as there (`names` in the order of its parameter list): `x` is
 * `[batch, length, rowWidth]`, `cNoise` `[batch]`; returns
 * `[batch, length, rowWidth]`, differentiable in every input. Under a
 * gradient tape the forward kernel keeps a workspace for the backward one;
 * outside one it keeps nothing. Call only where {@link fusedUNetAvailable}.
 */
export function fusedUNet(
  shape: UNetKernelShape,
  names: readonly string[],
  params: Record<string, tf.Tensor>,
  x: tf.Tensor3D,
  cNoise: tf.Tensor1D,
): tf.Tensor3D {
  const parameters = names.map((name) => params[name]);
  if (!tf.engine().isTapeOn()) {
    return fusedUNetForward(shape, names, parameters, x, cNoise, false).output;
  }
  // Parameters that are not variables (the EMA's debiased copies, slices)
  // would be freed before the backward pass unless saved; variables live on.
  const transient = parameters.filter((tensor) => !(tensor instanceof tf.Variable));
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const { output, workspace } = fusedUNetForward(shape, names, parameters, x, cNoise, true);
    // Saving clones: on the wasm sets `Identity` shares the buffer, so this copies nothing.
    save([cNoise, workspace!, ...transient]);
    return {
      value: output,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedCNoise, savedWorkspace, ...savedTransient] = saved;
        const live = parameters.map((tensor) =>
          tensor instanceof tf.Variable ? tensor : savedTransient.shift()!
        );
        const { dx, dCNoise, gradients } = fusedUNetBackward(
          shape,
          names,
          live,
          dy,
          savedCNoise as tf.Tensor1D,
          savedWorkspace as tf.Tensor1D,
        );
        return [dx, dCNoise, ...gradients];
      },
    };
  });
  return op(x, cNoise, ...parameters) as tf.Tensor3D;
}
