/**
 * Identifier rules of DESIGN.md §5: tenant, request and model identifiers are checked before
 * they reach the log or a path.
 *
 * @module
 */
import { InvalidIdentifierError } from "./errors.ts";

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
  if (typeof value !== "string") {
    throw new InvalidIdentifierError(field, `expected a string, got ${typeof value}`);
  }
  if (value.length === 0) throw new InvalidIdentifierError(field, "it is empty");
  if (value.length > MAX_IDENTIFIER_LENGTH) {
    throw new InvalidIdentifierError(
      field,
      `${value.length} characters exceed the limit of ${MAX_IDENTIFIER_LENGTH}`,
    );
  }
  if (!IDENTIFIER.test(value)) {
    throw new InvalidIdentifierError(field, "only A-Z a-z 0-9 . _ : @ - are allowed");
  }
  if (value.includes("..")) throw new InvalidIdentifierError(field, "it contains ..");
  return value;
}
