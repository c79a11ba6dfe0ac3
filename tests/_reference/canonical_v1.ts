/**
 * Slow, obviously correct canonical JSON of the Python tool (python-tool.md §2.3), working on a
 * plain model of JSON values rather than on the parser's output, so that a property test can
 * check the parser and the fast canonicaliser together. Test-only.
 *
 * @module
 */

import { referencePythonRepr } from "./python_repr.ts";

/** A JSON value as a test generates it: numbers keep their literal, objects their order. */
export type ModelValue =
  | null
  | boolean
  | string
  | { number: string }
  | ModelValue[]
  | { members: [string, ModelValue][] };

/**
 * Returns `json.dumps(json.loads(text_of(model)), sort_keys=True, ensure_ascii=False,
 * separators=(",", ":"))`.
 *
 * @param model The value.
 * @returns The canonical text.
 */
export function referenceCanonicalV1(model: ModelValue): string {
  if (model === null) return "null";
  if (model === true) return "true";
  if (model === false) return "false";
  if (typeof model === "string") return referenceQuote(model);
  if (Array.isArray(model)) return `[${model.map(referenceCanonicalV1).join(",")}]`;
  if ("number" in model) return referenceNumber(model.number);
  const members = [...model.members].sort((a, b) => compareByCodePoint(a[0], b[0]));
  return `{${
    members.map(([k, v]) => `${referenceQuote(k)}:${referenceCanonicalV1(v)}`).join(",")
  }}`;
}

/**
 * Serialises a model as JSON text with the given separators and member order as stored.
 *
 * @param model The value.
 * @param escapeAll Escape every code unit outside printable ASCII, quotes and backslashes too.
 * @returns JSON text.
 */
export function modelToText(model: ModelValue, escapeAll = false): string {
  const quote = (s: string) => {
    if (!escapeAll) return JSON.stringify(s);
    let out = '"';
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const plain = c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c;
      out += plain ? s[i] : `\\u${c.toString(16).padStart(4, "0")}`;
    }
    return out + '"';
  };
  const write = (m: ModelValue): string => {
    if (m === null || typeof m === "boolean") return String(m);
    if (typeof m === "string") return quote(m);
    if (Array.isArray(m)) return `[${m.map(write).join(", ")}]`;
    if ("number" in m) return m.number;
    return `{${m.members.map(([k, v]) => `${quote(k)}: ${write(v)}`).join(", ")}}`;
  };
  return write(model);
}

function referenceNumber(raw: string): string {
  if (/^-?\d+$/.test(raw)) return BigInt(raw).toString();
  if (raw === "NaN" || raw === "Infinity" || raw === "-Infinity") return raw;
  return referencePythonRepr(Number(raw));
}

/** Escapes code point by code point, as CPython's encoder does with ensure_ascii=False. */
function referenceQuote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (cp < 0x20) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out + '"';
}

function compareByCodePoint(a: string, b: string): number {
  const x = Array.from(a, (ch) => ch.codePointAt(0)!);
  const y = Array.from(b, (ch) => ch.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}
