/**
 * The worker process of the grid: the core's worker loop with the built-in plugins.
 *
 * @module
 */
import { serveWorker } from "../core/worker.ts";
import { builtinPlugins } from "../plugins/mod.ts";

await serveWorker(builtinPlugins);
Deno.exit(0);
