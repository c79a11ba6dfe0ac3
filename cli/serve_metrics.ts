/**
 * `kvh serve-metrics`: serves the metrics textfile to Prometheus (DESIGN.md §3) over the
 * exporter's own HTTP/1.1 accept loop (lib/server/serve_http1.ts), which `Deno.serve` cannot
 * replace: it has no header timeout and stops on EMFILE.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { EXIT_USAGE } from "../lib/errors.ts";
import { createApp } from "../lib/server/app.ts";
import { FileMetricsSource } from "../lib/server/metrics_source.ts";
import {
  defaultMaxConnections,
  type Http1Server,
  readOpenFileLimit,
  serveHttp1,
} from "../lib/server/serve_http1.ts";
import {
  numberSetting,
  readSecretFile,
  revokePermissionsExcept,
  runAction,
  setting,
  textSetting,
  withEnv,
} from "./_common.ts";

const DEFAULT_FILE = "forensics/metrics.prom";
const DEFAULT_HOST = "127.0.0.1";
const DEFAULT_PORT = 9101;
const PORT = numberSetting({ integer: true, min: 0, max: 65535 });
const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/i;

function log(line: string): void {
  console.error(`kvh serve-metrics: ${line}`);
}

/** Builds the `serve-metrics` subcommand. */
export function serveMetricsCommand() {
  return new Command("serve-metrics")
    .description(
      "Serve the Prometheus textfile at GET /metrics (from memory, reloaded when the file " +
        "changes, 503 while it is missing) and GET /healthz until SIGINT or SIGTERM.",
    )
    .option(
      "--file <path>",
      withEnv("metrics textfile to serve", "METRICS_FILE", DEFAULT_FILE),
    )
    .option(
      "--host <address>",
      withEnv(
        "address to bind, loopback by default (the Python tool bound 0.0.0.0: pass it " +
          "explicitly to listen on every interface)",
        "METRICS_BIND",
        DEFAULT_HOST,
      ),
    )
    .option(
      "--port <n>",
      withEnv(
        "TCP port, 0 picks a free one (the Python tool's was 8000)",
        "METRICS_PORT",
        DEFAULT_PORT,
      ),
      (text) => PORT(text, "--port"),
    )
    .option(
      "--token-file <path>",
      "require `Authorization: Bearer <token>` on /metrics; the token is read from this file " +
        "(mode 0600, not a symlink)",
    )
    .action((options) =>
      runAction(async () => {
        const file = setting(options.file, "METRICS_FILE", textSetting) ?? DEFAULT_FILE;
        const hostname = setting(options.host, "METRICS_BIND", textSetting) ?? DEFAULT_HOST;
        const port = setting(options.port, "METRICS_PORT", PORT) ?? DEFAULT_PORT;
        const token = options.tokenFile === undefined
          ? undefined
          : await readSecretFile(options.tokenFile, "--token-file");
        await revokePermissionsExcept(["net", "read"]);
        return await serve({ file, hostname, port, token });
      })
    );
}

async function serve(
  config: { file: string; hostname: string; port: number; token: Uint8Array | undefined },
): Promise<number> {
  // Permissions are revoked by now (env included), so failures are printed here and turned
  // into an exit code rather than thrown to runAction.
  const source = new FileMetricsSource(config.file, { log });
  let app;
  try {
    app = createApp({ source, token: config.token, log });
  } catch (error) {
    source.close();
    // The message says which characters a token may hold; the token itself is never echoed.
    console.error(`kvh: Refusing --token-file: ${(error as Error).message}`);
    return EXIT_USAGE;
  }
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: config.hostname, port: config.port });
  } catch (error) {
    source.close();
    const reason = error instanceof Deno.errors.AddrInUse
      ? "address already in use"
      : error instanceof Error
      ? error.message.split("\n")[0]
      : String(error);
    console.error(`kvh: Cannot listen on ${config.hostname}:${config.port}: ${reason}`);
    return EXIT_USAGE;
  }
  const { hostname, port } = listener.addr;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  log(`listening on http://${host}:${port}/metrics serving ${config.file}`);
  if (config.token === undefined && !LOOPBACK.test(config.hostname)) {
    log(
      `warning: listening on ${config.hostname} without --token-file: anyone who can reach ` +
        "this port can read the metrics",
    );
  }
  const server: Http1Server = serveHttp1(listener, app.fetch, {
    maxConnections: defaultMaxConnections(readOpenFileLimit() ?? 1024),
    log,
  });
  let stoppedBy = "";
  const stop = (signal: Deno.Signal) => {
    if (stoppedBy !== "") return;
    stoppedBy = signal;
    // shutdown() stops accepting and lets in-flight requests finish before `finished` resolves.
    void server.shutdown();
  };
  const listeners = SIGNALS.map((signal) => {
    const listener = () => stop(signal);
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  try {
    await server.finished;
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
    source.close();
  }
  log(`stopped on ${stoppedBy || "server close"}`);
  return 0;
}
