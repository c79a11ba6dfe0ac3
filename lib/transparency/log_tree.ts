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
import { Buffer, isAscii } from "node:buffer";
import { basename, dirname } from "../io/path.ts";
import { describeIoError, KvhError } from "../errors.ts";
import { listChainFiles } from "../forensic/chain_files.ts";
import { decodeLines, readChunks } from "../forensic/reader.ts";
import { hashBodies, hashLeaves, type MerkleHasher, merkleHasher } from "./batch_hash.ts";
import { CompactRange, hashLeaf } from "./merkle.ts";
import { MemoryTree } from "./memory_tree.ts";

/** `,"hash":"` + 64 hex + `"`: the member the writer splices after the canonical body. */
const HASH_MEMBER = ',"hash":"';
const HASH_MEMBER_LEN = HASH_MEMBER.length + 64 + 1;
/** `,"mac":"` + 64 hex + `"`, spliced after `hash` when the log is keyed. */
const MAC_MEMBER = ',"mac":"';
const MAC_MEMBER_LEN = MAC_MEMBER.length + 64 + 1;
/** Lines longer than this are refused, as verify does (readLines' default cap). */
const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** Reads of 4 MiB: a proof over a large log pays per-read and per-batch costs less often. */
const READ_BYTES = 4 * 1024 * 1024;
/** Only records holding one of these are parsed (the first record of the history aside). */
const LOG_ID_MARKER = '"log_id":';
const PRUNE_MARKER = '"event":"prune"';
/**
 * Decodes runs of ASCII, one character per byte, so offsets into the text are offsets into the
 * bytes. Without validation (the run is known to be ASCII) decoding is several times faster.
 */
const ascii = new TextDecoder("utf-8", { ignoreBOM: true });
const CLOSE_BRACE = 0x7d;

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
  const at = hashMemberAt(text, 0, text.length);
  return at < 0 ? undefined : text.slice(0, at) + "}";
}

/**
 * Where the spliced `hash` member of the line `text[start, end)` begins: the body is the line up
 * to there, then `}`.
 *
 * @returns The offset in `text`, or -1 when the line does not end in the spliced members.
 */
function hashMemberAt(text: string, start: number, end: number): number {
  if (end - start < 2 || !text.startsWith('"}', end - 2)) return -1;
  let at = end - 1;
  if (text.startsWith(MAC_MEMBER, Math.max(start, at - MAC_MEMBER_LEN))) at -= MAC_MEMBER_LEN;
  at -= HASH_MEMBER_LEN;
  return at - start >= 1 && text.startsWith(HASH_MEMBER, at) ? at : -1;
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
  const builder = new TreeBuilder(merkleHasher(), await totalSize(files));
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
      const name = basename(file);
      let lineNo = 0;
      const chunks = readChunks(fd, {
        maxLineBytes: MAX_LINE_BYTES,
        chunkBytes: READ_BYTES,
        reuseBuffer: true,
      });
      for await (const chunk of chunks) {
        // An over-long or unterminated line.
        if (chunk.kind !== "lines") throw notRecord(name, lineNo + 1);
        lineNo = isAscii(chunk.bytes)
          ? builder.addAscii(chunk.bytes, name, lineNo)
          : builder.addDecoded(chunk.bytes, name, lineNo);
      }
    } finally {
      fd.close();
    }
  }
  return builder.finish();
}

/**
 * Collects the leaves of a history run by run of lines, and what its few parsed records say.
 * Parsing every line would double the cost of a proof: only the first record and those that can
 * carry a log id or compact ranges are parsed; seq continuity is verifyLog's.
 */
class TreeBuilder {
  readonly #hasher: MerkleHasher;
  readonly #tree: MemoryTree;
  readonly #ranges = new Map<number, string[]>();
  #firstSeq: number | undefined;
  #logId: string | undefined;
  #conflict: LogIdConflict | undefined;
  /** Offset and length of each body of a run, reused from run to run. */
  #desc: Uint32Array<ArrayBuffer> = new Uint32Array(2 * 4096);
  /** Bytes of the files to read, until the first run tells the size of a line. */
  #bytesToRead: number | undefined;

  constructor(hasher: MerkleHasher, bytesToRead: number) {
    this.#hasher = hasher;
    this.#tree = new MemoryTree([], undefined, hasher);
    this.#bytesToRead = bytesToRead;
  }

  /** Reserves the leaves of the whole history, estimated from the lines of the first run. */
  #reserve(runBytes: number, lines: number): void {
    if (this.#bytesToRead === undefined) return;
    this.#tree.reserve(Math.ceil(this.#bytesToRead / ((runBytes + 1) / lines) * 1.05));
    this.#bytesToRead = undefined;
  }

  /**
   * Adds a run of ASCII lines: bodies are hashed where they lie in `bytes`, never decoded line by
   * line or encoded again. The byte after each body (the `,` of its `hash` member) is overwritten
   * with the body's closing `}`, so each body is one range of `bytes`.
   *
   * @returns The number of the run's last line.
   */
  addAscii(bytes: Uint8Array, file: string, lineNo: number): number {
    const text = ascii.decode(bytes);
    let count = 0;
    let marker = nextMarker(text, 0);
    let start = 0;
    while (true) {
      let end = text.indexOf("\n", start);
      if (end === -1) end = text.length;
      lineNo++;
      const at = end - start > MAX_LINE_BYTES ? -1 : hashMemberAt(text, start, end);
      if (at < 0) throw notRecord(file, lineNo);
      if (2 * count === this.#desc.length) this.#desc = growDesc(this.#desc);
      this.#desc[2 * count] = start;
      this.#desc[2 * count + 1] = at + 1 - start;
      count++;
      // A marker between the line's start and its body's end lies in the body: none can span
      // into the spliced members, whose values are hex.
      if (this.#tree.size + count === 1 || (marker !== -1 && marker < at)) {
        this.#inspect(text.slice(start, at) + "}", file, lineNo);
        marker = nextMarker(text, end);
      }
      bytes[at] = CLOSE_BRACE;
      if (end === text.length) break;
      start = end + 1;
    }
    this.#reserve(bytes.length, count);
    this.#tree.pushInto(count, (out) => hashLeaves(bytes, this.#desc, count, this.#hasher, out));
    return lineNo;
  }

  /**
   * Adds a run that holds other bytes than ASCII, line by line as text.
   *
   * @returns The number of the run's last line.
   */
  addDecoded(bytes: Uint8Array, file: string, lineNo: number): number {
    const bodies: string[] = [];
    for (const line of decodeLines(bytes, MAX_LINE_BYTES)) {
      lineNo++;
      const body = typeof line === "string" ? canonicalBody(line) : undefined;
      if (body === undefined) throw notRecord(file, lineNo);
      bodies.push(body);
      if (
        this.#tree.size + bodies.length === 1 || body.includes(LOG_ID_MARKER) ||
        body.includes(PRUNE_MARKER)
      ) this.#inspect(body, file, lineNo);
    }
    this.#reserve(bytes.length, bodies.length);
    this.#tree.pushAll(hashBodies(bodies, this.#hasher));
    return lineNo;
  }

  /** Takes the start of the history, the log id and compact ranges from a record. */
  #inspect(body: string, file: string, lineNo: number): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(body) as Record<string, unknown>;
    } catch (error) {
      throw unusable(`${file} line ${lineNo} is not JSON`, error);
    }
    if (this.#firstSeq === undefined) {
      if (!Number.isSafeInteger(record.seq)) throw unusable(`${file} line ${lineNo} has no seq`);
      this.#firstSeq = record.seq as number;
    }
    const id = record.log_id;
    if (typeof id === "string") {
      this.#logId ??= id;
      if (id !== this.#logId && this.#conflict === undefined) {
        this.#conflict = { file, line: lineNo, found: id };
      }
    }
    if (record.event === "prune") collectRanges(record.removed, this.#ranges);
  }

  /** The tree, after the compact range of the records the history starts after. */
  finish(): LogTree {
    const logId = this.#logId;
    const conflict = this.#conflict;
    const start = this.#firstSeq ?? 0;
    if (start === 0) return { logId, tree: this.#tree, conflict };
    const hashes = this.#ranges.get(start);
    if (hashes === undefined) {
      throw unusable(
        `the history starts at seq ${start} and no prune record carries the compact range of the records before it`,
      );
    }
    let prefix: CompactRange;
    try {
      prefix = new CompactRange(
        start,
        hashes.map((h) => new Uint8Array(Buffer.from(h, "base64"))),
      );
    } catch (error) {
      throw unusable(`the compact range of seq 0 to ${start - 1} is malformed`, error);
    }
    return { logId, tree: this.#tree.withPrefix(prefix), conflict };
  }
}

/** The size of the files together; a file that cannot be read counts 0 (opening it says why). */
async function totalSize(files: readonly string[]): Promise<number> {
  let total = 0;
  for (const file of files) total += await Deno.stat(file).then((info) => info.size, () => 0);
  return total;
}

function growDesc(desc: Uint32Array): Uint32Array<ArrayBuffer> {
  const grown = new Uint32Array(desc.length * 2);
  grown.set(desc);
  return grown;
}

/**
 * The offset of the next {@linkcode LOG_ID_MARKER} or {@linkcode PRUNE_MARKER} in `text` from
 * `from`, or -1. Each is found through a tail that starts with a letter rare in records (`g`,
 * `p`): V8 scans for a pattern's first character at memchr speed, and `"` is in every member.
 */
function nextMarker(text: string, from: number): number {
  const logId = findByTail(text, LOG_ID_MARKER, 3, from);
  const prune = findByTail(text, PRUNE_MARKER, 9, from);
  return logId === -1 ? prune : prune === -1 ? logId : Math.min(logId, prune);
}

function findByTail(text: string, marker: string, skip: number, from: number): number {
  const tail = marker.slice(skip);
  for (let at = text.indexOf(tail, from + skip); at !== -1; at = text.indexOf(tail, at + 1)) {
    if (text.startsWith(marker, at - skip)) return at - skip;
  }
  return -1;
}

function notRecord(file: string, lineNo: number): KvhError {
  return unusable(`${file} line ${lineNo} is not a complete v2 record`);
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
