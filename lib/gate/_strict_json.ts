/**
 * `JSON.parse` plus what it lets through: a leading byte order mark is refused, nesting is
 * bounded (checked by an iterative scan before parsing, so no input reaches a recursion limit),
 * and a duplicate key in any object is refused — `JSON.parse` keeps the last one, so
 * `"quarantine_count": 5, "quarantine_count": 0` would read as 0.
 *
 * The gate's inputs are a few kilobytes and parsed once per run; the forensic log's strict
 * parser (lossless numbers, per-line speed) is more than they need and private to that area.
 *
 * @module
 */

/** Deepest nesting of objects and arrays accepted in a gate input. */
export const MAX_GATE_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The parsed value, or a phrase saying why the text was refused. */
export type StrictJsonResult = { ok: true; value: unknown } | { ok: false; problem: string };

/**
 * Parses JSON text strictly.
 *
 * @param text The text.
 * @returns The parsed value, or a one-line reason to follow the caller's `<file>: `:
 * `a byte order mark …`, `nesting deeper than …`, `duplicate key "…" …` or `not valid JSON: …`.
 */
export function parseStrictJson(text: string): StrictJsonResult {
  if (text.charCodeAt(0) === 0xfeff) {
    return { ok: false, problem: "a byte order mark before the JSON text (save it without one)" };
  }
  const scanned = scan(text);
  if (scanned.deep) {
    return { ok: false, problem: `nesting deeper than ${MAX_GATE_JSON_DEPTH} levels` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    // V8 quotes the input in its message; keep the diagnostic on one short line.
    return { ok: false, problem: `not valid JSON: ${detail.replace(/\s+/g, " ").slice(0, 160)}` };
  }
  if (scanned.duplicate !== undefined) {
    return {
      ok: false,
      problem: `duplicate key ${JSON.stringify(scanned.duplicate)} in one object`,
    };
  }
  return { ok: true, value };
}

/**
 * Walks the text once without recursion: whether nesting exceeds the limit, and the first
 * duplicate key. On text that is not JSON it stops early; `JSON.parse` then says what is wrong.
 */
function scan(text: string): { deep: boolean; duplicate?: string } {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  let duplicate: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === QUOTE) {
      let end = i + 1;
      while (end < text.length) {
        const c = text.charCodeAt(end);
        if (c === BACKSLASH) end += 2;
        else if (c === QUOTE) break;
        else end++;
      }
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        let key: string;
        try {
          key = JSON.parse(text.slice(i, end + 1));
        } catch {
          return { deep: false, duplicate };
        }
        if (keys.has(key)) duplicate ??= key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      stack.push(ch === 0x7b ? new Set() : null);
      if (stack.length > MAX_GATE_JSON_DEPTH) return { deep: true };
      expectKey = ch === 0x7b;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (ch === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] instanceof Set;
    } else if (ch === 0x3a /* : */) {
      expectKey = false;
    }
  }
  return { deep: false, duplicate };
}
