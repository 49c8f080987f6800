/**
 * Path helpers over `node:path` and `node:url`, kept in one place so a swap
 * of library stays local.
 *
 * @module
 */
import * as nodePath from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Absolute path of `parts` resolved against the working directory. */
export function resolve(...parts: string[]): string {
  return nodePath.resolve(...parts);
}

/** Joins path segments. */
export function join(...parts: string[]): string {
  return nodePath.join(...parts);
}

/** The folder part of a path. */
export function dirname(path: string): string {
  return nodePath.dirname(path);
}

/** `path` relative to `from`. */
export function relative(from: string, path: string): string {
  return nodePath.relative(from, path);
}

/** A `file:` URL for an absolute path. */
export function toFileUrl(path: string): URL {
  return pathToFileURL(path);
}

/** The path of a `file:` URL. */
export function fromFileUrl(url: URL | string): string {
  return fileURLToPath(url);
}
