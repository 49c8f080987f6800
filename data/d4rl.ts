/**
 * The D4RL file format now lives in the core (`core/d4rl.ts`);
 * this re-export keeps older import paths working until they move.
 *
 * @module
 */
export * from "../core/d4rl.ts";
