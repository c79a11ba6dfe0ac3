import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { acceptsGzip, createApp, PROMETHEUS_CONTENT_TYPE } from "../../lib/server/app.ts";
import { FileMetricsSource } from "../../lib/server/metrics_source.ts";
import type { MetricsSource } from "../../lib/server/types.ts";

const FILE_TEXT = [
  "# HELP kvh_coverage_min_ratio Lowest verified scrub coverage of any buffer, 0-1.",
  "# TYPE kvh_coverage_min_ratio gauge",
  "kvh_coverage_min_ratio 1",
  "# HELP kvh_quarantined_buffers Buffers currently quarantined.",
  "# TYPE kvh_quarantined_buffers gauge",
  "kvh_quarantined_buffers 0",
  "",
].join("\n");

async function withFile(
  text: string | null,
  fn: (path: string, source: FileMetricsSource) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.prom`;
  try {
    if (text !== null) await Deno.writeTextFile(path, text);
    using source = new FileMetricsSource(path, { watch: false, statIntervalMs: 0 });
    await fn(path, source);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("createApp() serves the file's lines unchanged, then the exporter's own", async () => {
  await withFile(FILE_TEXT, async (_path, source) => {
    const res = await createApp({ source }).request("/metrics");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
    assert.equal(res.headers.get("content-encoding"), null);
    const text = await res.text();
    assert.ok(text.startsWith(FILE_TEXT));
    assert.equal(sample(text, 'kvh_exporter_scrapes_total{code="200"}'), 1);
    assert.equal(sample(text, "kvh_exporter_reloads_total"), 1);
    assert.equal(sample(text, "kvh_exporter_reload_failures_total"), 0);
    assert.ok(sample(text, "kvh_exporter_source_mtime_seconds")! > 1_600_000_000);
  });
});

Deno.test("createApp() counts every scrape in kvh_exporter_scrapes_total", async () => {
  const app = createApp({ source: () => FILE_TEXT, selfMetricsMaxAgeMs: 0 });
  await (await app.request("/metrics")).body?.cancel();
  await (await app.request("/metrics")).body?.cancel();
  const text = await (await app.request("/metrics")).text();
  assert.equal(sample(text, 'kvh_exporter_scrapes_total{code="200"}'), 3);
});

Deno.test("createApp() reuses one rendering within selfMetricsMaxAgeMs, not across a reload", async () => {
  let text = FILE_TEXT;
  const app = createApp({ source: () => text, selfMetricsMaxAgeMs: 3_600_000 });
  const first = await (await app.request("/metrics")).text();
  const second = await (await app.request("/metrics")).text();
  assert.equal(second, first);
  assert.equal(sample(second, 'kvh_exporter_scrapes_total{code="200"}'), 1);
  text = "kvh_quarantined_buffers 7\n";
  const changed = await (await app.request("/metrics")).text();
  assert.ok(changed.startsWith(text));
  assert.equal(sample(changed, 'kvh_exporter_scrapes_total{code="200"}'), 3);
});

Deno.test("createApp() adds a newline before its own lines when the file lacks one", async () => {
  const app = createApp({ source: () => "kvh_quarantined_buffers 0" });
  const text = await (await app.request("/metrics")).text();
  assert.ok(text.startsWith("kvh_quarantined_buffers 0\n# HELP kvh_exporter_scrapes_total "));
});

Deno.test("createApp() serves bytes that are not UTF-8 unchanged, gzipped or not", async () => {
  const body = new Uint8Array([0x61, 0x20, 0x31, 0x20, 0x23, 0xff, 0xfe, 0x0a]);
  const source: MetricsSource = { snapshot: () => ({ ok: true, body }) };
  const app = createApp({ source, selfMetricsMaxAgeMs: 3_600_000 });
  const plain = new Uint8Array(await (await app.request("/metrics")).arrayBuffer());
  assert.deepEqual(plain.subarray(0, body.length), body);
  const zipped = await app.request("/metrics", { headers: { "accept-encoding": "gzip" } });
  const unzipped = new Uint8Array(gunzipSync(new Uint8Array(await zipped.arrayBuffer())));
  assert.deepEqual(unzipped.subarray(0, body.length), body);
  assert.deepEqual(unzipped, plain);
});

Deno.test("createApp() serves exactly the file when selfMetrics is false", async () => {
  const app = createApp({ source: () => FILE_TEXT, selfMetrics: false });
  assert.equal(await (await app.request("/metrics")).text(), FILE_TEXT);
});

Deno.test("createApp() answers 503 with a reason while the file is missing, 200 once it returns", async () => {
  await withFile(null, async (path, source) => {
    const app = createApp({ source });
    const missing = await app.request("/metrics");
    assert.equal(missing.status, 503);
    assert.equal(await missing.text(), "Metrics file not found\n");
    await Deno.writeTextFile(path, FILE_TEXT);
    const back = await app.request("/metrics");
    assert.equal(back.status, 200);
    const text = await back.text();
    assert.ok(text.startsWith(FILE_TEXT));
    assert.equal(sample(text, 'kvh_exporter_scrapes_total{code="503"}'), 1);
  });
});

Deno.test("createApp() never reveals the file's path in a 503", async () => {
  await withFile(null, async (path, source) => {
    const text = await (await createApp({ source }).request("/metrics")).text();
    assert.ok(!text.includes(path));
  });
});

Deno.test("createApp() answers HEAD /metrics with headers and no body", async () => {
  const res = await createApp({ source: () => FILE_TEXT }).request("/metrics", { method: "HEAD" });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
  assert.equal(await res.text(), "");
});

Deno.test("createApp() answers GET and HEAD /healthz with ok", async () => {
  const app = createApp({ source: () => "" });
  const res = await app.request("/healthz");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok\n");
  assert.equal((await app.request("/healthz", { method: "HEAD" })).status, 200);
});

for (
  const path of [
    "/",
    "/metrics/",
    "/metrics.prom",
    "/forensics/metrics.prom",
    "/../../etc/passwd",
    "/%2e%2e/etc/passwd",
    "/healthz/x",
  ]
) {
  Deno.test(`createApp() answers 404 for ${path}`, async () => {
    const res = await createApp({ source: () => FILE_TEXT }).request(path);
    assert.equal(res.status, 404);
    assert.equal(await res.text(), "Not Found\n");
  });
}

Deno.test("createApp() answers 405 with Allow for any method but GET and HEAD, on any path", async () => {
  const app = createApp({ source: () => FILE_TEXT });
  for (const path of ["/metrics", "/healthz", "/elsewhere"]) {
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"]) {
      const res = await app.request(path, { method });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), "GET, HEAD");
      await res.body?.cancel();
    }
  }
});

Deno.test("createApp() gzips when the client accepts gzip, decoding to the plain body", async () => {
  const app = createApp({ source: () => FILE_TEXT, selfMetricsMaxAgeMs: 0 });
  const zipped = await app.request("/metrics", { headers: { "accept-encoding": "gzip, br" } });
  assert.equal(zipped.status, 200);
  assert.equal(zipped.headers.get("content-encoding"), "gzip");
  assert.equal(zipped.headers.get("vary"), "accept-encoding");
  const text = new TextDecoder().decode(gunzipSync(new Uint8Array(await zipped.arrayBuffer())));
  assert.ok(text.startsWith(FILE_TEXT));
  assert.equal(sample(text, 'kvh_exporter_scrapes_total{code="200"}'), 1);
  // A second scrape reuses the cached deflate of the body with a new tail.
  const again = await app.request("/metrics", { headers: { "accept-encoding": "gzip" } });
  const stream = again.body!.pipeThrough(new DecompressionStream("gzip"));
  const text2 = await new Response(stream).text();
  assert.ok(text2.startsWith(FILE_TEXT));
  assert.equal(sample(text2, 'kvh_exporter_scrapes_total{code="200"}'), 2);
});

Deno.test("createApp() gzips the file alone when selfMetrics is false", async () => {
  const app = createApp({ source: () => FILE_TEXT, selfMetrics: false });
  const res = await app.request("/metrics", { headers: { "accept-encoding": "gzip" } });
  const text = new TextDecoder().decode(gunzipSync(new Uint8Array(await res.arrayBuffer())));
  assert.equal(text, FILE_TEXT);
});

Deno.test("createApp() does not gzip when gzip is refused with q=0", async () => {
  const app = createApp({ source: () => FILE_TEXT });
  const res = await app.request("/metrics", { headers: { "accept-encoding": "gzip;q=0, *" } });
  assert.equal(res.headers.get("content-encoding"), null);
  assert.ok((await res.text()).startsWith(FILE_TEXT));
});

Deno.test("acceptsGzip() follows the q-values of Accept-Encoding", () => {
  const cases: [string | null, boolean][] = [
    [null, false],
    ["", false],
    ["identity", false],
    ["gzip", true],
    ["GZIP", true],
    ["x-gzip", true],
    ["deflate, gzip;q=1.0, *;q=0.5", true],
    ["gzip;q=0", false],
    ["gzip; q=0.000", false],
    ["*", true],
    ["*;q=0", false],
    ["br, *", true],
    ["gzip;q=0, *", false],
  ];
  for (const [header, want] of cases) assert.equal(acceptsGzip(header), want, String(header));
});

Deno.test("createApp() requires the bearer token on /metrics when one is set", async () => {
  const app = createApp({ source: () => FILE_TEXT, token: "s3cret-token" });
  const none = await app.request("/metrics");
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="kvh"');
  await none.body?.cancel();
  const wrong = await app.request("/metrics", { headers: { authorization: "Bearer nope" } });
  assert.equal(wrong.status, 401);
  assert.match(wrong.headers.get("www-authenticate")!, /error="invalid_token"/);
  await wrong.body?.cancel();
  const malformed = await app.request("/metrics", { headers: { authorization: "Basic a:b" } });
  assert.equal(malformed.status, 400);
  assert.match(malformed.headers.get("www-authenticate")!, /error="invalid_request"/);
  await malformed.body?.cancel();
  const right = await app.request("/metrics", {
    headers: { authorization: "Bearer s3cret-token" },
  });
  assert.equal(right.status, 200);
  const text = await right.text();
  assert.equal(sample(text, 'kvh_exporter_rejected_requests_total{code="401"}'), 3);
  assert.equal(sample(text, 'kvh_exporter_scrapes_total{code="200"}'), 1);
});

Deno.test("createApp() leaves /healthz open when a token is set", async () => {
  const app = createApp({ source: () => "", token: new TextEncoder().encode("s3cret") });
  assert.equal((await app.request("/healthz")).status, 200);
});

Deno.test("createApp() throws TypeError for a token a bearer header cannot carry", () => {
  assert.throws(() => createApp({ source: () => "", token: "has space" }), TypeError);
  assert.throws(() => createApp({ source: () => "", token: "" }), TypeError);
});

Deno.test("createApp() throws TypeError for a negative limit", () => {
  assert.throws(() => createApp({ source: () => "", maxHeaderBytes: -1 }), TypeError);
  assert.throws(() => createApp({ source: () => "", maxBodyBytes: Number.NaN }), TypeError);
});

Deno.test("createApp() answers 431 when the headers exceed maxHeaderBytes", async () => {
  const app = createApp({ source: () => FILE_TEXT, maxHeaderBytes: 1024 });
  for (const path of ["/metrics", "/healthz", "/nope"]) {
    const res = await app.request(path, { headers: { "x-big": "a".repeat(2000) } });
    assert.equal(res.status, 431, path);
    await res.body?.cancel();
  }
  const long = await app.request(`/metrics?${"q".repeat(2000)}`);
  assert.equal(long.status, 431);
  await long.body?.cancel();
  const text = await (await app.request("/metrics")).text();
  assert.equal(sample(text, 'kvh_exporter_rejected_requests_total{code="431"}'), 4);
});

Deno.test("createApp() answers 413 for a body larger than maxBodyBytes", async () => {
  const app = createApp({ source: () => FILE_TEXT, maxBodyBytes: 16 });
  // Request objects do not fill in Content-Length; Deno.serve passes the client's through.
  const big = await app.request("/metrics", {
    method: "POST",
    body: "x".repeat(17),
    headers: { "content-length": "17" },
  });
  assert.equal(big.status, 413);
  await big.body?.cancel();
  const small = await app.request("/metrics", {
    method: "POST",
    body: "x".repeat(16),
    headers: { "content-length": "16" },
  });
  assert.equal(small.status, 405);
  await small.body?.cancel();
});

Deno.test("createApp() answers 413 for a body of unknown length", async () => {
  const app = createApp({ source: () => FILE_TEXT });
  const body = ReadableStream.from([new Uint8Array(4)]);
  const res = await app.request(
    new Request("http://localhost/nope", { method: "POST", body, duplex: "half" } as RequestInit),
  );
  assert.equal(res.status, 413);
  await res.body?.cancel();
});

Deno.test("createApp() serves an async live source and re-encodes only changed text", async () => {
  let value = 0;
  const app = createApp({ source: () => Promise.resolve(`kvh_quarantined_buffers ${value}\n`) });
  assert.ok(
    (await (await app.request("/metrics")).text()).startsWith("kvh_quarantined_buffers 0\n"),
  );
  value = 3;
  assert.ok(
    (await (await app.request("/metrics")).text()).startsWith("kvh_quarantined_buffers 3\n"),
  );
});

Deno.test("createApp() answers 503 and logs when a live source throws or rejects", async () => {
  const lines: string[] = [];
  let mode: "throw" | "reject" | "ok" = "throw";
  const app = createApp({
    log: (line) => lines.push(line),
    source: () => {
      if (mode === "throw") throw new Error("registry closed");
      if (mode === "reject") return Promise.reject(new Error("registry gone"));
      return "kvh_quarantined_buffers 0\n";
    },
  });
  const thrown = await app.request("/metrics");
  assert.equal(thrown.status, 503);
  assert.equal(await thrown.text(), "Metrics source failed\n");
  mode = "reject";
  assert.equal((await app.request("/metrics")).status, 503);
  assert.deepEqual(lines, [
    "Cannot read live metrics: registry closed",
    "Cannot read live metrics: registry gone",
  ]);
  mode = "ok";
  const text = await (await app.request("/metrics")).text();
  assert.equal(sample(text, "kvh_exporter_reload_failures_total"), 2);
});

Deno.test("createApp() answers a bare 500 and logs when a source fails unexpectedly", async () => {
  const lines: string[] = [];
  const source: MetricsSource = {
    snapshot() {
      throw new Error("secret detail");
    },
  };
  const res = await createApp({ source, log: (line) => lines.push(line) }).request("/metrics");
  assert.equal(res.status, 500);
  assert.equal(await res.text(), "Internal Server Error\n");
  assert.deepEqual(lines, ["Internal error serving GET /metrics: secret detail"]);
});

const HAVE_PROMTOOL = existsSync("/usr/bin/promtool");

Deno.test({
  name: `createApp() output passes promtool check metrics${
    HAVE_PROMTOOL ? "" : " (skipped: /usr/bin/promtool is not installed)"
  }`,
  ignore: !HAVE_PROMTOOL,
}, async () => {
  const app = createApp({ source: () => FILE_TEXT, token: "t" });
  await app.request("/metrics");
  const res = await app.request("/metrics", { headers: { authorization: "Bearer t" } });
  const child = new Deno.Command("/usr/bin/promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await res.body!.pipeTo(child.stdin);
  const { code, stdout, stderr } = await child.output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, out);
  assert.equal(out.trim(), "");
});

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("createApp() applies limits, then the method check, then the token, as middleware", async () => {
  const app = createApp({ source: () => FILE_TEXT, token: "s3cret" });
  const big = await app.request("/metrics", { headers: { "x-pad": "a".repeat(9000) } });
  assert.equal(big.status, 431);
  await big.body?.cancel();
  const post = await app.request("/metrics", { method: "POST" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
  const anonymous = await app.request("/metrics");
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers.get("www-authenticate"), 'Bearer realm="kvh"');
  await anonymous.body?.cancel();
  const text = await (await app.request("/metrics", {
    headers: { authorization: "Bearer s3cret", "accept-encoding": "identity" },
  })).text();
  assert.equal(sample(text, 'kvh_exporter_rejected_requests_total{code="401"}'), 1);
  assert.equal(sample(text, 'kvh_exporter_rejected_requests_total{code="431"}'), 1);
});

Deno.test("createApp() gzips the cached rendering once and serves the same bytes until it ages", async () => {
  const app = createApp({ source: () => FILE_TEXT, selfMetricsMaxAgeMs: 60_000 });
  const gzip = { headers: { "accept-encoding": "gzip" } };
  const first = new Uint8Array(await (await app.request("/metrics", gzip)).arrayBuffer());
  const second = new Uint8Array(await (await app.request("/metrics", gzip)).arrayBuffer());
  assert.deepEqual(second, first);
  const plain = await (await app.request("/metrics")).text();
  assert.equal(new TextDecoder().decode(gunzipSync(first)), plain);
});
