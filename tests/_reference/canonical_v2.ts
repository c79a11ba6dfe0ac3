/**
 * The obviously correct definition of a canonical format-v2 body, for cross-checking the
 * single-pass scanner: a text is canonical exactly when re-serialising what it parses to, in
 * RFC 8785 form, reproduces it byte for byte (and it is an object without `hash` or `mac`).
 *
 * It parses with the strict parser of lib/forensic/_json.ts rather than `JSON.parse`: under
 * fast-check, V8's `JSON.parse` was seen to return the key `\` for an escaped `\n` key in a
 * two-byte string (not reproducible in a fresh process), which made this reference disagree.
 *
 * @module
 */
import { JsonNumber, JsonObject, type JsonValue, parseJson } from "../../lib/forensic/_json.ts";

class NotCanonical extends Error {}

function serialize(value: JsonValue): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw new NotCanonical();
    return JSON.stringify(value);
  }
  if (value instanceof JsonNumber) {
    const n = Number(value.raw);
    // RFC 8785: any finite double, written as ECMAScript writes it (1e+30 included).
    if (!Number.isFinite(n)) throw new NotCanonical();
    return String(n);
  }
  if (Array.isArray(value)) return "[" + value.map(serialize).join(",") + "]";
  const entries = [...(value as JsonObject).entries].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  return "{" + entries.map(([k, v]) => {
    if (!k.isWellFormed()) throw new NotCanonical();
    return JSON.stringify(k) + ":" + serialize(v);
  }).join(",") + "}";
}

/** Whether `text` is a canonical v2 body. */
export function isCanonicalBodyReference(text: string): boolean {
  let value: JsonValue;
  try {
    value = parseJson(text);
  } catch {
    return false;
  }
  if (!(value instanceof JsonObject) || value.has("hash") || value.has("mac")) return false;
  try {
    return serialize(value) === text;
  } catch (error) {
    if (error instanceof NotCanonical) return false;
    throw error;
  }
}
