/**
 * Errors the harness reports to a user as one clear line: they name the
 * file, key, field or plugin at fault and what was expected.
 *
 * @module
 */
import type { z } from "zod";

/** An error in user input (config, flags, plugin, file) with a message meant for a person. */
export class UserError extends Error {
  /** Makes an error whose message is shown as is. */
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/** One line per zod issue: `where.path: message`. */
export function formatZodIssues(where: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length ? `${where}.${issue.path.join(".")}` : where;
      if (issue.code === "unrecognized_keys") {
        const keys = (issue as { keys: string[] }).keys;
        return keys.map((key) => `${path}: unknown key '${key}'`).join("\n");
      }
      return `${path}: ${issue.message}`;
    })
    .join("\n");
}

/**
 * A plugin's invalid options as text: one line per problem, naming
 * `<plugin> options.<key path>` and what was expected (unknown keys by name),
 * e.g. `td3bc options.alpha: Invalid input: expected number, received string`.
 */
export function formatOptionErrors(pluginName: string, error: z.ZodError): string {
  return formatZodIssues(`${pluginName} options`, error);
}
