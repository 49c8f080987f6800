/**
 * The result store: one folder per run, one JSON file per finished cell,
 * written atomically, so an interrupted grid resumes where it stopped and
 * folders from several machines combine by copying.
 *
 * @module
 */
import { join } from "./paths.ts";
import { readJsonIfExists, writeJsonAtomic } from "./files.ts";
import { type CellKey, cellPath, type CellResult, cellResultSchema } from "./results.ts";

/** Reads a run folder's cell results and writes new ones. */
export class ResultStore {
  /** The run folder. */
  readonly root: string;

  /** A store over the run folder `root` (created on first write). */
  constructor(root: string) {
    this.root = root;
  }

  /** Absolute path of a cell's JSON. */
  pathOf(cell: CellKey): string {
    return join(this.root, cellPath(cell));
  }

  /** A cell's stored result, or `undefined` if it has none (or an unreadable one). */
  async read(cell: CellKey): Promise<CellResult | undefined> {
    let raw: unknown;
    try {
      raw = await readJsonIfExists(this.pathOf(cell));
    } catch {
      return undefined;
    }
    if (raw === undefined) return undefined;
    const parsed = cellResultSchema.safeParse(raw);
    return parsed.success ? parsed.data : undefined;
  }

  /** Whether a cell has a stored result made with the same config hash. */
  async isFinished(cell: CellKey, configHash: string): Promise<boolean> {
    const result = await this.read(cell);
    return result?.configHash === configHash;
  }

  /** Stores a cell's result atomically. */
  async write(result: CellResult): Promise<void> {
    await writeJsonAtomic(this.pathOf(result.cell), cellResultSchema.parse(result));
  }

  /** Every readable cell result in the folder. */
  async readAll(): Promise<CellResult[]> {
    const results: CellResult[] = [];
    const walk = async (folder: string): Promise<void> => {
      let entries: Deno.DirEntry[];
      try {
        entries = [];
        for await (const entry of Deno.readDir(folder)) entries.push(entry);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return;
        throw error;
      }
      for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        const path = join(folder, entry.name);
        if (entry.isDirectory) await walk(path);
        else if (entry.name.endsWith(".json")) {
          const raw = await readJsonIfExists(path).catch(() => undefined);
          const parsed = cellResultSchema.safeParse(raw);
          if (parsed.success) results.push(parsed.data);
        }
      }
    };
    await walk(join(this.root, "cells"));
    return results;
  }
}
