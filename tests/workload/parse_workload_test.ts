import assert from "node:assert/strict";
import { parseWorkload, WorkloadError } from "../../lib/workload/mod.ts";

const GOOD = {
  tenant_id: "acme",
  request_id: "r1",
  model_id: "llama-3-8b",
  tokens: 16,
  layers: 32,
  kv_heads: 8,
  head_dim: 128,
  dtype: "float16",
};

function stream(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  // Split mid-line so the line reassembly is exercised.
  return ReadableStream.from([bytes.subarray(0, 7), bytes.subarray(7)]);
}

async function failure(text: string): Promise<WorkloadError> {
  const error = await Array.fromAsync(parseWorkload(stream(text), "w.jsonl")).catch((e) => e);
  assert.ok(error instanceof WorkloadError, String(error));
  return error;
}

Deno.test("parseWorkload() yields every request and skips blank lines", async () => {
  const text = `${JSON.stringify(GOOD)}\r\n\n${JSON.stringify({ ...GOOD, request_id: "r2" })}`;
  const requests = await Array.fromAsync(parseWorkload(stream(text), "w.jsonl"));
  assert.deepEqual(requests.map((r) => r.request_id), ["r1", "r2"]);
});

Deno.test("parseWorkload() names the line of malformed JSON", async () => {
  const error = await failure(`${JSON.stringify(GOOD)}\n{"tenant_id":\n`);
  assert.equal(error.line, 2);
  assert.equal(error.exitCode, 1);
  assert.equal(error.message, "Invalid workload w.jsonl:2: malformed JSON");
});

Deno.test("parseWorkload() names a missing field, negative tokens and an unknown dtype", async () => {
  const { dtype: _, ...missing } = GOOD;
  assert.match((await failure(JSON.stringify(missing))).message, /w\.jsonl:1: dtype/);
  const negative = await failure(`\n${JSON.stringify({ ...GOOD, tokens: -1 })}`);
  assert.equal(negative.line, 2);
  assert.match(negative.message, /tokens/);
  assert.match((await failure(JSON.stringify({ ...GOOD, dtype: "float128" }))).message, /dtype/);
  assert.match((await failure(JSON.stringify({ ...GOOD, extra: 1 }))).message, /extra/);
  assert.match(
    (await failure(JSON.stringify({ ...GOOD, tenant_id: "x..y" }))).message,
    /tenant_id: it contains \.\./,
  );
  assert.match(
    (await failure(JSON.stringify({ ...GOOD, layers: 1e6, kv_heads: 1e6 }))).message,
    /larger than/,
  );
});

Deno.test("parseWorkload() rejects invalid UTF-8 with its line", async () => {
  const bytes = new Uint8Array([
    ...new TextEncoder().encode(JSON.stringify(GOOD) + "\n"),
    0xff,
    0x0a,
  ]);
  const error = await Array.fromAsync(parseWorkload(ReadableStream.from([bytes]), "w")).catch((e) =>
    e
  );
  assert.ok(error instanceof WorkloadError);
  assert.match(error.message, /invalid UTF-8/);
});
