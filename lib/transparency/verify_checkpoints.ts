/**
 * Checks a forensic log against signed checkpoints (`kvh verify --checkpoint`), and makes and
 * checks inclusion proofs of single records (`--prove`, `--check-proof`).
 *
 * Per checkpoint, in order: the signature (`bad_signature`; `malformed_checkpoint` for a note
 * that is not one), the origin (`origin_mismatch`: a checkpoint of another log), records of two
 * logs in one chain (`log_id_mismatch`), fewer records than the checkpoint covers (`truncated`,
 * or `rollback` when the log still matches an older checkpoint given with it), and a different
 * root for the checkpoint's size (`fork`). Two checkpoints must also be consistent (RFC 9162
 * §2.1.4): a consistency proof between them is made from the log and checked.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { describeIoError, KvhError } from "../errors.ts";
import { verifyLog, type VerifyLogOptions, type VerifyLogReport } from "../forensic/verify.ts";
import { type Checkpoint, logOrigin, openCheckpoint } from "./checkpoint.ts";
import { type LogTree, readLogTree } from "./log_tree.ts";
import { hashEquals } from "./merkle.ts";
import { MemoryTree } from "./memory_tree.ts";
import { NoteError, type NoteVerifier } from "./note.ts";
import { consistencyProof, inclusionProof, verifyConsistency, verifyInclusion } from "./proof.ts";

/** Why a log does not match its checkpoints. */
export type CheckpointReason =
  | "bad_signature"
  | "malformed_checkpoint"
  | "origin_mismatch"
  | "log_id_mismatch"
  | "truncated"
  | "rollback"
  | "fork";

/** A signed checkpoint as given: where it came from and its text. */
export interface CheckpointInput {
  /** Its file name, for messages. */
  name: string;
  /** The signed note. */
  note: string;
}

/** The first failure of a checkpoint check. */
export interface CheckpointFailure {
  /** Which checkpoint. */
  checkpoint: string;
  /** Machine-readable reason. */
  reason: CheckpointReason;
  /** What was expected and what was found. */
  detail: string;
}

/** Result of {@linkcode verifyCheckpoints}. */
export interface CheckpointReport {
  /** True when every checkpoint verified and matches the log. */
  ok: boolean;
  /** Records the log's tree holds (pruned ones included). */
  log_size: number;
  /** Origin of the log, `kvh/<log id>`, when it has an id. */
  origin: string | null;
  /** The checkpoints that verified: name, size and base64 root. */
  checkpoints: { name: string; size: number; root: string }[];
  /** The consistency proof between two checkpoints (base64), when two were given. */
  consistency_proof: string[] | null;
  /** The first failure, or null. */
  failure: CheckpointFailure | null;
}

const b64 = (hash: Uint8Array) => Buffer.from(hash).toString("base64");

class Failed {
  constructor(readonly failure: CheckpointFailure) {}
}

function fail(checkpoint: string, reason: CheckpointReason, detail: string): Failed {
  return new Failed({ checkpoint, reason, detail });
}

/**
 * Checks the log at `path` against one or two signed checkpoints. Run the chain check
 * (`verifyLog`) first: this reads the log's records, trusting their form.
 *
 * @param path Path of the active file; a missing one counts as an empty log.
 * @param inputs One or two signed checkpoints.
 * @param verifier The log's public key.
 * @returns The report; failures are data, never thrown.
 * @throws {KvhError} When the log cannot be read, or a checkpoint covers records pruned beyond
 * what the log's compact ranges can rebuild (exit 1: the check could not be done).
 */
export async function verifyCheckpoints(
  path: string,
  inputs: readonly CheckpointInput[],
  verifier: NoteVerifier,
): Promise<CheckpointReport> {
  if (inputs.length < 1 || inputs.length > 2) {
    throw new RangeError(`Cannot verify ${inputs.length} checkpoints: give one or two`);
  }
  return check(await readTreeOrEmpty(path), inputs, verifier);
}

function check(
  log: LogTree,
  inputs: readonly CheckpointInput[],
  verifier: NoteVerifier,
): CheckpointReport {
  const report: CheckpointReport = {
    ok: false,
    log_size: log.tree.size,
    origin: log.logId === undefined ? null : logOrigin(log.logId),
    checkpoints: [],
    consistency_proof: null,
    failure: null,
  };
  try {
    const opened = inputs.map((input) => ({ name: input.name, ...open(input, verifier) }));
    for (const { name, origin } of opened) {
      if (report.origin !== null && origin !== report.origin) {
        throw fail(
          name,
          "origin_mismatch",
          `Checkpoint is for ${origin}, the log is ${report.origin}`,
        );
      }
    }
    if (log.conflict !== undefined) {
      const { file, line, found } = log.conflict;
      throw fail(
        opened[0]!.name,
        "log_id_mismatch",
        `${file} line ${line} belongs to log ${found}, not ${report.origin}: two logs spliced`,
      );
    }
    const sorted = [...opened].sort((a, b) => a.size - b.size);
    if (sorted.length === 2) report.consistency_proof = checkPair(sorted[0]!, sorted[1]!, log.tree);
    for (const checkpoint of sorted) {
      if (checkpoint.size > log.tree.size) {
        const older = sorted[0] !== checkpoint && matches(sorted[0]!, log.tree);
        throw fail(
          checkpoint.name,
          older ? "rollback" : "truncated",
          older
            ? `The log holds ${log.tree.size} records and matches the checkpoint of ${
              sorted[0]!.size
            }, not this one of ${checkpoint.size}: rolled back`
            : `The log holds ${log.tree.size} records, the checkpoint covers ${checkpoint.size}`,
        );
      }
      if (!matches(checkpoint, log.tree)) {
        throw fail(
          checkpoint.name,
          "fork",
          `The log's first ${checkpoint.size} records have another Merkle root than the checkpoint's`,
        );
      }
      report.checkpoints.push({
        name: checkpoint.name,
        size: checkpoint.size,
        root: b64(checkpoint.root),
      });
    }
  } catch (error) {
    if (!(error instanceof Failed)) throw error;
    report.failure = error.failure;
  }
  report.ok = report.failure === null;
  return report;
}

function open(input: CheckpointInput, verifier: NoteVerifier): Checkpoint {
  try {
    return openCheckpoint(input.note, verifier);
  } catch (error) {
    if (!(error instanceof NoteError)) throw error;
    throw fail(
      input.name,
      error.reason === "bad_signature" ? "bad_signature" : "malformed_checkpoint",
      error.message,
    );
  }
}

/** Whether the log's first `checkpoint.size` records have the checkpoint's root. */
function matches(checkpoint: Checkpoint & { name: string }, tree: MemoryTree): boolean {
  if (checkpoint.size > tree.size) return false;
  try {
    return hashEquals(tree.root(checkpoint.size), checkpoint.root);
  } catch (error) {
    // A root inside the pruned prefix exists only where a prune record's compact range holds
    // it: otherwise the check cannot be done, which is not a pass.
    throw new KvhError(
      "checkpoint_unverifiable",
      `Cannot check ${checkpoint.name}: it covers ${checkpoint.size} records and the log was pruned up to seq ${
        tree.prunedSize - 1
      }`,
      { cause: error },
    );
  }
}

/**
 * The RFC 9162 consistency proof between two checkpoints, made from the log when it holds the
 * newer one's records, and checked against both roots.
 */
function checkPair(
  older: Checkpoint & { name: string },
  newer: Checkpoint & { name: string },
  tree: MemoryTree,
): string[] | null {
  if (older.size === newer.size) {
    if (!hashEquals(older.root, newer.root)) {
      throw fail(newer.name, "fork", `Two checkpoints of size ${newer.size} have different roots`);
    }
    return [];
  }
  if (newer.size > tree.size || older.size === 0 || older.size < tree.prunedSize) return null;
  const proof = consistencyProof(tree, older.size, newer.size);
  if (!verifyConsistency(older.size, newer.size, older.root, newer.root, proof)) {
    throw fail(
      newer.name,
      "fork",
      `The checkpoint of ${newer.size} records does not extend the one of ${older.size}`,
    );
  }
  return proof.map(b64);
}

async function readTreeOrEmpty(path: string): Promise<LogTree> {
  try {
    await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { logId: undefined, tree: new MemoryTree(), conflict: undefined };
    }
    throw new KvhError("log_unreadable", `Cannot verify ${path}: ${describeIoError(error)}`, {
      cause: error,
    });
  }
  return await readLogTree(path);
}

/** An inclusion proof of one record (RFC 9162 §2.1.3), hashes base64: what `--prove` prints. */
export interface InclusionProofDocument {
  /** The record's seq. */
  leaf_index: number;
  /** The checkpoint's tree size. */
  tree_size: number;
  /** SHA-256(0x00 ‖ the record's canonical body). */
  leaf_hash: string;
  /** The audit path, nearest sibling first. */
  audit_path: string[];
  /** The checkpoint's root. */
  root: string;
}

/**
 * Proves that record `seq` is in the tree a checkpoint signs: checks the checkpoint against the
 * log first, so a proof is only ever made for a checkpoint the log matches.
 *
 * @param path Path of the active file.
 * @param seq The record's seq.
 * @param input The signed checkpoint.
 * @param verifier The log's public key.
 * @returns The proof document.
 * @throws {KvhError} `checkpoint_failed` (exit 2) when the checkpoint does not verify or match
 * the log; `proof_unavailable` (exit 1) when `seq` is not below the checkpoint's size or was
 * pruned.
 */
export async function proveInclusion(
  path: string,
  seq: number,
  input: CheckpointInput,
  verifier: NoteVerifier,
): Promise<InclusionProofDocument> {
  const log = await readTreeOrEmpty(path);
  const report = check(log, [input], verifier);
  if (report.failure !== null) {
    throw new KvhError(
      "checkpoint_failed",
      `Cannot prove seq ${seq}: ${report.failure.reason}: ${report.failure.detail}`,
      { exitCode: 2 },
    );
  }
  const { size, root } = report.checkpoints[0]!;
  if (!Number.isSafeInteger(seq) || seq < 0 || seq >= size) {
    throw new KvhError(
      "proof_unavailable",
      `Cannot prove seq ${seq}: the checkpoint covers seq 0 to ${size - 1}`,
    );
  }
  const { tree } = log;
  if (seq < tree.prunedSize) {
    throw new KvhError(
      "proof_unavailable",
      `Cannot prove seq ${seq}: records up to seq ${tree.prunedSize - 1} were pruned`,
    );
  }
  return {
    leaf_index: seq,
    tree_size: size,
    leaf_hash: b64(tree.leaf(seq)),
    audit_path: inclusionProof(tree, seq, size).map(b64),
    root,
  };
}

/**
 * Checks an inclusion proof with the checkpoint and public key alone (no log needed).
 *
 * @param proof The proof document, as parsed JSON.
 * @param input The signed checkpoint.
 * @param verifier The log's public key.
 * @returns `null` when the proof holds, else why not.
 */
export function checkInclusionProof(
  proof: unknown,
  input: CheckpointInput,
  verifier: NoteVerifier,
): string | null {
  let checkpoint: Checkpoint;
  try {
    checkpoint = open(input, verifier);
  } catch (error) {
    if (error instanceof Failed) return `${error.failure.reason}: ${error.failure.detail}`;
    throw error;
  }
  const doc = proof as Partial<Record<keyof InclusionProofDocument, unknown>>;
  const hash = (value: unknown) =>
    typeof value === "string" && /^[A-Za-z0-9+/]{43}=$/.test(value)
      ? new Uint8Array(Buffer.from(value, "base64"))
      : undefined;
  const leaf = hash(doc?.leaf_hash);
  const root = hash(doc?.root);
  const path = Array.isArray(doc?.audit_path) ? doc.audit_path.map(hash) : undefined;
  if (
    typeof doc?.leaf_index !== "number" || typeof doc.tree_size !== "number" ||
    leaf === undefined || root === undefined || path === undefined || path.includes(undefined)
  ) {
    return "malformed proof: expected leaf_index, tree_size, leaf_hash, audit_path and root";
  }
  if (doc.tree_size !== checkpoint.size || !hashEquals(root, checkpoint.root)) {
    return `the proof is for tree size ${doc.tree_size}, not the checkpoint's tree (${checkpoint.size})`;
  }
  return verifyInclusion(doc.leaf_index, doc.tree_size, leaf, path as Uint8Array[], root)
    ? null
    : "the audit path does not lead from the leaf to the checkpoint's root";
}

/** Result of {@linkcode verifyLogAndCheckpoints}. */
export interface LogAndCheckpointsReport {
  /** True when the chain verified and matches every checkpoint. */
  ok: boolean;
  /** The chain check; null when the active file is missing (the log is then empty). */
  chain: VerifyLogReport | null;
  /** The checkpoint check; null when the chain failed (the tree of a broken log is moot). */
  checkpoint: CheckpointReport | null;
}

/**
 * `kvh verify LOG --checkpoint FILE [--checkpoint FILE] --public-key FILE`: the chain check of
 * `verifyLog`, then the checkpoints. A missing active file is not an unreadable log here: it is
 * the deletion checkpoints exist to catch, reported as `truncated`.
 *
 * @param path Path of the active file.
 * @param inputs One or two signed checkpoints.
 * @param verifier The log's public key.
 * @param options Options of the chain check.
 * @returns Both reports.
 */
export async function verifyLogAndCheckpoints(
  path: string,
  inputs: readonly CheckpointInput[],
  verifier: NoteVerifier,
  options: VerifyLogOptions = {},
): Promise<LogAndCheckpointsReport> {
  let present = true;
  try {
    await Deno.lstat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    present = false;
  }
  const chain = present ? await verifyLog(path, options) : null;
  if (chain !== null && !chain.ok) return { ok: false, chain, checkpoint: null };
  const checkpoint = await verifyCheckpoints(path, inputs, verifier);
  return { ok: checkpoint.ok, chain, checkpoint };
}
