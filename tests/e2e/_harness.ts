/**
 * Test harness: `kvh serve-metrics` and a real Prometheus as child processes bound to
 * 127.0.0.1, with bounded waits and a kill in `Symbol.asyncDispose`, so every process a test
 * starts stops with it.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { kvhRunArgs } from "../cli/_kvh.ts";

/** The repository root, for `deno run -A cli/main.ts`. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Debian's Prometheus server; the e2e tests skip themselves, visibly, when it is absent. */
export const PROMETHEUS_BIN = "/usr/bin/prometheus";
/** Whether {@linkcode PROMETHEUS_BIN} exists here. */
export const HAVE_PROMETHEUS = (() => {
  try {
    return Deno.statSync(PROMETHEUS_BIN).isFile;
  } catch {
    return false;
  }
})();

/** Polls `probe` until it returns a value other than `undefined`, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}: ${String(last ?? "")}`);
}

/** A free loopback TCP port (closed again before it is returned). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Collects a child's stderr as text while it runs. */
class Lines {
  text = "";
  readonly done: Promise<void>;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) this.text += chunk;
    })();
  }
}

/** A running child process that is killed (if still running) when disposed. */
export class Child implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  readonly stderr: Lines;
  readonly stdout: Lines;
  #status: Promise<Deno.CommandStatus>;
  #exited = false;

  constructor(command: Deno.Command) {
    this.process = command.spawn();
    this.stderr = new Lines(this.process.stderr);
    this.stdout = new Lines(this.process.stdout);
    this.#status = this.process.status.then((status) => {
      this.#exited = true;
      return status;
    });
  }

  /** Resolves once the process exited and its output was read. */
  async status(): Promise<Deno.CommandStatus> {
    const status = await this.#status;
    await Promise.all([this.stderr.done, this.stdout.done]);
    return status;
  }

  /** Whether the process exited already. */
  get exited(): boolean {
    return this.#exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      try {
        this.process.kill("SIGKILL");
      } catch {
        // It exited between the check and the kill.
      }
    }
    await this.status();
  }
}

/** `kvh serve-metrics` on a free port, with the base URL it reported. */
export interface Exporter extends AsyncDisposable {
  child: Child;
  url: string;
  port: number;
}

/**
 * Starts `deno run -A cli/main.ts serve-metrics --port 0 ...args` and waits for its listen line.
 *
 * @param args More flags, e.g. `--file`.
 * @param env Extra environment variables.
 */
export async function startExporter(
  args: string[],
  env: Record<string, string> = {},
): Promise<Exporter> {
  const child = new Child(
    new Deno.Command(Deno.execPath(), {
      args: [...kvhRunArgs(), "serve-metrics", ...args],
      cwd: ROOT,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  );
  try {
    const port = await waitFor("the exporter's listen line", () => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(child.stderr.text);
      if (match) return Number(match[1]);
      if (child.exited) throw new Error(`Exporter exited: ${child.stderr.text}`);
      return undefined;
    }, 20_000);
    return {
      child,
      port,
      url: `http://127.0.0.1:${port}`,
      [Symbol.asyncDispose]: () => child[Symbol.asyncDispose](),
    };
  } catch (error) {
    await child[Symbol.asyncDispose]();
    throw error;
  }
}

/** A Prometheus server with its own temp dir and HTTP API URL. */
export interface Prometheus extends AsyncDisposable {
  child: Child;
  url: string;
  /** Instant query; returns the vector's samples as {labels, value}. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: number }[]>;
  /** The active targets as Prometheus reports them. */
  targets(): Promise<{ scrapeUrl: string; health: string; lastError: string }[]>;
}

/** One scrape job of {@linkcode startPrometheus}. */
export interface ScrapeTarget {
  /** `host:port` of the exporter. */
  target: string;
  /** A file holding the bearer token Prometheus sends. */
  credentialsFile?: string;
}

/**
 * Starts Prometheus scraping `targets` every second under job `kvh`, storing in a temp dir,
 * listening on a free loopback port; waits until its API answers.
 */
export async function startPrometheus(targets: ScrapeTarget[]): Promise<Prometheus> {
  const dir = await Deno.makeTempDir({ prefix: "kvh-prom-" });
  const jobs = targets.map((t, i) =>
    [
      `  - job_name: kvh${i}`,
      `    metrics_path: /metrics`,
      ...(t.credentialsFile
        ? [
          `    authorization:`,
          `      type: Bearer`,
          `      credentials_file: ${t.credentialsFile}`,
        ]
        : []),
      `    static_configs:`,
      `      - targets: ["${t.target}"]`,
      `        labels: { job: kvh }`,
    ].join("\n")
  );
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n` +
      `scrape_configs:\n${jobs.join("\n")}\n`,
  );
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = new Child(
    new Deno.Command(PROMETHEUS_BIN, {
      args: [
        `--config.file=${dir}/prometheus.yml`,
        `--storage.tsdb.path=${dir}/data`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  );
  const dispose = async () => {
    await child[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  };
  const api = async (path: string) => {
    const res = await fetch(`${url}${path}`);
    const json = await res.json();
    if (json.status !== "success") throw new Error(`Prometheus ${path}: ${JSON.stringify(json)}`);
    return json.data;
  };
  try {
    await waitFor("Prometheus to be ready", async () => {
      if (child.exited) throw new Error(`Prometheus exited: ${child.stderr.text}`);
      const res = await fetch(`${url}/-/ready`);
      await res.body?.cancel();
      return res.ok ? true : undefined;
    });
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    child,
    url,
    async query(promql) {
      const data = await api(`/api/v1/query?query=${encodeURIComponent(promql)}`);
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((
        r,
      ) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async targets() {
      const data = await api("/api/v1/targets?state=active");
      return data.activeTargets;
    },
    [Symbol.asyncDispose]: dispose,
  };
}
