/**
 * Format v1 hot path: parsing a line, canonicalising it and hashing it, over the Python tool's
 * own fixture lines (~400 bytes each; the tracer run of tests/fixtures/python-tool/hmac).
 * Run: deno bench --allow-read bench/forensic_v1_bench.ts
 */
import { type JsonObject, parseJson } from "../lib/forensic/_json.ts";
import { canonicalV1, checkV1Record, scanV1Line } from "../lib/forensic/format_v1.ts";

const peer = new URL("../tests/fixtures/python-tool/", import.meta.url);
const lines = Deno.readTextFileSync(new URL("hmac/kv_cache.log", peer))
  .split("\n").filter((line) => line !== "");
const key = Deno.readFileSync(new URL("hmac/secret.txt", peer));
const records = lines.map((line) => parseJson(line) as JsonObject);
const bytes = lines.reduce((sum, line) => sum + new TextEncoder().encode(line).length + 1, 0);
console.log(`${lines.length} lines, ${(bytes / lines.length).toFixed(0)} bytes/line on average`);

Deno.bench("parseJson", { group: "v1", baseline: true }, () => {
  for (const line of lines) parseJson(line);
});

Deno.bench("JSON.parse (for comparison)", { group: "v1" }, () => {
  for (const line of lines) JSON.parse(line);
});

Deno.bench("canonicalV1", { group: "v1" }, () => {
  for (const record of records) canonicalV1(record);
});

Deno.bench("checkV1Record", { group: "v1" }, () => {
  for (const record of records) checkV1Record(record);
});

Deno.bench("checkV1Record with key", { group: "v1" }, () => {
  for (const record of records) checkV1Record(record, key);
});

Deno.bench("parseJson + checkV1Record with key", { group: "v1" }, () => {
  for (const line of lines) checkV1Record(parseJson(line) as JsonObject, key);
});

Deno.bench("scanV1Line (the fast path: no parse, no re-serialisation)", { group: "v1" }, () => {
  for (const line of lines) scanV1Line(line);
});
