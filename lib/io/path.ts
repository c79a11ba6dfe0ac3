/**
 * POSIX path operations, with the results of `node:path`'s POSIX functions. kvh runs where
 * paths are POSIX (it maps `/dev/shm` pools and loads `.so` helpers); `node:path` would cost
 * every kvh start ~15 ms, because importing any Node built-in makes Deno load its polyfills.
 *
 * @module
 */

/** The path separator. */
export const sep = "/";

const SLASH = 0x2f;

/**
 * Whether `path` is absolute.
 *
 * @example Usage
 * ```ts
 * import { isAbsolute } from "./path.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isAbsolute("/var/log"), true);
 * assert.equal(isAbsolute("log"), false);
 * ```
 *
 * @param path The path.
 * @returns Whether it starts at the root.
 */
export function isAbsolute(path: string): boolean {
  return path.charCodeAt(0) === SLASH;
}

/**
 * The segments of `path` with `.` and empty ones dropped and `..` applied; a `..` that would
 * climb above the start is kept when `aboveStart` allows it, else dropped (as above the root).
 */
function resolveSegments(path: string, aboveStart: boolean): string[] {
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment !== "..") segments.push(segment);
    else if (segments.length > 0 && segments.at(-1) !== "..") segments.pop();
    else if (aboveStart) segments.push("..");
  }
  return segments;
}

/**
 * `path` with `.` and `..` segments applied and repeated slashes collapsed; a trailing slash is
 * kept.
 *
 * @example Usage
 * ```ts
 * import { normalize } from "./path.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(normalize("/var//log/./kvh/../kv_cache.log"), "/var/log/kv_cache.log");
 * assert.equal(normalize("a/.."), ".");
 * ```
 *
 * @param path The path.
 * @returns The normal form; `.` for an empty result.
 */
export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = isAbsolute(path);
  const trailing = path.charCodeAt(path.length - 1) === SLASH;
  const body = resolveSegments(path, !absolute).join("/");
  if (body === "") return absolute ? "/" : trailing ? "./" : ".";
  return (absolute ? "/" : "") + body + (trailing ? "/" : "");
}

/**
 * Joins the parts with `/` and normalises the result; empty parts are skipped.
 *
 * @example Usage
 * ```ts
 * import { join } from "./path.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(join("/var/log/kvh", "kv_cache.log"), "/var/log/kvh/kv_cache.log");
 * assert.equal(join("logs", "..", "metrics.prom"), "metrics.prom");
 * ```
 *
 * @param parts The parts.
 * @returns The joined path; `.` when every part is empty.
 */
export function join(...parts: string[]): string {
  const joined = parts.filter((part) => part !== "").join("/");
  return joined === "" ? "." : normalize(joined);
}

/**
 * The absolute path of `parts` read from the right until one is absolute, the others relative
 * to it and the first relative to the working directory; normalised, without a trailing slash.
 *
 * @example Usage
 * ```ts
 * import { resolve } from "./path.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolve("/var/log", "kvh/", "./kv_cache.log"), "/var/log/kvh/kv_cache.log");
 * assert.equal(resolve("/tmp", "/var/log"), "/var/log");
 * ```
 *
 * @param parts The parts.
 * @returns The absolute path.
 */
export function resolve(...parts: string[]): string {
  let resolved = "";
  for (let i = parts.length - 1; i >= 0 && !isAbsolute(resolved); i--) {
    if (parts[i] !== "") resolved = resolved === "" ? parts[i]! : `${parts[i]}/${resolved}`;
  }
  if (!isAbsolute(resolved)) resolved = `${Deno.cwd()}/${resolved}`;
  return "/" + resolveSegments(resolved, false).join("/");
}

/**
 * The path from `from` to `to`, both resolved first.
 *
 * @example Usage
 * ```ts
 * import { relative } from "./path.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(relative("/dev/shm", "/dev/shm/pool-0"), "pool-0");
 * assert.equal(relative("/dev/shm/a/b", "/dev/shm/pool-1"), "../../pool-1");
 * ```
 *
 * @param from Where the path starts.
 * @param to Where it leads.
 * @returns The relative path; empty when both resolve to the same path.
 */
export function relative(from: string, to: string): string {
  const fromSegments = resolveSegments(resolve(from), false);
  const toSegments = resolveSegments(resolve(to), false);
  let common = 0;
  while (
    common < fromSegments.length && common < toSegments.length &&
    fromSegments[common] === toSegments[common]
  ) common++;
  const up = Array<string>(fromSegments.length - common).fill("..");
  return [...up, ...toSegments.slice(common)].join("/");
}

/**
 * The directory part of `path`: everything before its last segment, trailing slashes ignored.
 *
 * @example Usage
 * ```ts
 * import { dirname } from "./path.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(dirname("/var/log/kvh/kv_cache.log"), "/var/log/kvh");
 * assert.equal(dirname("kv_cache.log"), ".");
 * ```
 *
 * @param path The path.
 * @returns The directory: `/` for a segment under the root, `.` for a bare name.
 */
export function dirname(path: string): string {
  if (path === "") return ".";
  let end = path.length - 1;
  while (end > 0 && path.charCodeAt(end) === SLASH) end--;
  while (end > 0 && path.charCodeAt(end) !== SLASH) end--;
  if (end <= 0) return isAbsolute(path) ? "/" : ".";
  // Only the slashes that separate the last segment are dropped, as node:path does.
  if (end === 1 && isAbsolute(path)) return "//";
  return path.slice(0, end);
}

/**
 * The last segment of `path`, trailing slashes ignored.
 *
 * @example Usage
 * ```ts
 * import { basename } from "./path.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(basename("/var/log/kvh/kv_cache.log"), "kv_cache.log");
 * assert.equal(basename("/var/log/kvh/"), "kvh");
 * ```
 *
 * @param path The path.
 * @returns The segment; empty for the root or an empty path.
 */
export function basename(path: string): string {
  let end = path.length;
  while (end > 0 && path.charCodeAt(end - 1) === SLASH) end--;
  return path.slice(path.lastIndexOf("/", end - 1) + 1, end);
}
