/**
 * `kvh prune` (DESIGN.md §3): verify, plan, record, remove, verify again.
 *
 * Crash safety. The `prune` record is appended (and fsynced) BEFORE any file is removed, and
 * files are removed oldest first. A crash at any point therefore leaves one of:
 * - no record, every file present: the log as before;
 * - the record, every file present: the record names files that still exist, which the
 *   verifier accepts (a prune record only vouches for what may be missing);
 * - the record, the oldest k files gone: the first remaining file links to the last hash of a
 *   file the record names, which the verifier accepts.
 * So the log verifies at every step, with or without the record, and a second run finishes the
 * job. Removing first and recording after would leave an unverifiable log on a crash in between.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname } from "../io/path.ts";
import { describeIoError, KvhError } from "../errors.ts";
import { appendV1Record } from "../forensic/append_v1.ts";
import { type ChainFile, verifyLog, type VerifyLogReport } from "../forensic/verify.ts";
import { keyMissingMessage } from "../forensic/chain_files.ts";
import { Buffer } from "node:buffer";
import { type ForensicLogOptions, openForensicLog } from "../forensic/writer.ts";
import { readLogTree } from "../transparency/log_tree.ts";
import type { VerifyReport } from "../forensic/types.ts";
import { copyNewFile, resolvePath, syncDir } from "../io/mod.ts";
import { planPrune, type PruneCandidate, type PruneRule } from "./plan_prune.ts";

/** A point a prune has reached; see {@linkcode PruneLogOptions.onStep}. */
export type PruneStep =
  | { step: "verified" }
  | { step: "recorded"; seq: number | null; hash: string }
  | { step: "removed"; file: string }
  | { step: "reverified" };

/** Options of {@linkcode pruneLog}. */
export interface PruneLogOptions {
  /** Directory of the log. */
  dir: string;
  /**
   * Name of the active file.
   *
   * @default {"kv_cache.log"}
   */
  file?: string;
  /** Remove rotated files rotated more than this many days ago. */
  retentionDays?: number;
  /** Keep at most this many rotated files; 0 removes every rotated file. */
  maxRotated?: number;
  /** Move removed files here (same names, 0600) instead of deleting them. */
  archiveDir?: string;
  /**
   * Plan and report only; change nothing.
   *
   * @default {false}
   */
  dryRun?: boolean;
  /**
   * HMAC key of the log (of a forward-secure one: its initial key); required when the log
   * carries MACs, unless `macKeys` is given.
   */
  hmacKey?: Uint8Array;
  /** Forward-secure MAC keys: the prune record is MACed with the current epoch's key. */
  macKeys?: ForensicLogOptions["macKeys"];
  /**
   * The time ages are measured from.
   *
   * @default {new Date()}
   */
  now?: Date;
  /**
   * Signs checkpoints as the prune record is written: the writer hook of lib/transparency's
   * `checkpointer`.
   */
  observe?: ForensicLogOptions["observe"];
  /** Called as each step completes (progress, and fault injection in tests). */
  onStep?: (step: PruneStep) => void | Promise<void>;
}

/** The verification summary a prune report keeps (the chain's file list is left out). */
export type PruneVerification = VerifyReport & { warnings: string[] };

/** The before/after report of {@linkcode pruneLog} (`--out`). */
export interface PruneReport {
  /** Report version. */
  schema: 1;
  /** Unix seconds (float) of the prune. */
  ts: number;
  /** Path of the active file. */
  log: string;
  /** True when the log verified before and after (and, in a dry run, before). */
  ok: boolean;
  /** Whether this was a dry run. */
  dry_run: boolean;
  /** `archive` or `delete`. */
  action: "archive" | "delete";
  /** Archive directory, or null. */
  archive_dir: string | null;
  /** The rules applied. */
  policy: { retention_days: number | null; max_rotated: number | null };
  /** Verification before anything was changed. */
  before: PruneVerification;
  /** Files selected for removal, oldest first (in a dry run: what would be removed). */
  plan: PruneCandidate[];
  /** Files a rule selects that stay because an older file is kept. */
  held: PruneCandidate[];
  /** Rotated files kept. */
  kept: string[];
  /** Files actually removed or archived, in order. */
  removed: string[];
  /** The prune record: `{seq, hash}` (v1: seq null), or null when none was written. */
  record: { seq: number | null; hash: string } | null;
  /** Verification after the prune, or null when nothing was changed. */
  after: PruneVerification | null;
}

function summary(report: VerifyLogReport): PruneVerification {
  const { ok, files, records, head, mac_checked, failure, warnings } = report;
  return { ok, files, records, head, mac_checked, failure, warnings };
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.dev !== null && a.ino !== null && a.dev === b.dev && a.ino === b.ino;
}

/**
 * Refuses an archive directory that is the log directory: every source would map onto itself,
 * and "archive, then delete the source" would delete the only copy.
 */
async function checkArchiveDir(archiveDir: string, dir: string): Promise<void> {
  const [archive, log] = await Promise.all([resolvePath(archiveDir), resolvePath(dir)]);
  const [archiveInfo, logInfo] = await Promise.all([
    Deno.stat(archiveDir).catch(() => undefined),
    Deno.stat(dir),
  ]);
  if (archive === log || (archiveInfo !== undefined && sameFile(archiveInfo, logInfo))) {
    throw new KvhError(
      "archive_is_log_dir",
      `Refusing --archive-dir ${archiveDir}: it is the log directory ${dir} (archiving would delete the only copy)`,
    );
  }
}

/**
 * Checks every archive destination before anything changes; returns the names whose copy already
 * exists (a crash between archiving and deleting the source), which are then only finished.
 */
async function checkArchive(archiveDir: string, plan: PruneCandidate[]): Promise<Set<string>> {
  const done = new Set<string>();
  for (const candidate of plan) {
    const target = `${archiveDir}/${candidate.file}`;
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(target);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw new KvhError(
        "archive_unreadable",
        `Cannot check archive ${target}: ${describeIoError(error)}`,
      );
    }
    if (sameFile(info, await Deno.stat(candidate.path))) {
      throw new KvhError(
        "archive_same_file",
        `Refusing to archive ${candidate.path}: ${target} is the same file (deleting it would lose it)`,
      );
    }
    if (await fileSha256(candidate.path) === await fileSha256(target)) {
      done.add(candidate.file);
      continue;
    }
    throw new KvhError(
      "archive_exists",
      `Refusing to archive ${candidate.file}: ${target} exists with other content`,
    );
  }
  return done;
}

/**
 * Copies `source` into the archive unless `copied`, then proves the copy before the caller deletes
 * the source: a different file (device + inode) with the same SHA-256, fsynced with its directory.
 */
async function archiveFile(source: string, target: string, copied: boolean): Promise<void> {
  if (copied) {
    // A copy left by an interrupted run may not have reached the disk yet.
    const file = await Deno.open(target, { read: true });
    try {
      await file.sync();
    } finally {
      file.close();
    }
  } else {
    await copyNewFile(source, target);
  }
  await syncDir(dirname(target));
  const [sourceInfo, targetInfo] = await Promise.all([Deno.stat(source), Deno.stat(target)]);
  if (sameFile(sourceInfo, targetInfo)) {
    throw new KvhError(
      "archive_same_file",
      `Cannot archive ${source}: its copy ${target} is the same file (deleting it would lose it)`,
    );
  }
  const [want, got] = await Promise.all([fileSha256(source), fileSha256(target)]);
  if (want !== got) {
    throw new KvhError(
      "archive_mismatch",
      `Cannot archive ${source}: its copy ${target} has SHA-256 ${got}, the file ${want}`,
    );
  }
}

function reasonText(plan: PruneCandidate[], retentionDays?: number, maxRotated?: number): string {
  const rules = new Set<PruneRule>(plan.flatMap((candidate) => candidate.rules));
  const parts: string[] = [];
  if (rules.has("age")) parts.push(`retention: rotated more than ${retentionDays} days ago`);
  if (rules.has("count")) parts.push(`count: keep the newest ${maxRotated} rotated files`);
  return parts.join("; ");
}

/**
 * Prunes a forensic log's rotated files. Verifies the whole history first and changes nothing if
 * that fails; removes (or archives) the oldest rotated files the rules select, never the active
 * file and never a file in the middle; appends a `prune` record naming each removed file with
 * its seq range and last hash (format v2 through the writer, format v1 as the Python tool writes
 * it) before removing anything; verifies again.
 *
 * @param options Log, rules, archive, key, dry run.
 * @returns The before/after report; `ok` is false when verification failed before or after.
 * @throws {KvhError} Exit 1 when the log cannot be read or locked, an archive target exists with
 * other content, the log carries MACs but no key was given, or a file cannot be moved.
 *
 * @example Usage
 * ```ts
 * import { openForensicLog, pruneLog } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const log = await openForensicLog({ dir, maxBytes: 200 });
 * for (let i = 0; i < 6; i++) await log.append("free", { handle: `h${i}` }, { critical: true });
 * await log.close();
 * const report = await pruneLog({ dir, maxRotated: 1 });
 * assert.equal(report.ok, true);
 * assert.ok(report.removed.length > 0);
 * assert.equal(report.after?.ok, true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function pruneLog(options: PruneLogOptions): Promise<PruneReport> {
  const { dir, file = "kv_cache.log", retentionDays, maxRotated, archiveDir, hmacKey } = options;
  const { dryRun = false, now = new Date(), onStep } = options;
  const path = `${dir}/${file}`;
  if (archiveDir !== undefined) await checkArchiveDir(archiveDir, dir);
  const beforeReport = await verifyLog(path, { hmacKey });
  const report: PruneReport = {
    schema: 1,
    ts: now.getTime() / 1000,
    log: path,
    ok: beforeReport.ok,
    dry_run: dryRun,
    action: archiveDir === undefined ? "delete" : "archive",
    archive_dir: archiveDir ?? null,
    policy: { retention_days: retentionDays ?? null, max_rotated: maxRotated ?? null },
    before: summary(beforeReport),
    plan: [],
    held: [],
    kept: [],
    removed: [],
    record: null,
    after: null,
  };
  if (!beforeReport.ok) return report;
  if (hmacKey === undefined && options.macKeys === undefined && beforeReport.mac_present) {
    // A record appended without a MAC would make the log fail verification with the key.
    throw new KvhError("log_key_missing", keyMissingMessage(path));
  }
  await onStep?.({ step: "verified" });
  const plan = planPrune(beforeReport.chain, { retentionDays, maxRotated }, now);
  report.plan = plan.remove;
  report.held = plan.held;
  report.kept = plan.keep;
  if (plan.remove.length === 0) return report;
  const archived = archiveDir === undefined
    ? new Set<string>()
    : await checkArchive(archiveDir, plan.remove);
  if (dryRun) return report;
  if (archiveDir !== undefined) {
    await Deno.mkdir(archiveDir, { recursive: true, mode: 0o700 });
    // Now that it exists, device and inode settle what its path through symlinks only suggested.
    await checkArchiveDir(archiveDir, dir);
  }

  report.record = await appendRecord(beforeReport.chain, plan.remove, {
    path,
    dir,
    file,
    hmacKey,
    macKeys: options.macKeys,
    reason: reasonText(plan.remove, retentionDays, maxRotated),
    observe: options.observe,
  });
  await onStep?.({ step: "recorded", ...report.record });

  for (const candidate of plan.remove) {
    try {
      if (archiveDir !== undefined) {
        const target = `${archiveDir}/${candidate.file}`;
        await archiveFile(candidate.path, target, archived.has(candidate.file));
      }
      await Deno.remove(candidate.path);
      await syncDir(dir);
    } catch (error) {
      if (error instanceof KvhError) throw error;
      throw new KvhError(
        "prune_move_failed",
        `Cannot ${archiveDir === undefined ? "delete" : "archive"} ${candidate.path}: ${
          describeIoError(error)
        }`,
        { cause: error },
      );
    }
    report.removed.push(candidate.file);
    await onStep?.({ step: "removed", file: candidate.file });
  }

  const afterReport = await verifyLog(path, { hmacKey });
  report.after = summary(afterReport);
  report.ok = afterReport.ok;
  await onStep?.({ step: "reverified" });
  return report;
}

interface RecordTarget {
  path: string;
  dir: string;
  file: string;
  hmacKey: Uint8Array | undefined;
  macKeys: ForensicLogOptions["macKeys"];
  reason: string;
  observe: ForensicLogOptions["observe"];
}

async function appendRecord(
  chain: readonly ChainFile[],
  remove: readonly PruneCandidate[],
  target: RecordTarget,
): Promise<{ seq: number | null; hash: string }> {
  const active = chain.at(-1)!;
  if (remove[0]!.format === "v1") {
    if (active.last_hash === null || active.format !== "v1") {
      throw new KvhError(
        "prune_no_active",
        `Cannot prune ${target.path}: the active file has no format v1 record to chain the prune record to`,
      );
    }
    const removed = remove.map(({ file, last_hash, records }) => ({
      file,
      last_hash,
      lines: records,
    }));
    return await appendV1Record(
      target.path,
      { event_type: "prune", removed, reason: target.reason },
      { expectedLast: active.last_hash, hmacKey: target.hmacKey, purpose: "prune" },
    );
  }
  const ranges = await compactRanges(target.path, remove);
  const log = await openForensicLog({
    dir: target.dir,
    file: target.file,
    hmacKey: target.hmacKey,
    macKeys: target.macKeys,
    // The prune record must land in the active file it was planned against.
    maxBytes: Number.MAX_SAFE_INTEGER,
    observe: target.observe,
  });
  try {
    const removed = remove.map(({ file, first_seq, last_seq, last_hash }, index) => ({
      file,
      first_seq,
      last_seq,
      last_hash,
      ...(ranges === undefined ? {} : { compact_range: ranges[index] }),
    }));
    const fields = log.logId === undefined
      ? { removed, reason: target.reason }
      : { removed, reason: target.reason, log_id: log.logId };
    const record = await log.append("prune", fields, { critical: true });
    return { seq: record.seq, hash: record.hash };
  } finally {
    await log.close();
  }
}

/**
 * The Merkle compact range (base64 hashes) of the records up to each removed file's last one, so
 * the pruned log keeps every root from there on and still verifies against its checkpoints;
 * undefined when the log's tree cannot be built (pruned before kvh recorded compact ranges).
 */
async function compactRanges(
  path: string,
  remove: readonly PruneCandidate[],
): Promise<string[][] | undefined> {
  let tree;
  try {
    ({ tree } = await readLogTree(path));
  } catch (error) {
    if (error instanceof KvhError && error.code === "tree_unavailable") return undefined;
    throw error;
  }
  return remove.map(({ last_seq }) =>
    tree.compactRange(last_seq! + 1).hashes.map((h) => Buffer.from(h).toString("base64"))
  );
}
