/**
 * TF.js itself, imported once for the compute modules (the full package, so
 * that gradients are registered).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

export { tf };
