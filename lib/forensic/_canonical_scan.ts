/**
 * A single-pass checker for the RFC 8785 (JCS) canonical form that format v2 writes, used by the
 * verifier's fast path instead of `JSON.parse` + `JSON.stringify` + a key-order walk: it builds no
 * objects and no strings on the common path (keys are compared and numbers checked in place), and
 * it hands back where the top-level members the chain check needs sit in the text.
 *
 * Accepts exactly what `canonicalizeV2` can emit: no whitespace; members sorted by UTF-16 code
 * units with no duplicates; strings escaped as `JSON.stringify` escapes them, well-formed;
 * numbers in ECMAScript `Number#toString` form (any finite double: `1e+30` is canonical in
 * RFC 8785 although kvh's writer refuses integers beyond 2^53). Anything else returns
 * `undefined` (or `false`) and the caller's slow path classifies the line.
 *
 * @module
 */

const MAX_DEPTH = 256;

/** Raw text of the top-level members the verifier reads, as they appear in the body. */
export interface ScannedMembers {
  v?: string;
  seq?: string;
  prev?: string;
  event?: string;
  ts?: string;
}

class NotCanonical {}
const NOT_CANONICAL = new NotCanonical();

/**
 * Checks that `text` is one JSON object in canonical form and collects its top-level `v`, `seq`,
 * `prev`, `event` and `ts` members (raw value text). A top-level `hash` or `mac` member makes the
 * body invalid (they are spliced after it).
 *
 * @param text The canonical body of a line.
 * @returns The members, or `undefined` when the text is not canonical.
 */
export function scanCanonicalBody(text: string): ScannedMembers | undefined {
  // The body's closing brace is the text's last character: scanning up to it with it as the
  // object's end is what the line form does with the spliced members.
  const end = text.length - 1;
  if (end < 1 || text.charCodeAt(end) !== 0x7d) return undefined;
  const scan = scanCanonicalLine(text, end);
  if (scan === undefined) return undefined;
  const members: ScannedMembers = {};
  for (const name of ["event", "prev", "seq", "ts", "v"] as const) {
    const at = scan[name];
    if (at >= 0) members[name] = text.slice(at, scan.ends[name]);
  }
  return members;
}

/** Where the top-level members the verifier reads start and end; -1 where absent. */
export interface MemberOffsets {
  v: number;
  seq: number;
  prev: number;
  event: number;
  ts: number;
  /** End offsets (exclusive) of the same members. */
  ends: { v: number; seq: number; prev: number; event: number; ts: number };
}

/**
 * Checks that `text[0, end)` followed by `}` is one JSON object in canonical form: the body of a
 * line whose spliced `hash`/`mac` members start at `end`, scanned without cutting it out.
 *
 * @param text A line (or body).
 * @param end Offset where the body's closing brace stands (or the spliced members start).
 * @returns Offsets of the top-level `v`, `seq`, `prev`, `event` and `ts` values (the result
 * object is reused by the next call), or `undefined` when the body is not canonical.
 */
export function scanCanonicalLine(text: string, end: number): MemberOffsets | undefined {
  if (text.charCodeAt(0) !== 0x7b) return undefined;
  const scanner = SCANNER;
  scanner.text = text;
  scanner.pos = 0;
  const found = FOUND;
  found.v =
    found.seq =
    found.prev =
    found.event =
    found.ts =
      -1;
  try {
    scanner.top(end, found);
    return found;
  } catch (error) {
    if (error === NOT_CANONICAL) return undefined;
    throw error;
  } finally {
    scanner.text = "";
  }
}

class Scanner {
  pos = 0;
  text = "";

  fail(): never {
    throw NOT_CANONICAL;
  }

  value(depth: number): void {
    const c = this.text.charCodeAt(this.pos);
    if (c === 0x22) this.string();
    else if (c === 0x7b) this.object(depth + 1);
    else if (c === 0x5b) this.array(depth + 1);
    else if (c === 0x74) this.literal("true");
    else if (c === 0x66) this.literal("false");
    else if (c === 0x6e) this.literal("null");
    else this.number();
  }

  literal(word: string): void {
    if (!this.text.startsWith(word, this.pos)) this.fail();
    this.pos += word.length;
  }

  /** The top-level object, whose closing brace stands at `end`; records the wanted members. */
  top(end: number, found: MemberOffsets): void {
    const text = this.text;
    this.pos = 1;
    if (this.pos === end) return;
    // The key-order loop below repeats object()'s on purpose: every verified line runs it once
    // per member, and the previous key's three offsets stay in locals. A shared helper would have
    // to hand them back through instance fields or an allocated tuple per member, and no
    // benchmark has shown that to cost nothing; a change here must keep both loops in step.
    let lastStart = -1;
    let lastEnd = -1;
    let lastEscaped = false;
    while (true) {
      if (text.charCodeAt(this.pos) !== 0x22) this.fail();
      const keyStart = this.pos + 1;
      const escaped = this.string();
      const keyEnd = this.pos - 1;
      if (
        lastStart >= 0 &&
        !this.ascending(lastStart, lastEnd, lastEscaped, keyStart, keyEnd, escaped)
      ) {
        this.fail();
      }
      lastStart = keyStart;
      lastEnd = keyEnd;
      lastEscaped = escaped;
      if (text.charCodeAt(this.pos) !== 0x3a) this.fail();
      this.pos++;
      const valueStart = this.pos;
      this.value(1);
      // An escaped key holds a quote, a backslash or a control, so it is never a wanted name.
      if (!escaped) this.record(found, keyStart, keyEnd, valueStart);
      if (this.pos === end) return;
      // A value running past `end` read the spliced members (the body alone would have ended).
      if (this.pos > end || text.charCodeAt(this.pos) !== 0x2c) this.fail();
      this.pos++;
    }
  }

  /** Notes the value of a wanted top-level member; a `hash` or `mac` member fails the body. */
  record(found: MemberOffsets, start: number, end: number, valueStart: number): void {
    const text = this.text;
    const length = end - start;
    const c = text.charCodeAt(start);
    let name: "v" | "seq" | "prev" | "event" | "ts" | undefined;
    if (length === 1) {
      if (c === 0x76) name = "v";
    } else if (length === 2) {
      if (c === 0x74 && text.charCodeAt(start + 1) === 0x73) name = "ts";
    } else if (length === 3) {
      if (text.startsWith("seq", start)) name = "seq";
      else if (text.startsWith("mac", start)) this.fail();
    } else if (length === 4) {
      if (text.startsWith("prev", start)) name = "prev";
      else if (text.startsWith("hash", start)) this.fail();
    } else if (length === 5) {
      if (text.startsWith("event", start)) name = "event";
    }
    if (name !== undefined) {
      found[name] = valueStart;
      found.ends[name] = this.pos;
    }
  }

  /** Whether key `[a0, a1)` sorts strictly before key `[b0, b1)` by UTF-16 code units. */
  ascending(
    a0: number,
    a1: number,
    aEscaped: boolean,
    b0: number,
    b1: number,
    bEscaped: boolean,
  ): boolean {
    const text = this.text;
    if (aEscaped || bEscaped) return this.key(a0, a1, aEscaped) < this.key(b0, b1, bEscaped);
    const n = Math.min(a1 - a0, b1 - b0);
    for (let i = 0; i < n; i++) {
      const x = text.charCodeAt(a0 + i);
      const y = text.charCodeAt(b0 + i);
      if (x !== y) return x < y;
    }
    return a1 - a0 < b1 - b0;
  }

  key(start: number, end: number, escaped: boolean): string {
    const raw = this.text.slice(start - 1, end + 1);
    return escaped ? JSON.parse(raw) as string : raw.slice(1, -1);
  }

  object(depth: number): void {
    if (depth > MAX_DEPTH) this.fail();
    const text = this.text;
    this.pos++;
    if (text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return;
    }
    let lastStart = -1;
    let lastEnd = -1;
    let lastEscaped = false;
    while (true) {
      if (text.charCodeAt(this.pos) !== 0x22) this.fail();
      const keyStart = this.pos + 1;
      const escaped = this.string();
      const keyEnd = this.pos - 1;
      if (
        lastStart >= 0 &&
        !this.ascending(lastStart, lastEnd, lastEscaped, keyStart, keyEnd, escaped)
      ) {
        this.fail();
      }
      lastStart = keyStart;
      lastEnd = keyEnd;
      lastEscaped = escaped;
      if (text.charCodeAt(this.pos) !== 0x3a) this.fail();
      this.pos++;
      this.value(depth);
      const c = text.charCodeAt(this.pos++);
      if (c === 0x7d) return;
      if (c !== 0x2c) this.fail();
    }
  }

  array(depth: number): void {
    if (depth > MAX_DEPTH) this.fail();
    this.pos++;
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return;
    }
    while (true) {
      this.value(depth);
      const c = this.text.charCodeAt(this.pos++);
      if (c === 0x5d) return;
      if (c !== 0x2c) this.fail();
    }
  }

  /** Scans a string at `pos` (its opening quote); returns whether it holds an escape. */
  string(): boolean {
    const text = this.text;
    let escaped = false;
    let i = this.pos + 1;
    while (true) {
      // The regular expression skips the plain run of characters natively, several times
      // faster than a charCodeAt loop; what stops it is handled below.
      PLAIN_RUN.lastIndex = i;
      PLAIN_RUN.test(text);
      i = PLAIN_RUN.lastIndex;
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        const e = text.charCodeAt(i + 1);
        if (e === 0x75) {
          // JSON.stringify writes \u00xx (lowercase) only for controls without a short escape.
          if (text.charCodeAt(i + 2) !== 0x30 || text.charCodeAt(i + 3) !== 0x30) this.fail();
          const hi = text.charCodeAt(i + 4);
          const lo = text.charCodeAt(i + 5);
          if (hi !== 0x30 && hi !== 0x31) this.fail();
          const loValue = lo >= 0x30 && lo <= 0x39
            ? lo - 0x30
            : lo >= 0x61 && lo <= 0x66
            ? lo - 0x57
            : -1;
          if (loValue < 0) this.fail();
          const code = (hi - 0x30) * 16 + loValue;
          if (code === 8 || code === 9 || code === 10 || code === 12 || code === 13) this.fail();
          i += 6;
        } else if (
          e === 0x22 || e === 0x5c || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 ||
          e === 0x74
        ) {
          i += 2;
        } else {
          this.fail();
        }
        continue;
      }
      if (c < 0x20 || Number.isNaN(c)) this.fail();
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = text.charCodeAt(i + 1);
        if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) this.fail();
        i += 2;
        continue;
      }
      i++;
    }
    this.pos = i + 1;
    return escaped;
  }

  number(): void {
    const text = this.text;
    const start = this.pos;
    let i = start;
    let plain = true;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c >= 0x30 && c <= 0x39) i++;
      // '-', '+', '.', 'e': the token's canonical form is checked as a whole below.
      else if (c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65) {
        plain = false;
        i++;
      } else break;
    }
    if (i === start) this.fail();
    // Up to 15 digits without a leading zero is a safe integer in canonical form already.
    if (plain && i - start <= 15 && (text.charCodeAt(start) !== 0x30 || i - start === 1)) {
      this.pos = i;
      return;
    }
    const token = text.slice(start, i);
    const value = Number(token);
    if (String(value) !== token) this.fail();
    this.pos = i;
  }
}

/** Characters a canonical string holds as they are: no quote, backslash, control or surrogate. */
// deno-lint-ignore no-control-regex -- controls are exactly what ends a plain run
const PLAIN_RUN = /[^"\\\u0000-\u001f\ud800-\udfff]*/y;

const SCANNER = new Scanner();
const FOUND: MemberOffsets = {
  v: -1,
  seq: -1,
  prev: -1,
  event: -1,
  ts: -1,
  ends: { v: -1, seq: -1, prev: -1, event: -1, ts: -1 },
};
