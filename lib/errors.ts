/**
 * The error type every kvh area raises when a caller has to branch on what went wrong.
 *
 * Exit codes follow DESIGN.md §3: 1 for usage and operational errors (unreadable or malformed
 * input, I/O failure, missing device), 2 for policy or integrity failures.
 *
 * @module
 */

/** Exit code of a usage or operational error (DESIGN.md §3). */
export const EXIT_USAGE = 1;
/** Exit code of a policy or integrity failure (DESIGN.md §3). */
export const EXIT_POLICY = 2;

/** Options of {@linkcode KvhError}. */
export interface KvhErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /**
   * Process exit code the CLI maps this error to.
   *
   * @default {1}
   */
  exitCode?: 1 | 2;
}

/**
 * Base class of kvh's typed errors: a stable machine-readable `code` and the exit code the CLI
 * maps it to. Messages never contain secrets or buffer bytes.
 *
 * @example Usage
 * ```ts
 * import { KvhError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new KvhError("metrics_malformed", "Cannot read metrics: metrics.json is empty");
 * assert.equal(error.exitCode, 1);
 * assert.equal(error.code, "metrics_malformed");
 * ```
 */
export class KvhError extends Error {
  /** Stable identifier of the failure, e.g. `log_locked`. */
  readonly code: string;
  /** Exit code the CLI uses for this failure. */
  readonly exitCode: 1 | 2;

  /**
   * Creates an error.
   *
   * @param code Stable identifier of the failure.
   * @param message One-line, human-readable message.
   * @param options Cause and exit code.
   */
  constructor(code: string, message: string, options: KvhErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "KvhError";
    this.code = code;
    this.exitCode = options.exitCode ?? EXIT_USAGE;
  }
}

/**
 * A short reason for an I/O error, e.g. `not found` or `permission denied`, for one-line
 * messages that name the file themselves.
 *
 * @param error What a `Deno` file operation threw.
 * @returns The reason, without the path.
 */
export function describeIoError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  if (error instanceof Deno.errors.AlreadyExists) return "already exists";
  if (error instanceof Deno.errors.NotCapable) return "kvh was not granted access to it";
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.message;
  return String(error);
}
