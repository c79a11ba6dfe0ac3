/**
 * A single-pass checker for the RFC 8785 (JCS) canonical form that format v2 writes, used by the
 * verifier's fast path instead of `JSON.parse` + `JSON.stringify` + a key-order walk: it builds no
 * objects, and it hands back the raw text of the top-level members the chain check needs.
 *
 * Accepts exactly what `canonicalizeV2` can emit: no whitespace; members sorted by UTF-16 code
 * units with no duplicates; strings escaped as `JSON.stringify` escapes them, well-formed;
 * numbers in ECMAScript `Number#toString` form, integral ones safe. Anything else returns
 * `undefined` and the caller's slow path classifies the line.
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

const WANTED: ReadonlySet<string> = new Set(["v", "seq", "prev", "event", "ts"]);

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
  const scanner = new Scanner(text);
  try {
    if (text.charCodeAt(0) !== 0x7b) return undefined;
    const members: ScannedMembers = {};
    scanner.object(0, members);
    return scanner.pos === text.length ? members : undefined;
  } catch (error) {
    if (error === NOT_CANONICAL) return undefined;
    throw error;
  }
}

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  fail(): never {
    throw NOT_CANONICAL;
  }

  value(depth: number): void {
    const c = this.text.charCodeAt(this.pos);
    if (c === 0x22) this.string();
    else if (c === 0x7b) this.object(depth + 1, undefined);
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

  object(depth: number, members: ScannedMembers | undefined): void {
    if (depth > MAX_DEPTH) this.fail();
    const text = this.text;
    this.pos++;
    if (text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return;
    }
    let last: string | undefined;
    while (true) {
      if (text.charCodeAt(this.pos) !== 0x22) this.fail();
      const keyStart = this.pos;
      const escaped = this.string();
      const key = escaped
        ? JSON.parse(text.slice(keyStart, this.pos)) as string
        : text.slice(keyStart + 1, this.pos - 1);
      if (last !== undefined && !(last < key)) this.fail();
      last = key;
      if (text.charCodeAt(this.pos) !== 0x3a) this.fail();
      this.pos++;
      const valueStart = this.pos;
      this.value(depth);
      if (members !== undefined) {
        if (key === "hash" || key === "mac") this.fail();
        if (WANTED.has(key)) {
          members[key as keyof ScannedMembers] = text.slice(valueStart, this.pos);
        }
      }
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
    while (i < text.length) {
      const c = text.charCodeAt(i);
      // Digits, '-', '+', '.', 'e': the token's canonical form is checked as a whole below.
      if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65) i++;
      else break;
    }
    if (i === start) this.fail();
    const token = text.slice(start, i);
    const value = Number(token);
    if (String(value) !== token || (Number.isInteger(value) && !Number.isSafeInteger(value))) {
      this.fail();
    }
    this.pos = i;
  }
}
