/**
 * Node built-ins loaded on first use. A static `import … from "node:crypto"` (or any other
 * `node:` module) makes Deno load its Node polyfills at start, ~15–50 ms of every kvh command;
 * a trace that hashes through libkvh_hash and counts bytes through libkvh_cpu never needs them.
 *
 * @module
 */

/** The built-ins kvh loads this way, by specifier. */
interface NodeBuiltins {
  "node:buffer": typeof import("node:buffer");
  "node:crypto": typeof import("node:crypto");
}

/**
 * Loads a Node built-in synchronously (the digests that need it are synchronous, so a dynamic
 * import cannot). Deno caches the module: a second call returns the same object.
 *
 * @param id The built-in's specifier.
 * @returns The module.
 *
 * @example Usage
 * ```ts
 * import { nodeBuiltin } from "./node_builtin.ts";
 * import assert from "node:assert/strict";
 *
 * const { createHash } = nodeBuiltin("node:crypto");
 * assert.equal(createHash("sha256").update("").digest("hex").length, 64);
 * ```
 */
export function nodeBuiltin<K extends keyof NodeBuiltins>(id: K): NodeBuiltins[K] {
  // `process` is Deno's global Node process object; getBuiltinModule is Node's synchronous
  // loader of built-ins.
  const process = (globalThis as unknown as {
    process: { getBuiltinModule(id: string): unknown };
  }).process;
  return process.getBuiltinModule(id) as NodeBuiltins[K];
}
