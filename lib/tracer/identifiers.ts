/**
 * Identifier rules of DESIGN.md §5: tenant, request and model identifiers are checked before
 * they reach the log or a path.
 *
 * @module
 */
import { InvalidIdentifierError } from "./errors.ts";
import { toHex } from "../forensic/digest.ts";

/** Longest identifier accepted. */
export const MAX_IDENTIFIER_LENGTH = 256;

const IDENTIFIER = /^[A-Za-z0-9._:@-]+$/;

/**
 * Checks one identifier and returns it unchanged.
 *
 * @param field The identifier's name, used in the error (`tenant_id`, …).
 * @param value The value to check.
 * @returns `value`, when it is 1–256 characters of `[A-Za-z0-9._:@-]` without `..`.
 * @throws {InvalidIdentifierError} Otherwise.
 *
 * @example Usage
 * ```ts
 * import { validateIdentifier } from "./identifiers.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(validateIdentifier("tenant_id", "acme-corp"), "acme-corp");
 * assert.throws(() => validateIdentifier("tenant_id", "../x"));
 * ```
 */
export function validateIdentifier(field: string, value: unknown): string {
  const problem = identifierProblem(value);
  if (problem !== undefined) throw new InvalidIdentifierError(field, problem);
  return value as string;
}

/**
 * Whether `value` is an identifier {@linkcode validateIdentifier} accepts, without building an
 * error: for paths that check many values and only report the rare bad one.
 *
 * @param value The value to check.
 * @returns True when `validateIdentifier` would return it.
 *
 * @example Usage
 * ```ts
 * import { isValidIdentifier } from "./identifiers.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isValidIdentifier("acme-corp"), true);
 * assert.equal(isValidIdentifier("a..b"), false);
 * ```
 */
export function isValidIdentifier(value: unknown): value is string {
  return identifierProblem(value) === undefined;
}

function identifierProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return `expected a string, got ${typeof value}`;
  if (value.length === 0) return "it is empty";
  if (value.length > MAX_IDENTIFIER_LENGTH) {
    return `${value.length} characters exceed the limit of ${MAX_IDENTIFIER_LENGTH}`;
  }
  if (!IDENTIFIER.test(value)) return "only A-Z a-z 0-9 . _ : @ - are allowed";
  if (value.includes("..")) return "it contains ..";
  return undefined;
}

/** Random bytes for handles, drawn 4 KiB at a time: one getRandomValues call per 256 handles. */
const RANDOM_POOL = new Uint8Array(4096);
let randomAt = RANDOM_POOL.length;

/**
 * A new unguessable handle: 128 random bits as 32 lowercase hex digits. The tracer's buffers
 * and the sidecar's block sets are named by these.
 *
 * @returns The handle.
 *
 * @example Usage
 * ```ts
 * import { newHandle } from "./identifiers.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(newHandle(), /^[0-9a-f]{32}$/);
 * assert.notEqual(newHandle(), newHandle());
 * ```
 */
export function newHandle(): string {
  if (randomAt === RANDOM_POOL.length) {
    crypto.getRandomValues(RANDOM_POOL);
    randomAt = 0;
  }
  const handle = toHex(RANDOM_POOL.subarray(randomAt, randomAt + 16));
  randomAt += 16;
  return handle;
}
