/**
 * Typed errors of the tracer (DESIGN.md §5): the ones a caller branches on. Each carries the
 * handle or field it concerns, never buffer contents.
 *
 * @module
 */
import { EXIT_POLICY, EXIT_USAGE, KvhError } from "../errors.ts";
import type { BufferState, PolicyName } from "./types.ts";

/**
 * The handle was never issued by this tracer, or it was retired (freed and handed on, or
 * released).
 *
 * @example Usage
 * ```ts
 * import { UnknownHandleError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new UnknownHandleError("0123");
 * assert.equal(error.code, "unknown_handle");
 * ```
 */
export class UnknownHandleError extends KvhError {
  /** The handle that was not found. */
  readonly handle: string;

  /**
   * Creates the error.
   *
   * @param handle The handle that was not found.
   */
  constructor(handle: string) {
    super("unknown_handle", `Unknown handle: ${handle.slice(0, 64)}`, { exitCode: EXIT_USAGE });
    this.name = "UnknownHandleError";
    this.handle = handle;
  }
}

/**
 * The operation is not allowed in the buffer's current state (e.g. use after quarantine).
 *
 * @example Usage
 * ```ts
 * import { InvalidStateError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new InvalidStateError("0123", "quarantined", "sanitize");
 * assert.equal(error.state, "quarantined");
 * ```
 */
export class InvalidStateError extends KvhError {
  /** The buffer's handle. */
  readonly handle: string;
  /** The state the buffer was in. */
  readonly state: BufferState | "busy";
  /** The operation that was refused. */
  readonly operation: string;

  /**
   * Creates the error.
   *
   * @param handle The buffer's handle.
   * @param state The state the buffer was in (`busy` while another operation runs on it).
   * @param operation The refused operation.
   */
  constructor(handle: string, state: BufferState | "busy", operation: string) {
    super("invalid_state", `Cannot ${operation} buffer ${handle}: it is ${state}`, {
      exitCode: EXIT_USAGE,
    });
    this.name = "InvalidStateError";
    this.handle = handle;
    this.state = state;
    this.operation = operation;
  }
}

/**
 * A policy of DESIGN.md §5 was violated (TTL, max reuse, cross-tenant hand-off); the buffer is
 * quarantined.
 *
 * @example Usage
 * ```ts
 * import { PolicyViolationError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new PolicyViolationError("0123", "ttl", "ttl_expired");
 * assert.equal(error.exitCode, 2);
 * ```
 */
export class PolicyViolationError extends KvhError {
  /** The buffer's handle. */
  readonly handle: string;
  /** The violated policy. */
  readonly policy: PolicyName;
  /** The quarantine reason recorded in the log. */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param handle The buffer's handle.
   * @param policy The violated policy.
   * @param reason The quarantine reason.
   */
  constructor(handle: string, policy: PolicyName, reason: string) {
    super("policy_violation", `Quarantined buffer ${handle}: ${reason}`, {
      exitCode: EXIT_POLICY,
    });
    this.name = "PolicyViolationError";
    this.handle = handle;
    this.policy = policy;
    this.reason = reason;
  }
}

/**
 * A free or hand-off needed a verified scrub whose coverage reaches the threshold, and the
 * buffer's did not; the buffer is quarantined.
 *
 * @example Usage
 * ```ts
 * import { CoverageBelowThresholdError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new CoverageBelowThresholdError("0123", 0, 99.9);
 * assert.equal(error.coveragePct, 0);
 * ```
 */
export class CoverageBelowThresholdError extends KvhError {
  /** The buffer's handle. */
  readonly handle: string;
  /** The buffer's verified coverage in percent (0 when unverified or never scrubbed). */
  readonly coveragePct: number;
  /** The required coverage in percent. */
  readonly thresholdPct: number;

  /**
   * Creates the error.
   *
   * @param handle The buffer's handle.
   * @param coveragePct Verified coverage in percent.
   * @param thresholdPct Required coverage in percent.
   */
  constructor(handle: string, coveragePct: number, thresholdPct: number) {
    super(
      "coverage_below_threshold",
      `Quarantined buffer ${handle}: verified coverage ${coveragePct}% is below ${thresholdPct}%`,
      { exitCode: EXIT_POLICY },
    );
    this.name = "CoverageBelowThresholdError";
    this.handle = handle;
    this.coveragePct = coveragePct;
    this.thresholdPct = thresholdPct;
  }
}

/**
 * An identifier (tenant, request, model) is not 1–256 characters of `[A-Za-z0-9._:@-]`, or
 * contains `..`; it never reaches the log.
 *
 * @example Usage
 * ```ts
 * import { InvalidIdentifierError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new InvalidIdentifierError("tenant_id", "contains ..");
 * assert.equal(error.field, "tenant_id");
 * ```
 */
export class InvalidIdentifierError extends KvhError {
  /** Which identifier was rejected. */
  readonly field: string;

  /**
   * Creates the error. The rejected value is not echoed: it may hold control characters.
   *
   * @param field Which identifier was rejected.
   * @param why What was wrong with it.
   */
  constructor(field: string, why: string) {
    super("invalid_identifier", `Invalid ${field}: ${why}`, { exitCode: EXIT_USAGE });
    this.name = "InvalidIdentifierError";
    this.field = field;
  }
}

/**
 * The forensic log refused an event, so the operation failed and the buffer is quarantined
 * (fail-secure, DESIGN.md §4–§5).
 *
 * @example Usage
 * ```ts
 * import { AuditEmitError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new AuditEmitError("free", new Error("disk full"));
 * assert.equal(error.code, "audit_emit_failed");
 * ```
 */
export class AuditEmitError extends KvhError {
  /** The event that could not be written. */
  readonly event: string;

  /**
   * Creates the error.
   *
   * @param event The event that could not be written.
   * @param cause The sink's error.
   */
  constructor(event: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
    super("audit_emit_failed", `Cannot write ${event} event to the forensic log: ${why}`, {
      cause,
      exitCode: EXIT_USAGE,
    });
    this.name = "AuditEmitError";
    this.event = event;
  }
}
