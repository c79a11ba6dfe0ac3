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

/**
 * Every stable code a {@linkcode KvhError} carries, one union for all of kvh (as
 * `VerifyReason` is for verify outcomes), so callers and tests branch on a checked name
 * and a new code is added here, where its neighbours show whether one already fits.
 */
export type KvhErrorCode =
  // Command line and configuration (cli/).
  | "flag_invalid"
  | "env_invalid"
  | "cwd_unusable"
  | "input_not_file"
  | "input_symlink"
  | "input_unreadable"
  | "secret_empty"
  | "secret_not_file"
  | "secret_permissions"
  | "secret_symlink"
  | "secret_unreadable"
  // Outputs (lib/io, cli/_common.ts).
  | "output_is_evidence"
  | "output_unwritable"
  // The forensic log (lib/forensic).
  | "log_changed"
  | "log_corrupt"
  | "log_dir_insecure"
  | "log_format"
  | "log_key_missing"
  // Forward-secure MACs (lib/forensic/epoch_key.ts).
  | "keyring_malformed"
  | "mac_state_invalid"
  | "mac_state_mismatch"
  | "mac_state_missing"
  | "log_locked"
  | "log_not_file"
  | "log_symlink"
  | "log_unreadable"
  | "log_unwritable"
  | "audit_emit_failed"
  // Retention (lib/retention).
  | "archive_exists"
  | "archive_is_log_dir"
  | "archive_mismatch"
  | "archive_same_file"
  | "archive_unreadable"
  | "prune_move_failed"
  | "prune_no_active"
  // Checkpoints, keys and proofs (lib/transparency).
  | "checkpoint_failed"
  | "checkpoint_fork"
  | "checkpoint_mismatch"
  | "checkpoint_no_log_id"
  | "checkpoint_symlink"
  | "checkpoint_truncated"
  | "checkpoint_unreadable"
  | "checkpoint_unverifiable"
  | "checkpoint_unwritable"
  | "key_exists"
  | "key_malformed"
  | "key_name_invalid"
  | "key_unwritable"
  | "note_bad_signature"
  | "note_malformed"
  | "proof_malformed"
  | "proof_unavailable"
  | "tree_unavailable"
  // The tracer and the workload (lib/tracer, lib/workload).
  | "coverage_below_threshold"
  | "invalid_identifier"
  | "invalid_state"
  | "policy_violation"
  | "unknown_handle"
  | "workload_malformed"
  | "workload_unreadable"
  // Devices (lib/sanitize, ffi/).
  | "blocks_invalid"
  | "device_error"
  | "device_out_of_memory"
  | "device_unavailable"
  // The sidecar listener (cli/_trace_listen.ts).
  | "listen_failed"
  | "listen_in_use"
  | "listen_unsafe"
  // The gate and its inputs (lib/gate).
  | "evidence_exists"
  | "evidence_name_invalid"
  | "evidence_write_failed"
  | "gate_metric_missing"
  | "gate_no_input"
  | "gate_value_invalid"
  | "metrics_malformed"
  | "metrics_unreadable"
  | "policy_invalid"
  | "policy_unreadable"
  | "prometheus_error"
  | "prometheus_no_series"
  | "prometheus_series_missing"
  | "prometheus_targets_down"
  | "prometheus_unreachable"
  | "selector_invalid"
  | "test_report_unreadable";

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
  readonly code: KvhErrorCode;
  /** Exit code the CLI uses for this failure. */
  readonly exitCode: 1 | 2;

  /**
   * Creates an error.
   *
   * @param code Stable identifier of the failure.
   * @param message One-line, human-readable message.
   * @param options Cause and exit code.
   */
  constructor(code: KvhErrorCode, message: string, options: KvhErrorOptions = {}) {
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
