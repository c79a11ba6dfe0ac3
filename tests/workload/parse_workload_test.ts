import assert from "node:assert/strict";
import fc from "fast-check";
import {
  MAX_WORKLOAD_LINE_BYTES,
  parseWorkload,
  parseWorkloadLine,
  WorkloadError,
} from "../../lib/workload/mod.ts";
import { schemaRequest } from "../../lib/workload/_request_schema.ts";

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

Deno.test("parseWorkload() rejects a duplicate key, however it is spelled", async () => {
  const line = JSON.stringify(GOOD).replace(
    '{"tenant_id":"acme"',
    '{"tenant_id":"evil","tenant_id":"acme"',
  );
  assert.match((await failure(line)).message, /w\.jsonl:1: duplicate key "tenant_id"/);
  const escaped = JSON.stringify(GOOD).replace("}", ',"dty\\u0070e" : "int8"}');
  assert.match((await failure(`\n${escaped}`)).message, /w\.jsonl:2: duplicate key "dtype"/);
  // Escaped quotes and backslashes before a closing quote: the strings end where JSON says.
  const quoted = JSON.stringify(GOOD).replace("{", '{"a\\"b":"\\\\","a\\"b":"\\"",');
  assert.match((await failure(quoted)).message, /w\.jsonl:1: duplicate key "a\\"b"/);
  // The same text as a value, or a key inside a string, is not a duplicate.
  const valued = await failure(JSON.stringify({ ...GOOD, model_id: "tenant_id", x: '"dtype":' }));
  assert.match(valued.message, /Unrecognized key: "x"/);
});

// A source that hands out chunks of `size` bytes of one line on demand and counts how many
// were taken; it fails after four times the cap, so a parser without one fails fast.
function endlessLine(size: number) {
  let pulled = 0;
  const chunk = new TextEncoder().encode('{"tenant_id":"' + "a".repeat(size)).subarray(0, size);
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      if (pulled * size > 4 * MAX_WORKLOAD_LINE_BYTES) controller.error(new Error("Read too far"));
      else controller.enqueue(chunk.slice());
    },
  }, { highWaterMark: 0 });
  return { source, pulled: () => pulled };
}

Deno.test("parseWorkload() refuses a line over the cap after reading just past the cap", async () => {
  const chunk = 1024;
  const { source, pulled } = endlessLine(chunk);
  const error = await Array.fromAsync(parseWorkload(source, "w")).catch((e) => e);
  assert.ok(error instanceof WorkloadError, String(error));
  assert.equal(error.line, 1);
  assert.match(error.message, new RegExp(`line longer than ${MAX_WORKLOAD_LINE_BYTES} bytes`));
  // The old splitter read the whole input (here: forever), re-splitting the growing line
  // at every chunk.
  assert.equal(pulled(), MAX_WORKLOAD_LINE_BYTES / chunk + 1);
});

Deno.test("parseWorkload() reassembles lines split anywhere, up to the cap", async () => {
  const lines = [
    JSON.stringify(GOOD),
    JSON.stringify({ ...GOOD, request_id: "r2", model_id: "m".repeat(100) }),
    // A line of exactly the cap: padded with spaces, which JSON allows.
    JSON.stringify({ ...GOOD, request_id: "r3" }).padEnd(MAX_WORKLOAD_LINE_BYTES, " "),
  ];
  const bytes = new TextEncoder().encode(lines.join("\n"));
  for (const size of [1, 3, 4096, bytes.length]) {
    const chunks = [];
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
    const requests = await Array.fromAsync(parseWorkload(ReadableStream.from(chunks), "w"));
    assert.deepEqual(requests.map((r) => r.request_id), ["r1", "r2", "r3"], `chunks of ${size}`);
  }
  // A character of two bytes split between chunks is decoded whole, not as invalid UTF-8.
  const accented = new TextEncoder().encode(JSON.stringify({ ...GOOD, tenant_id: "é" }));
  const split = ReadableStream.from([...accented].map((byte) => new Uint8Array([byte])));
  const error = await Array.fromAsync(parseWorkload(split, "w")).catch((e) => e);
  assert.match(error.message, /w:1: tenant_id: only/);
  const over = `${lines[2]} \n`;
  assert.match((await failure(over)).message, /w\.jsonl:1: line longer than/);
});

Deno.test("parseWorkloadLine() answers every line as the zod schema does, bounds and types included", async () => {
  const values: Record<string, unknown[]> = {
    tenant_id: ["acme", "", "a..b", "é", "x".repeat(256), "x".repeat(257), 1, null],
    tokens: [0, -0, 1, 10_000_000, 10_000_001, -1, 1.5, "16", null, true, 1e400],
    layers: [1, 0, 1_000_000, 1_000_001, 2.5, "1", [], {}],
    head_dim: [128, 0, -3],
    dtype: ["float16", "int8", "float128", "toString", "__proto__", 2, null],
  };
  const candidates: Record<string, unknown>[] = [
    GOOD,
    { ...GOOD, extra: 1 },
    { ...GOOD, layers: 1e6, kv_heads: 1e6 },
    { ...GOOD, layers: 1e6, kv_heads: 8, tokens: 1000, head_dim: 1 },
  ];
  for (const [field, options] of Object.entries(values)) {
    for (const value of options) candidates.push({ ...GOOD, [field]: value });
    const { [field]: _, ...missing } = GOOD as Record<string, unknown>;
    candidates.push(missing);
  }
  const texts = candidates.map((c) => JSON.stringify(c));
  texts.push("[]", "null", "7", '"x"', JSON.stringify(GOOD).replace("{", '{"__proto__":{},'));
  for (const text of texts) {
    const schema = schemaRequest(JSON.parse(text));
    const ours = await parseWorkloadLine(text, { source: "w", line: 1 }).catch((e) => e);
    if ("request" in schema) assert.deepEqual(ours, schema.request, text);
    else {
      assert.ok(ours instanceof WorkloadError, text);
      assert.equal(ours.message, `Invalid workload w:1: ${schema.why}`, text);
    }
  }
});

Deno.test("parseWorkload() reads a file directly, lines split across its reads", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // 64 KiB reads: 1,000 lines of ~130 bytes cross the read boundary a few times.
    const lines = Array.from(
      { length: 1000 },
      (_, i) => JSON.stringify({ ...GOOD, request_id: `r${i}` }),
    );
    await Deno.writeTextFile(`${dir}/w.jsonl`, lines.join("\n") + "\n");
    using file = await Deno.open(`${dir}/w.jsonl`);
    const requests = await Array.fromAsync(parseWorkload(file, "w.jsonl"));
    assert.deepEqual(requests.map((r) => r.request_id), lines.map((_, i) => `r${i}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** What parsing `chunks` yields: the request ids, then the error's message if one ends it. */
async function outcome(chunks: Uint8Array[]): Promise<string[]> {
  const seen: string[] = [];
  try {
    for await (const request of parseWorkload(ReadableStream.from(chunks), "w")) {
      seen.push(request.request_id);
    }
  } catch (error) {
    seen.push(error instanceof WorkloadError ? error.message : `unexpected: ${error}`);
  }
  return seen;
}

Deno.test("parseWorkload() gives the same requests and errors whether a chunk holds one line or many", async () => {
  const encoder = new TextEncoder();
  const line = fc.oneof(
    fc.nat(999).map((i) => encoder.encode(JSON.stringify({ ...GOOD, request_id: `r${i}` }))),
    fc.constant(new Uint8Array()),
    fc.constant(encoder.encode("   \r")),
    fc.nat(99).map((i) =>
      encoder.encode(`\ufeff${JSON.stringify({ ...GOOD, request_id: `b${i}` })}\r`)
    ),
    fc.constant(encoder.encode("{not json")),
    fc.constant(new Uint8Array([0x7b, 0xff, 0x7d])),
    fc.constant(new Uint8Array(MAX_WORKLOAD_LINE_BYTES + 1).fill(0x20)),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(line, { maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 8 }),
      async (lines, cuts) => {
        const bytes = new Uint8Array(lines.reduce((n, l) => n + l.length + 1, 0));
        let at = 0;
        for (const l of lines) {
          bytes.set(l, at);
          bytes[at + l.length] = 0x0a;
          at += l.length + 1;
        }
        // A chunk per line: each line decoded on its own, as before lines were decoded together.
        const expected = await outcome(lines.map((l) => Uint8Array.from([...l, 0x0a])));
        const chunks: Uint8Array[] = [];
        for (let start = 0, i = 0; start < bytes.length; i++) {
          const end = Math.min(bytes.length, start + cuts[i % cuts.length]! * 37);
          chunks.push(bytes.slice(start, end));
          start = end;
        }
        assert.deepEqual(await outcome(chunks), expected);
        assert.deepEqual(await outcome([bytes]), expected);
      },
    ),
    { seed: 20261202, numRuns: 150 },
  );
});
