/**
 * How a window row stores an action. The PGD authors' code stores
 * `atanh(clip(a, ±0.999))`, so the model works on an unbounded scale and
 * `tanh` brings its samples back into [−1, 1]. Where many actions saturate
 * (about half of maze2d's), that stretches them to ±3.8, far from the rest;
 * a smaller clip softens the stretch, and `none` stores `a` itself and clips
 * samples to [−1, 1] on the way back.
 *
 * @module
 */

/** An action's encoding in window rows and its way back. */
export interface ActionTransform {
  /** `atanh` or `none`. */
  name: "atanh" | "none";
  /** `atanh` only: actions are clipped to ±this first, so the transform stays finite. */
  clip: number;
  /** The stored value of an action entry `a` in [−1, 1]. */
  encode(action: number): number;
  /** The action in [−1, 1] of a stored value. */
  decode(value: number): number;
  /** `d decode / d value` at a stored value: guidance's chain-rule factor. */
  slope(value: number): number;
}

/** The PGD authors' clip before `atanh`. */
export const defaultActionClip = 0.999;

/** An action transform by name; `clip` applies to `atanh`. */
export function actionTransform(
  name: "atanh" | "none",
  clip: number = defaultActionClip,
): ActionTransform {
  if (!(clip > 0 && clip < 1)) {
    throw new Error(`action transform: clip must lie in (0, 1), got ${clip}`);
  }
  if (name === "none") {
    return {
      name,
      clip,
      encode: (action) => action,
      decode: (value) => Math.min(1, Math.max(-1, value)),
      // Outside [−1, 1] the clip is flat: guidance does not push further out.
      slope: (value) => (Math.abs(value) <= 1 ? 1 : 0),
    };
  }
  return {
    name,
    clip,
    encode: (action) => Math.atanh(Math.min(clip, Math.max(-clip, action))),
    decode: Math.tanh,
    slope: (value) => {
      const action = Math.tanh(value);
      return 1 - action * action;
    },
  };
}

/** The authors' encoding, `atanh(clip(a, ±0.999))`. */
export const defaultActionTransform: ActionTransform = actionTransform("atanh");
