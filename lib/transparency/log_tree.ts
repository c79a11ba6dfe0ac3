/**
 * The Merkle tree of a forensic log (format v2): one leaf per record across every file of the
 * chain, leaf index = `seq`, leaf hash = SHA-256(0x00 ‖ the record's canonical body, the exact
 * bytes whose SHA-256 is its `hash`). Pruned records are stood for by the compact range their
 * `prune` record carries, so a pruned log still has every root from the pruned size on.
 *
 * Reading assumes a log that `verifyLog` accepts (seq continuity included); a line it cannot use is
 * refused, not skipped.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { basename, dirname } from "node:path";
import { describeIoError, KvhError } from "../errors.ts";
import { listChainFiles } from "../forensic/chain_files.ts";
import { readLines } from "../forensic/reader.ts";
import { hashBodies, merkleHasher } from "./batch_hash.ts";
import { CompactRange, hashLeaf } from "./merkle.ts";
import { MemoryTree } from "./memory_tree.ts";

/** `,"hash":"` + 64 hex + `"`: the member the writer splices after the canonical body. */
const HASH_MEMBER = ',"hash":"';
const HASH_MEMBER_LEN = HASH_MEMBER.length + 64 + 1;
/** `,"mac":"` + 64 hex + `"`, spliced after `hash` when the log is keyed. */
const MAC_MEMBER = ',"mac":"';
const MAC_MEMBER_LEN = MAC_MEMBER.length + 64 + 1;

/** A record whose `log_id` differs from the log's: records of two logs spliced together. */
export interface LogIdConflict {
  /** Base name of the file. */
  file: string;
  /** 1-based line. */
  line: number;
  /** The `log_id` found there. */
  found: string;
}

/** The tree of a log and what reading it learned. */
export interface LogTree {
  /** The log id of the log's first record (or first remaining record after pruning). */
  logId: string | undefined;
  /** The leaves, after the compact range of any pruned prefix. */
  tree: MemoryTree;
  /** The first record whose `log_id` differs from {@linkcode LogTree.logId}, if any. */
  conflict: LogIdConflict | undefined;
}

/**
 * The canonical body of a format-v2 line: the line without its spliced `hash` and `mac`.
 *
 * @param text The line without its newline.
 * @returns The body, or undefined when the line does not end in the spliced members.
 */
export function canonicalBody(text: string): string | undefined {
  if (!text.endsWith('"}')) return undefined;
  let end = text.length - 1;
  if (text.startsWith(MAC_MEMBER, end - MAC_MEMBER_LEN)) end -= MAC_MEMBER_LEN;
  end -= HASH_MEMBER_LEN;
  if (end < 1 || !text.startsWith(HASH_MEMBER, end)) return undefined;
  return text.slice(0, end) + "}";
}

/**
 * The leaf hash of a record: SHA-256(0x00 ‖ its canonical body).
 *
 * @param body The canonical body (the `body` the writer sealed).
 * @returns The leaf hash.
 */
export function recordLeafHash(body: string): Uint8Array {
  return hashLeaf(body);
}

/** Options of {@linkcode readLogTree}. */
export interface ReadLogTreeOptions {
  /**
   * Read only the given file; its first record is the start of the history.
   *
   * @default {false}
   */
  activeOnly?: boolean;
}

/**
 * Reads the tree of a log: the active file and the rotated files it links back to.
 *
 * @param path Path of the active file.
 * @param options Scope.
 * @returns The log id, the tree and any log id conflict.
 * @throws {KvhError} `log_unreadable` (exit 1) when a file cannot be read, `tree_unavailable`
 * (exit 2) when a line is not a v2 record, or the history starts after
 * pruned records whose compact range no prune record carries.
 */
export async function readLogTree(
  path: string,
  options: ReadLogTreeOptions = {},
): Promise<LogTree> {
  const files = options.activeOnly ? [path] : await listChainFiles(dirname(path), basename(path));
  const hasher = merkleHasher();
  const collected = new MemoryTree([], undefined, hasher);
  const ranges = new Map<number, string[]>();
  let firstSeq: number | undefined;
  let logId: string | undefined;
  let conflict: LogIdConflict | undefined;
  for (const file of files) {
    let fd: Deno.FsFile;
    try {
      fd = await Deno.open(file, { read: true });
    } catch (error) {
      throw new KvhError("log_unreadable", `Cannot read ${file}: ${describeIoError(error)}`, {
        cause: error,
      });
    }
    try {
      for await (const batch of readLines(fd)) {
        // Hashed per batch: one native call instead of a node:crypto hash per record.
        const bodies: string[] = [];
        for (const line of batch) {
          const where = `${basename(file)} line ${line.lineNo}`;
          const body = line.text === undefined || !line.terminated
            ? undefined
            : canonicalBody(line.text);
          if (body === undefined) throw unusable(`${where} is not a complete v2 record`);
          bodies.push(body);
          // Parsing every line would double the cost of a proof: only the first line and those
          // that can carry a log id or compact ranges are parsed; seq continuity is verifyLog's.
          if (
            collected.size + bodies.length > 1 && !body.includes('"log_id":') &&
            !body.includes('"event":"prune"')
          ) continue;
          let record: Record<string, unknown>;
          try {
            record = JSON.parse(body) as Record<string, unknown>;
          } catch (error) {
            throw unusable(`${where} is not JSON`, error);
          }
          if (firstSeq === undefined) {
            if (!Number.isSafeInteger(record.seq)) throw unusable(`${where} has no seq`);
            firstSeq = record.seq as number;
          }
          const id = record.log_id;
          if (typeof id === "string") {
            logId ??= id;
            if (id !== logId && conflict === undefined) {
              conflict = { file: basename(file), line: line.lineNo, found: id };
            }
          }
          if (record.event === "prune") collectRanges(record.removed, ranges);
        }
        collected.pushAll(hashBodies(bodies, hasher));
      }
    } finally {
      fd.close();
    }
  }
  const start = firstSeq ?? 0;
  if (start === 0) return { logId, tree: collected, conflict };
  const hashes = ranges.get(start);
  if (hashes === undefined) {
    throw unusable(
      `the history starts at seq ${start} and no prune record carries the compact range of the records before it`,
    );
  }
  let prefix: CompactRange;
  try {
    prefix = new CompactRange(start, hashes.map((h) => new Uint8Array(Buffer.from(h, "base64"))));
  } catch (error) {
    throw unusable(`the compact range of seq 0 to ${start - 1} is malformed`, error);
  }
  return { logId, tree: collected.withPrefix(prefix), conflict };
}

/** Records `last_seq + 1 → compact_range` of each entry of a prune record's `removed` list. */
function collectRanges(removed: unknown, ranges: Map<number, string[]>): void {
  if (!Array.isArray(removed)) return;
  for (const entry of removed) {
    const { last_seq: lastSeq, compact_range: range } = entry as Record<string, unknown>;
    if (
      typeof lastSeq === "number" && Array.isArray(range) &&
      range.every((h) => typeof h === "string")
    ) {
      ranges.set(lastSeq + 1, range as string[]);
    }
  }
}

function unusable(why: string, cause?: unknown): KvhError {
  return new KvhError("tree_unavailable", `Cannot build the Merkle tree of the log: ${why}`, {
    exitCode: 2,
    cause,
  });
}
