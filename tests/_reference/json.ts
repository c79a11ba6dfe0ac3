/**
 * A reference for the strict JSON parser (lib/forensic/_json.ts) that shares no code with it:
 * `JSON.parse` decides what is JSON, and separate, obviously simple checks add the parser's own
 * rules: no duplicate key at any depth, no lone surrogate (raw, or escaped into a string or
 * key), no byte order mark, nesting at most `maxDepth` deep.
 *
 * @module
 */

/** What the reference makes of a text: the value `JSON.parse` gives, or a rejection. */
export type ReferenceResult = { ok: true; value: unknown } | { ok: false };

/**
 * Parses `text` as the strict parser should.
 *
 * @param text The JSON text.
 * @param maxDepth Deepest nesting accepted (arrays and objects).
 * @returns The value, or `{ok: false}` when the strict parser must reject the text.
 */
export function referenceParse(text: string, maxDepth: number): ReferenceResult {
  if (text.charCodeAt(0) === 0xfeff || !text.isWellFormed()) return { ok: false };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false };
  }
  if (hasDuplicateKey(text) || !wellFormed(value, 0, maxDepth)) return { ok: false };
  return { ok: true, value };
}

/** Whether some object in a text `JSON.parse` accepted repeats a key (compared decoded). */
function hasDuplicateKey(text: string): boolean {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const stack: (Set<string> | null)[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "{") stack.push(new Set());
    else if (c === "[") stack.push(null);
    else if (c === "}" || c === "]") stack.pop();
    else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const token = text.slice(i, end + 1);
      i = end + 1;
      while (" \t\r\n".includes(text[i] ?? "x")) i++;
      const keys = stack.at(-1);
      if (text[i] === ":" && keys instanceof Set) {
        const key = JSON.parse(token) as string;
        if (keys.has(key)) return true;
        keys.add(key);
      }
      continue;
    }
    i++;
  }
  return false;
}

/** No string or key holds a lone surrogate (from an escape), and nesting stays within bounds. */
function wellFormed(value: unknown, depth: number, maxDepth: number): boolean {
  if (typeof value === "string") return value.isWellFormed();
  if (typeof value !== "object" || value === null) return true;
  if (depth + 1 > maxDepth) return false;
  if (Array.isArray(value)) return value.every((item) => wellFormed(item, depth + 1, maxDepth));
  return Object.entries(value).every(([key, item]) =>
    key.isWellFormed() && wellFormed(item, depth + 1, maxDepth)
  );
}
