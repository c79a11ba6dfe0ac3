import assert from "node:assert/strict";
import { queryFleetMetrics } from "../../lib/gate/prometheus_source.ts";
import { KvhError } from "../../lib/errors.ts";

type Vector = Record<string, number | string>;

/** A fake Prometheus: per metric name, a value per instance; records the queries it saw. */
function fakePrometheus(
  series: Record<string, Vector>,
  seen: string[] = [],
): typeof fetch {
  return (input) => {
    const url = new URL(String(input));
    assert.equal(url.pathname.endsWith("/api/v1/query"), true);
    const query = url.searchParams.get("query")!;
    seen.push(query);
    const name = Object.keys(series).find((n) => new RegExp(`\\b${n}\\b`).test(query));
    const result = Object.entries(name === undefined ? {} : series[name]!).map((
      [instance, value],
    ) => ({ metric: { instance }, value: [1700000000, String(value)] }));
    return Promise.resolve(
      Response.json({ status: "success", data: { resultType: "vector", result } }),
    );
  };
}

const HEALTHY: Record<string, Vector> = {
  up: { "a:9101": 1, "b:9101": 1 },
  kvh_coverage_min_ratio: { "a:9101": 1, "b:9101": 0.9995 },
  kvh_unsanitized_buffers: { "a:9101": 0, "b:9101": 0 },
  kvh_quarantined_buffers: { "a:9101": 0, "b:9101": 0 },
};

async function rejects(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KvhError);
    assert.equal(error.code, code);
    assert.equal(error.exitCode, 1);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("queryFleetMetrics() reduces every node to the worst value and names the node", async () => {
  const seen: string[] = [];
  const metrics = await queryFleetMetrics("http://prom:9090/", {
    fetch: fakePrometheus({
      ...HEALTHY,
      kvh_quarantined_buffers: { "a:9101": 1, "b:9101": 4, "c:9101": 0 },
      kvh_sanitize_duration_p95_seconds: { "a:9101": 0.002, "b:9101": 0.0125, "c:9101": 0 },
      kvh_reuse_rate: { "a:9101": 0.1, "b:9101": 0.05, "c:9101": 0 },
      up: { "a:9101": 1, "b:9101": 1, "c:9101": 1 },
      kvh_coverage_min_ratio: { "a:9101": 1, "b:9101": 0.9995, "c:9101": 0.999 },
      kvh_unsanitized_buffers: { "a:9101": 0, "b:9101": 0, "c:9101": 0 },
    }, seen),
  });
  assert.deepEqual(metrics, {
    min_coverage_pct: 99.9,
    unsanitized_regions_count: 0,
    quarantine_count: 5,
    sanitize_duration_p95_ms: 12.5,
    reuse_rate: 0.1,
    sources: {
      min_coverage_pct: "c:9101",
      unsanitized_regions_count: "3 nodes",
      quarantine_count: "b:9101 and 1 more",
      sanitize_duration_p95_ms: "b:9101",
      reuse_rate: "a:9101",
    },
  });
  assert.ok(seen.includes('up{job="kvh"}'));
  assert.ok(seen.includes('min by (instance) (kvh_coverage_min_ratio{job="kvh"})'));
  assert.ok(seen.includes('sum by (instance) (kvh_quarantined_buffers{job="kvh"})'));
  assert.ok(seen.includes('max by (instance) (kvh_sanitize_duration_p95_seconds{job="kvh"})'));
});

Deno.test("queryFleetMetrics() leaves optional metrics out when no node reports them", async () => {
  const metrics = await queryFleetMetrics("http://prom:9090", { fetch: fakePrometheus(HEALTHY) });
  assert.equal(metrics.sanitize_duration_p95_ms, undefined);
  assert.equal(metrics.reuse_rate, undefined);
  assert.equal(metrics.quarantine_count, 0);
  assert.equal(metrics.sources?.quarantine_count, "2 nodes");
});

Deno.test("queryFleetMetrics() applies the selector and keeps a path prefix of the URL", async () => {
  const urls: string[] = [];
  const inner = fakePrometheus(HEALTHY);
  await queryFleetMetrics("https://mimir.example/prometheus?x=1", {
    selector: '{job="kvh",env="prod"}',
    fetch: (input, init) => {
      urls.push(String(input));
      return inner(input, init);
    },
  });
  const first = new URL(urls[0]!);
  assert.equal(first.pathname, "/prometheus/api/v1/query");
  assert.equal(first.searchParams.get("query"), 'up{job="kvh",env="prod"}');
  assert.equal(first.searchParams.get("x"), null);
});

Deno.test("queryFleetMetrics() accepts an empty selector", async () => {
  const seen: string[] = [];
  await queryFleetMetrics("http://prom:9090", {
    selector: "",
    fetch: fakePrometheus(HEALTHY, seen),
  });
  assert.ok(seen.includes("up"));
  assert.ok(seen.includes("sum by (instance) (kvh_unsanitized_buffers)"));
});

Deno.test("queryFleetMetrics() fails when a required metric has no series", async () => {
  const { kvh_quarantined_buffers: _, ...rest } = HEALTHY;
  await rejects(
    queryFleetMetrics("http://prom:9090", { fetch: fakePrometheus(rest) }),
    "prometheus_no_series",
    /^No series for kvh_quarantined_buffers\{job="kvh"\} in Prometheus at http:\/\/prom:9090/,
  );
});

Deno.test("queryFleetMetrics() fails when a scrape target is down", async () => {
  await rejects(
    queryFleetMetrics("http://prom:9090", {
      fetch: fakePrometheus({ ...HEALTHY, up: { "a:9101": 1, "b:9101": 0 } }),
    }),
    "prometheus_targets_down",
    /1 of 2 targets \{job="kvh"\} are down in Prometheus \(b:9101\)/,
  );
});

Deno.test("queryFleetMetrics() fails when an up node lacks a metric", async () => {
  await rejects(
    queryFleetMetrics("http://prom:9090", {
      fetch: fakePrometheus({
        ...HEALTHY,
        kvh_sanitize_duration_p95_seconds: { "a:9101": 0.001 },
      }),
    }),
    "prometheus_series_missing",
    /no kvh_sanitize_duration_p95_seconds from b:9101/,
  );
});

Deno.test("queryFleetMetrics() fails when Prometheus cannot be reached", async () => {
  await rejects(
    queryFleetMetrics("http://prom:9090", {
      fetch: () => Promise.reject(new TypeError("error sending request: connection refused")),
    }),
    "prometheus_unreachable",
    /^Cannot reach Prometheus at http:\/\/prom:9090: error sending request: connection refused$/,
  );
});

Deno.test("queryFleetMetrics() fails when Prometheus does not answer in time", async () => {
  await rejects(
    queryFleetMetrics("http://prom:9090", {
      timeoutMs: 10,
      fetch: (_input, init) =>
        new Promise((_resolve, reject) => {
          init?.signal?.addEventListener("abort", () => reject(init.signal!.reason));
        }),
    }),
    "prometheus_unreachable",
    /no answer within 10 ms/,
  );
});

Deno.test("queryFleetMetrics() reports Prometheus's own error for a rejected query", async () => {
  await rejects(
    queryFleetMetrics("http://prom:9090", {
      fetch: () =>
        Promise.resolve(
          Response.json({ status: "error", errorType: "bad_data", error: "parse error" }, {
            status: 400,
          }),
        ),
    }),
    "prometheus_error",
    /rejected query up\{job="kvh"\}: parse error$/,
  );
  await rejects(
    queryFleetMetrics("http://prom:9090", {
      fetch: () => Promise.resolve(new Response("<html>bad gateway</html>", { status: 502 })),
    }),
    "prometheus_error",
    /HTTP 502 without a Prometheus answer$/,
  );
  await rejects(
    queryFleetMetrics("http://prom:9090", {
      fetch: () =>
        Promise.resolve(Response.json({ status: "success", data: { resultType: "matrix" } })),
    }),
    "prometheus_error",
    /with matrix, expected a vector$/,
  );
});

Deno.test("queryFleetMetrics() rejects a bad URL or selector before any request", async () => {
  const fail: typeof fetch = () => Promise.reject(new Error("must not be called"));
  await rejects(queryFleetMetrics("prom:9090", { fetch: fail }), "flag_invalid", /--prometheus/);
  await rejects(queryFleetMetrics("not a url", { fetch: fail }), "flag_invalid", /--prometheus/);
  await rejects(
    queryFleetMetrics("http://prom:9090", { selector: 'job="kvh"', fetch: fail }),
    "selector_invalid",
    /Invalid --selector/,
  );
});

Deno.test("queryFleetMetrics() names a node without an instance label by its labels", async () => {
  const fake: typeof fetch = () =>
    Promise.resolve(Response.json({
      status: "success",
      data: { resultType: "vector", result: [{ metric: { pod: "p1" }, value: [0, "1"] }] },
    }));
  const metrics = await queryFleetMetrics("http://prom:9090", { fetch: fake });
  assert.equal(metrics.sources?.min_coverage_pct, '{"pod":"p1"}');
});
