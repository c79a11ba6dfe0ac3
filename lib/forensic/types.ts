/**
 * Public data shapes of the forensic log (DESIGN.md §4) and of its verification report
 * (DESIGN.md §3, `verify`).
 *
 * @module
 */

/** The 64-zero `prev` of the first record ever written in format v2 (DESIGN.md §4). */
export const GENESIS_V2: string = "0".repeat(64);

/** Fields of a format-v2 record every record carries; event fields sit beside them. */
export interface RecordV2 {
  /** Format version, always 2. */
  v: 2;
  /** Position in the whole history: 0, 1, 2 … across rotated files. */
  seq: number;
  /** RFC 3339 UTC timestamp with milliseconds. */
  ts: string;
  /** Event name, e.g. `allocate`, `rotate`, `prune`. */
  event: string;
  /** `hash` of the previous record, or {@linkcode GENESIS_V2}. */
  prev: string;
  /** Lowercase hex SHA-256 of the JCS form of the record without `hash` and `mac`. */
  hash: string;
  /** Lowercase hex HMAC-SHA256 over the same bytes, when the log has a key. */
  mac?: string;
  /** Event fields. */
  [field: string]: unknown;
}

/** The head of a chain: what an operator anchors on. */
export interface ChainHead {
  /** `seq` of the last record (v1 logs: its 0-based index over the verified history). */
  seq: number;
  /** `hash` (v1: `curr_hash`) of the last record. */
  hash: string;
}

/**
 * Why verification failed, exactly the reasons of DESIGN.md §3. Per record the checks run in
 * the order malformed_json, unknown_version, hash_mismatch, mac_missing, mac_mismatch,
 * chain_break, seq_gap.
 */
export type VerifyReason =
  | "malformed_json"
  | "hash_mismatch"
  | "mac_mismatch"
  | "mac_missing"
  | "chain_break"
  | "seq_gap"
  | "linkage_mismatch"
  | "torn_tail"
  | "truncated"
  | "unknown_version"
  /** Forward-secure MAC: an epoch skipped (or one far beyond what a log can reach). */
  | "epoch_gap"
  /** Forward-secure MAC: an epoch going back, or a record without epoch after epochs began. */
  | "epoch_reset"
  /** Forward-secure MAC: the key id changed without a rekey record naming it. */
  | "key_id_mismatch"
  /** Forward-secure MAC: a key id neither the key nor the keyring holds. */
  | "unknown_key";

/** The first failure verification met. */
export interface VerifyFailure {
  /** Base name of the file the failure is in. */
  file: string;
  /** 1-based physical line number; 0 when the failure concerns the file as a whole. */
  line: number;
  /** Machine-readable reason. */
  reason: VerifyReason;
  /** One human-readable sentence: what was expected and what was found. */
  detail: string;
}

/** Result of verifying a log and the rotated files it links back to. */
export interface VerifyReport {
  /** True when every record of every file verified and the files link up. */
  ok: boolean;
  /** Number of files verified. */
  files: number;
  /** Number of records verified (before the failure, if any). */
  records: number;
  /** Last verified record, or null for an empty log. */
  head: ChainHead | null;
  /** Whether MACs were checked (a key was given). */
  mac_checked: boolean;
  /** The first failure, or null. */
  failure: VerifyFailure | null;
}

/** Options of one append to the forensic log. */
export interface AppendOptions {
  /**
   * Fsync before the append resolves. The caller says which of its events are critical (the
   * tracer: quarantine, leak detected; prune: its record); the writer's own `rotate` and
   * `recovery` records always are.
   *
   * @default {false}
   */
  critical?: boolean;
}

/**
 * Where the tracer and the other writers send lifecycle events: the forensic log, or a test
 * double. An append that fails rejects, and the caller fails the operation (fail-secure).
 */
export interface AuditSink {
  /**
   * Appends one event. Resolves once the record is durable as the durability policy promises
   * (fsynced for critical events, group-committed otherwise).
   *
   * @param event Event name.
   * @param fields Event fields: identifiers and digests, never buffer contents.
   * @param options Durability of this append.
   * @returns The record as written.
   */
  append(
    event: string,
    fields: Record<string, unknown>,
    options?: AppendOptions,
  ): Promise<RecordV2>;
}
