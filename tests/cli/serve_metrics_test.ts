import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { Child, ROOT, startExporter, waitFor } from "../e2e/_harness.ts";
import { kvhRunArgs } from "./_kvh.ts";

const METRICS = "kvh_coverage_min_ratio 1\nkvh_quarantined_buffers 0\n";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the command to completion (for usage errors), bounded by a timeout. */
async function runKvh(args: string[], env: Record<string, string> = {}) {
  const command = new Deno.Command(Deno.execPath(), {
    args: [...kvhRunArgs(), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  });
  const { code, stdout, stderr } = await command.output();
  return {
    code,
    stdout: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr),
  };
}

/** Sends raw bytes and returns the response's status line (fetch cannot send these requests). */
async function rawRequest(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const buffer = new Uint8Array(4096);
    const read = await conn.read(buffer);
    return new TextDecoder().decode(buffer.subarray(0, read ?? 0)).split("\r\n")[0]!;
  } finally {
    conn.close();
  }
}

Deno.test("serve-metrics serves the file, 404 elsewhere, healthz, gzip, and stops on SIGTERM", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/metrics.prom`, METRICS);
    await using exporter = await startExporter(["--file", `${dir}/metrics.prom`, "--port", "0"]);
    const res = await fetch(`${exporter.url}/metrics`, {
      headers: { "accept-encoding": "identity" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.ok((await res.text()).startsWith(METRICS));

    const zipped = await rawGzip(exporter.port);
    assert.ok(zipped.startsWith(METRICS));

    const missing = await fetch(`${exporter.url}/forensics/metrics.prom`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const health = await fetch(`${exporter.url}/healthz`);
    assert.equal(await health.text(), "ok\n");

    exporter.child.process.kill("SIGTERM");
    const status = await exporter.child.status();
    assert.equal(status.code, 0);
    assert.match(exporter.child.stderr.text, /kvh serve-metrics: stopped on SIGTERM\n$/);
  });
});

/** GET /metrics with Accept-Encoding: gzip over a raw socket, decoded. */
async function rawGzip(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
      ),
    );
    const chunks: Uint8Array[] = [];
    for await (const chunk of conn.readable) chunks.push(chunk);
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    const split = all.findIndex((_, i) =>
      all[i] === 13 && all[i + 1] === 10 && all[i + 2] === 13 && all[i + 3] === 10
    );
    const head = new TextDecoder().decode(all.subarray(0, split));
    assert.match(head, /content-encoding: gzip/i);
    return new TextDecoder().decode(gunzipSync(all.subarray(split + 4)));
  } catch (error) {
    conn.close();
    throw error;
  }
}

Deno.test("serve-metrics answers 503 while the file is missing and 200 once it is back", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/metrics.prom`;
    await using exporter = await startExporter(["--file", path, "--port", "0"]);
    const missing = await fetch(`${exporter.url}/metrics`);
    assert.equal(missing.status, 503);
    assert.equal(await missing.text(), "Metrics file not found\n");
    await Deno.writeTextFile(`${path}.tmp`, METRICS);
    await Deno.rename(`${path}.tmp`, path);
    const back = await waitFor("the file to be served", async () => {
      const res = await fetch(`${exporter.url}/metrics`);
      const text = await res.text();
      return res.status === 200 ? text : undefined;
    }, 10_000);
    assert.ok(back.startsWith(METRICS));
    assert.match(exporter.child.stderr.text, /Cannot reload metrics file .*: not found/);
  });
});

Deno.test("serve-metrics requires the token from --token-file", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/metrics.prom`, METRICS);
    await Deno.writeTextFile(`${dir}/token`, "s3cret-token\n", { mode: 0o600 });
    await Deno.chmod(`${dir}/token`, 0o600);
    await using exporter = await startExporter([
      "--file",
      `${dir}/metrics.prom`,
      "--port",
      "0",
      "--token-file",
      `${dir}/token`,
    ]);
    const none = await fetch(`${exporter.url}/metrics`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="kvh"');
    await none.body?.cancel();
    const wrong = await fetch(`${exporter.url}/metrics`, {
      headers: { authorization: "Bearer wrong" },
    });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const malformed = await fetch(`${exporter.url}/metrics`, {
      headers: { authorization: "Token s3cret-token" },
    });
    assert.equal(malformed.status, 400);
    await malformed.body?.cancel();
    const right = await fetch(`${exporter.url}/metrics`, {
      headers: { authorization: "Bearer s3cret-token" },
    });
    assert.equal(right.status, 200);
    await right.body?.cancel();
    assert.ok(!exporter.child.stderr.text.includes("s3cret"));
  });
});

Deno.test("serve-metrics answers 431 for oversized headers and 413 for a body", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/metrics.prom`, METRICS);
    await using exporter = await startExporter(["--file", `${dir}/metrics.prom`, "--port", "0"]);
    const big = await fetch(`${exporter.url}/metrics`, { headers: { "x-pad": "a".repeat(9000) } });
    assert.equal(big.status, 431);
    await big.body?.cancel();
    const withBody = await rawRequest(
      exporter.port,
      `GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${"x".repeat(5000)}`,
    );
    assert.equal(withBody, "HTTP/1.1 413 Payload Too Large");
    const chunked = await rawRequest(
      exporter.port,
      "POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    );
    assert.equal(chunked, "HTTP/1.1 413 Payload Too Large");
  });
});

Deno.test("serve-metrics finishes in-flight responses after SIGTERM", async () => {
  await withDir(async (dir) => {
    // Large enough that each response is still being written when the signal arrives.
    const big = "kvh_metric_padding 1\n".repeat(400_000);
    await Deno.writeTextFile(`${dir}/metrics.prom`, big);
    await using exporter = await startExporter(["--file", `${dir}/metrics.prom`, "--port", "0"]);
    const responses = await Promise.all(
      Array.from(
        { length: 8 },
        () => fetch(`${exporter.url}/metrics`, { headers: { "accept-encoding": "identity" } }),
      ),
    );
    exporter.child.process.kill("SIGTERM");
    const bodies = await Promise.all(responses.map((res) => res.text()));
    for (const body of bodies) assert.ok(body.startsWith(big), "a response was cut short");
    assert.equal((await exporter.child.status()).code, 0);
    const after = await fetch(`${exporter.url}/metrics`).then(() => "answered", () => "refused");
    assert.equal(after, "refused");
  });
});

Deno.test("serve-metrics reads METRICS_FILE, METRICS_PORT and METRICS_BIND", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/env.prom`, "kvh_from_env 1\n");
    await using exporter = await startExporter([], {
      METRICS_FILE: `${dir}/env.prom`,
      METRICS_PORT: "0",
      METRICS_BIND: "127.0.0.1",
    });
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    assert.ok(text.startsWith("kvh_from_env 1\n"));
  });
});

Deno.test("serve-metrics exits 1 with a clear message when the port is taken", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { port } = listener.addr as Deno.NetAddr;
    const { code, stderr } = await runKvh(["serve-metrics", "--port", String(port)]);
    assert.equal(code, 1);
    assert.match(
      stderr,
      new RegExp(`kvh: Cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`),
    );
  } finally {
    listener.close();
  }
});

Deno.test("serve-metrics exits 1 for a bad port or an unsafe token file", async () => {
  await withDir(async (dir) => {
    const bad = await runKvh(["serve-metrics", "--port", "70000"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Invalid --port: must be at most 65535, got 70000/);
    const env = await runKvh(["serve-metrics"], { METRICS_PORT: "http" });
    assert.equal(env.code, 1);
    assert.match(env.stderr, /Invalid METRICS_PORT/);
    await Deno.writeTextFile(`${dir}/open`, "tok\n");
    await Deno.chmod(`${dir}/open`, 0o644);
    const open = await runKvh(["serve-metrics", "--token-file", `${dir}/open`]);
    assert.equal(open.code, 1);
    assert.match(open.stderr, /Refusing --token-file .*: mode 644/);
    await Deno.writeTextFile(`${dir}/spaces`, "not a token\n");
    await Deno.chmod(`${dir}/spaces`, 0o600);
    const spaces = await runKvh(["serve-metrics", "--token-file", `${dir}/spaces`, "--port", "0"]);
    assert.equal(spaces.code, 1);
    assert.match(spaces.stderr, /kvh: Refusing --token-file: Invalid bearer token/);
    assert.ok(!spaces.stderr.includes("not a token"));
  });
});

Deno.test("serve-metrics --help names the environment variables and the loopback default", async () => {
  const { code, stdout } = await runKvh(["serve-metrics", "--help"]);
  assert.equal(code, 0);
  for (const word of ["METRICS_FILE", "METRICS_PORT", "METRICS_BIND", "127.0.0.1", "0.0.0.0"]) {
    assert.ok(stdout.includes(word), word);
  }
});

Deno.test("serve-metrics logs a start line naming the address and the file", async () => {
  await withDir(async (dir) => {
    await using exporter = await startExporter(["--file", `${dir}/m.prom`, "--port", "0"]);
    assert.ok(exporter.child instanceof Child);
    assert.match(
      exporter.child.stderr.text,
      new RegExp(
        `listening on http://127\\.0\\.0\\.1:${exporter.port}/metrics serving ${dir}/m\\.prom`,
      ),
    );
  });
});

/** `serve-metrics` under `bash -c "ulimit -n N; exec deno …"`, with the port it reported. */
async function startLimited(openFiles: number, args: string[]) {
  const child = new Child(
    new Deno.Command("bash", {
      args: [
        "-c",
        `ulimit -n ${openFiles} && exec "$0" run -A cli/main.ts serve-metrics "$@"`,
        Deno.execPath(),
        ...args,
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  );
  const port = await waitFor("the exporter's listen line", () => {
    const match = /listening on http:\/\/[^ ]*:(\d+)\/metrics/.exec(child.stderr.text);
    if (match) return Number(match[1]);
    if (child.exited) throw new Error(`Exporter exited: ${child.stderr.text}`);
    return undefined;
  }, 20_000);
  return { child, port };
}

Deno.test("serve-metrics keeps answering while a thousand idle connections are open", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/metrics.prom`, METRICS);
    // 128 descriptors: far fewer than the idle connections, as a small container might allow.
    const { child, port } = await startLimited(128, [
      "--file",
      `${dir}/metrics.prom`,
      "--port",
      "0",
    ]);
    await using _child = child;
    const idle: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 1000; i++) idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(res.status, 200);
      assert.ok((await res.text()).startsWith(METRICS));
      assert.equal(child.exited, false, child.stderr.text);
    } finally {
      for (const conn of idle) conn.close();
    }
  });
});

Deno.test("serve-metrics answers 405 with Allow for POST on the wire", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/metrics.prom`, METRICS);
    await using exporter = await startExporter(["--file", `${dir}/metrics.prom`, "--port", "0"]);
    const res = await fetch(`${exporter.url}/metrics`, { method: "POST" });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET, HEAD");
    await res.body?.cancel();
  });
});

Deno.test("serve-metrics warns when it binds a non-loopback address without a token", async () => {
  await withDir(async (dir) => {
    const { child } = await startLimited(1024, [
      "--file",
      `${dir}/m.prom`,
      "--host",
      "0.0.0.0",
      "--port",
      "0",
    ]);
    await using _child = child;
    await waitFor("the warning", () => child.stderr.text.includes("warning") || undefined, 10_000);
    assert.match(
      child.stderr.text,
      /kvh serve-metrics: warning: listening on 0\.0\.0\.0 without --token-file: anyone who can reach this port can read the metrics/,
    );
  });
});
