/**
 * The checks both agents' stacks make of what they are given: members that
 * can share one stacked computation, one batch per member, and member
 * indices. Messages name the agent.
 *
 * @module
 */
import type { AgentContext } from "../../core/contracts/agent.ts";
import type { TransitionBatch } from "../../core/types.ts";

/**
 * Checks that the members agree in dimensions and preset (their seeds may
 * differ) and returns the first, whose sizes the stack takes.
 */
export function checkStackContexts(
  agent: string,
  contexts: readonly AgentContext[],
): AgentContext {
  if (contexts.length === 0) throw new Error(`${agent} stack: no members`);
  const { observationDim, actionDim, preset } = contexts[0];
  for (const context of contexts) {
    if (
      context.observationDim !== observationDim || context.actionDim !== actionDim ||
      context.preset !== preset
    ) {
      throw new Error(`${agent} stack: members differ in dimensions or preset`);
    }
  }
  return contexts[0];
}

/** Checks one batch per member, all of one size, and returns that size. */
export function checkStackBatches(
  agent: string,
  batches: readonly TransitionBatch[],
  members: number,
): number {
  if (batches.length !== members) {
    throw new Error(`${agent} stack: ${batches.length} batches for ${members} members`);
  }
  const count = batches[0].size;
  if (batches.some((batch) => batch.size !== count)) {
    throw new Error(`${agent} stack: the members' batches differ in size`);
  }
  return count;
}

/** Checks that `index` names a member of a stack of `size`. */
export function checkStackMember(agent: string, index: number, size: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= size) {
    throw new Error(`${agent} stack: member ${index} does not exist (stack of ${size})`);
  }
}
