import assert from "node:assert/strict";
import fc from "fast-check";
import { gunzipSync } from "node:zlib";
import { gzipPrefix, gzipWithTail } from "../../lib/server/_gzip.ts";
import { renderSelfMetrics } from "../../lib/server/_self_metrics.ts";

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test("gzipWithTail() is one gzip member decoding to body + tail (property, seed 7)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 70_000 }),
      fc.uint8Array({ maxLength: 2_000 }),
      async (body, tail) => {
        const zipped = gzipWithTail(gzipPrefix(body), tail);
        assert.deepEqual(new Uint8Array(gunzipSync(zipped)), concat(body, tail));
        // The web platform's decoder rejects trailing data, so this also proves one member.
        const stream = ReadableStream.from([zipped]).pipeThrough(new DecompressionStream("gzip"));
        assert.deepEqual(
          new Uint8Array(await new Response(stream).arrayBuffer()),
          concat(body, tail),
        );
      },
    ),
    { seed: 7, numRuns: 60 },
  );
});

Deno.test("gzipWithTail() reuses one prefix for many tails", () => {
  const body = new TextEncoder().encode("kvh_quarantined_buffers 0\n".repeat(100));
  const prefix = gzipPrefix(body);
  // 150 000 bytes: three stored blocks, the first two at the 65 535-byte maximum.
  for (const tail of ["", "x 1\n", "y 2\n".repeat(50), "z".repeat(150_000)]) {
    const bytes = new TextEncoder().encode(tail);
    assert.deepEqual(new Uint8Array(gunzipSync(gzipWithTail(prefix, bytes))), concat(body, bytes));
  }
});

Deno.test("renderSelfMetrics() writes every count and leaves out what the source lacks", () => {
  const counts = { ok: 12, unavailable: 3, unauthorized: 4, bodyTooLarge: 5, headersTooLarge: 6 };
  const text = renderSelfMetrics(counts, { reloads: 7, reloadFailures: 8, mtimeMs: 1500 });
  assert.ok(text.startsWith("# HELP kvh_exporter_scrapes_total "));
  for (
    const line of [
      'kvh_exporter_scrapes_total{code="200"} 12',
      'kvh_exporter_scrapes_total{code="503"} 3',
      'kvh_exporter_rejected_requests_total{code="401"} 4',
      'kvh_exporter_rejected_requests_total{code="413"} 5',
      'kvh_exporter_rejected_requests_total{code="431"} 6',
      "kvh_exporter_reloads_total 7",
      "kvh_exporter_reload_failures_total 8",
      "kvh_exporter_source_mtime_seconds 1.5",
    ]
  ) assert.ok(text.includes(`\n${line}\n`), line);
  assert.ok(text.endsWith("\n"));
  const bare = renderSelfMetrics(counts, {});
  assert.ok(!bare.includes("reload"));
  assert.ok(!bare.includes("mtime"));
});
