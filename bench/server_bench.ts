/**
 * In-process cost of one request through the metrics app (no sockets): `deno task bench`.
 * The load test over HTTP with wrk is `bench/server_bench.sh`; its results are in
 * `bench/results/server.md`.
 */
import { createApp } from "../lib/server/app.ts";

const text = "# TYPE kvh_policy_violations_total counter\n" +
  Array.from({ length: 150 }, (_, i) => `kvh_policy_violations_total{policy="p${i}"} ${i}\n`)
    .join("");
const app = createApp({ source: () => text });
const tokenApp = createApp({ source: () => text, token: "bench-token" });
const fresh = createApp({ source: () => text, selfMetricsMaxAgeMs: 0 });

function request(headers: Record<string, string> = {}): Request {
  return new Request("http://127.0.0.1:9101/metrics", {
    headers: { host: "127.0.0.1", ...headers },
  });
}

Deno.bench("createApp() GET /metrics", { baseline: true }, async () => {
  await (await app.fetch(request())).arrayBuffer();
});
Deno.bench("createApp() GET /metrics, gzip", async () => {
  await (await app.fetch(request({ "accept-encoding": "gzip" }))).arrayBuffer();
});
Deno.bench("createApp() GET /metrics, bearer token", async () => {
  await (await tokenApp.fetch(request({ authorization: "Bearer bench-token" }))).arrayBuffer();
});
Deno.bench("createApp() GET /metrics, self-metrics rendered per request", async () => {
  await (await fresh.fetch(request())).arrayBuffer();
});
