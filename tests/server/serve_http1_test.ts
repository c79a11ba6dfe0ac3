import assert from "node:assert/strict";
import {
  defaultMaxConnections,
  type Http1Listener,
  serveHttp1,
  type ServeHttp1Options,
} from "../../lib/server/serve_http1.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function hello(request: Request): Response {
  const path = new URL(request.url).pathname;
  return new Response(`hello ${request.method} ${path}\n`, {
    headers: { "content-type": "text/plain" },
  });
}

async function withServer(
  options: ServeHttp1Options,
  fn: (port: number, server: ReturnType<typeof serveHttp1>) => Promise<void>,
  handler: (request: Request) => Response | Promise<Response> = hello,
  wrap: (listener: Deno.TcpListener) => Http1Listener = (listener) => listener,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = serveHttp1(wrap(listener), handler, options);
  try {
    await fn(listener.addr.port, server);
  } finally {
    await server.shutdown();
  }
}

function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/** Everything the server sends until it closes the connection. */
async function readToEnd(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const buffer = new Uint8Array(65536);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(decoder.decode(buffer.subarray(0, n)));
    }
  } catch (error) {
    // A reset after the answer still counts as the end.
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  } finally {
    conn.close();
  }
  return chunks.join("");
}

async function exchange(port: number, request: string): Promise<string> {
  const conn = await connect(port);
  await conn.write(encoder.encode(request));
  return await readToEnd(conn);
}

Deno.test("serveHttp1() answers fetch with the handler's response", async () => {
  await withServer({}, async (port) => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics?x=1`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain");
    assert.ok(res.headers.get("date"));
    assert.equal(await res.text(), "hello GET /metrics\n");
  });
});

Deno.test("serveHttp1() keeps a connection alive for pipelined requests, closes on request", async () => {
  await withServer({}, async (port) => {
    const text = await exchange(
      port,
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    const statuses = text.match(/HTTP\/1\.1 200 OK/g) ?? [];
    assert.equal(statuses.length, 2);
    assert.match(text, /hello GET \/a\n/);
    assert.match(text, /connection: close\r\n\r\nhello GET \/b\n$/);
  });
});

Deno.test("serveHttp1() closes an HTTP/1.0 connection after one response", async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, "GET /old HTTP/1.0\r\n\r\n");
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /content-length: 15\r\nconnection: close\r\n\r\nhello GET \/old\n$/);
  });
});

Deno.test("serveHttp1() sends no body for HEAD", async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, "HEAD /m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(text.endsWith("\r\n\r\n"), text);
  });
});

Deno.test("serveHttp1() closes a connection that sends no complete head within the timeout", async () => {
  await withServer({ headerTimeoutMs: 50 }, async (port, server) => {
    const silent = await connect(port);
    const partial = await connect(port);
    await partial.write(encoder.encode("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
    // Each read ends only because the server closed the connection: no answer, no hang.
    assert.equal(await readToEnd(silent), "");
    assert.equal(await readToEnd(partial), "");
    assert.equal(server.connections, 0);
  });
});

Deno.test("serveHttp1() closes an idle keep-alive connection after the timeout", async () => {
  await withServer({ headerTimeoutMs: 50 }, async (port) => {
    const text = await exchange(port, "GET /once HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(text, /hello GET \/once\n$/);
    assert.doesNotMatch(text, /connection: close/);
  });
});

Deno.test("serveHttp1() answers a request while more idle connections are open than its cap", async () => {
  await withServer({ maxConnections: 8 }, async (port, server) => {
    const idle = await Promise.all(Array.from({ length: 200 }, () => connect(port)));
    try {
      const res = await fetch(`http://127.0.0.1:${port}/still-here`);
      assert.equal(await res.text(), "hello GET /still-here\n");
      assert.ok(server.connections <= 8, `${server.connections} connections open`);
    } finally {
      for (const conn of idle) conn.close();
    }
  });
});

Deno.test("serveHttp1() backs off and keeps accepting when accept fails (EMFILE)", async () => {
  const lines: string[] = [];
  let failures = 3;
  const wrap = (listener: Deno.TcpListener): Http1Listener => ({
    addr: listener.addr,
    close: () => listener.close(),
    accept: () =>
      failures-- > 0
        ? Promise.reject(new Error("Too many open files (os error 24)"))
        : listener.accept(),
  });
  await withServer(
    { log: (line) => lines.push(line) },
    async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/after`);
      assert.equal(await res.text(), "hello GET /after\n");
    },
    hello,
    wrap,
  );
  assert.deepEqual(lines, [
    "Cannot accept connections: Too many open files (os error 24); retrying with backoff",
    "Accepting connections again",
  ]);
});

Deno.test("serveHttp1() refuses malformed heads with 400 and closes", async () => {
  await withServer({}, async (port) => {
    for (
      const request of [
        "GET /x HTTP/1.1\nHost: x\n\n\r\n\r\n", // bare LF line ends
        "GET http://example/x HTTP/1.1\r\nHost: x\r\n\r\n", // absolute-form target
        "GET /x HTTP/2.0\r\nHost: x\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost : x\r\n\r\n", // whitespace before the colon
        "GET /x HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", // obs-fold
        "GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /x HTTP/1.1\r\nX: a\x01b\r\n\r\n", // control character in a value
      ]
    ) {
      const text = await exchange(port, request);
      assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/, JSON.stringify(request));
      assert.match(text, /connection: close\r\n/);
    }
  });
});

Deno.test("serveHttp1() answers 405 with Allow for methods a Request cannot carry", async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(text, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    assert.match(text, /\r\nallow: GET, HEAD\r\n/);
  });
});

Deno.test("serveHttp1() answers 431 for a head above maxHeadBytes", async () => {
  await withServer({ maxHeadBytes: 1024 }, async (port) => {
    const text = await exchange(port, `GET /x HTTP/1.1\r\nX-Pad: ${"a".repeat(4000)}\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  });
});

Deno.test("serveHttp1() closes after answering a request that announced a body", async () => {
  await withServer({}, async (port) => {
    const text = await exchange(
      port,
      `GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${"x".repeat(5000)}`,
    );
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /connection: close\r\n\r\nhello GET \/x\n$/);
  });
});

Deno.test("serveHttp1() answers a bare 500 when the handler throws", async () => {
  await withServer({}, async (port) => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 500);
    await res.body?.cancel();
  }, () => {
    throw new Error("boom");
  });
});

Deno.test("serveHttp1() shutdown() waits for a response in progress and closes idle connections", async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => release = resolve);
  let entered: () => void = () => {};
  const inHandler = new Promise<void>((resolve) => entered = resolve);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const server = serveHttp1(listener, async (request) => {
    entered();
    await gate;
    return hello(request);
  });
  const idle = await connect(port);
  const busy = await connect(port);
  await busy.write(encoder.encode("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  await inHandler;
  const finished = server.shutdown();
  assert.equal(await readToEnd(idle), "");
  release();
  const text = await readToEnd(busy);
  assert.match(text, /connection: close\r\n\r\nhello GET \/slow\n$/);
  await finished;
  assert.equal(server.connections, 0);
});

Deno.test("serveHttp1() throws TypeError for impossible limits", () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    assert.throws(() => serveHttp1(listener, hello, { headerTimeoutMs: 0 }), TypeError);
    assert.throws(() => serveHttp1(listener, hello, { maxConnections: 0 }), TypeError);
  } finally {
    listener.close();
  }
});

Deno.test("defaultMaxConnections() stays below the descriptor limit", () => {
  assert.equal(defaultMaxConnections(1024), 960);
  assert.equal(defaultMaxConnections(100), 36);
  assert.equal(defaultMaxConnections(10), 8);
  assert.equal(defaultMaxConnections(Number.MAX_SAFE_INTEGER), 1024);
});
