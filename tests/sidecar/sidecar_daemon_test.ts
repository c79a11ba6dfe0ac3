import assert from "node:assert/strict";
import { join } from "node:path";
import type { AuditSink, RecordV2 } from "../../lib/forensic/types.ts";
import type { EnginePool } from "../../lib/sidecar/mod.ts";
import { flatPool, owner, rawExchange, readReplies, startDaemon } from "./_daemon.ts";

const BLOCK = 4096;

async function bytesOf(path: string, block: number): Promise<Uint8Array> {
  const all = await Deno.readFile(path);
  return all.subarray(block * BLOCK, (block + 1) * BLOCK);
}

function allEqual(bytes: Uint8Array, value: number): boolean {
  return bytes.every((b) => b === value);
}

Deno.test("release zeroes exactly the released blocks and answers only after the read-back", async () => {
  const t = await startDaemon();
  try {
    const { kvh, path } = await t.connectWithPool("p", 8, BLOCK);
    const { handle } = await kvh.request("assign", { pool: "p", blocks: [2, 5], ...owner("acme") });
    const released = await kvh.release(handle as string);
    assert.equal(released.coverage_pct, 100);
    assert.equal(released.bytes, 2 * BLOCK);
    assert.deepEqual(released.blocks, [2, 5]);
    for (let b = 0; b < 8; b++) {
      assert.ok(allEqual(await bytesOf(path, b), b === 2 || b === 5 ? 0 : 0xab), `block ${b}`);
    }
    const sanitize = t.events.find((e) => e.event === "sanitize")!;
    assert.equal(sanitize.fields.pool, "p");
    assert.deepEqual(sanitize.fields.blocks, [2, 5]);
    assert.equal(sanitize.fields.tenant_id, "acme");
    assert.equal(sanitize.fields.coverage_pct, 100);
    assert.equal(sanitize.fields.checked_bytes, 2 * BLOCK);
    const metrics = t.daemon.metrics();
    assert.equal(metrics.sanitize_total, 1);
    assert.equal(metrics.freed_total, 2);
    assert.equal(metrics.scrubbed_bytes_total, 2 * BLOCK);
  } finally {
    await t.stop();
  }
});

Deno.test("assign and release replies keep their members and order: result fields, then v, id, ok", async () => {
  const t = await startDaemon();
  try {
    const { kvh } = await t.connectWithPool("p", 4, BLOCK);
    const handles = new Set<string>();
    for (const block of [0, 1]) {
      const assigned = await kvh.send("assign", { pool: "p", blocks: [block], ...owner("acme") });
      assert.deepEqual(Object.keys(assigned), ["handle", "v", "id", "ok"]);
      assert.match(assigned.handle as string, /^[0-9a-f]{32}$/, "128 random bits, hex");
      handles.add(assigned.handle as string);
    }
    assert.equal(handles.size, 2);
    const { handle } = await kvh.request("assign", { pool: "p", blocks: [2, 3], ...owner("acme") });
    const request = JSON.stringify({ v: 1, id: "r", op: "release", handle });
    const conn = await Deno.connect({ transport: "unix", path: t.socket });
    try {
      // Handles belong to the connection that assigned them: this one is unknown here.
      await conn.write(new TextEncoder().encode(`${request}\n`));
      const [unknown] = await readReplies(conn, 1);
      assert.deepEqual(Object.keys(unknown!), ["v", "id", "ok", "error"]);
    } finally {
      conn.close();
    }
    const released = await kvh.send("release", { handle });
    assert.deepEqual(Object.keys(released), [
      "coverage_pct",
      "bytes",
      "duration_ms",
      "handle",
      "blocks",
      "shared",
      "quarantined",
      "v",
      "id",
      "ok",
    ]);
    assert.deepEqual([released.blocks, released.shared, released.quarantined], [[2, 3], [], []]);
  } finally {
    await t.stop();
  }
});

Deno.test("a line that is not JSON gets ok:false with id null and the connection stays usable", async () => {
  const t = await startDaemon();
  try {
    const [first, second] = await rawExchange(
      t.socket,
      '{not json\n{"v":1,"id":9,"op":"stats"}\n',
      2,
    ) as Array<{ id: unknown; ok: boolean; error: { code: string } }>;
    assert.deepEqual(first!.id, null);
    assert.equal(first!.ok, false);
    assert.equal(first!.error.code, "malformed_json");
    assert.equal(second!.id, 9);
    assert.equal(second!.ok, true);
  } finally {
    await t.stop();
  }
});

Deno.test("malformed, unknown and out-of-range requests are refused and change nothing", async () => {
  const t = await startDaemon();
  try {
    const kvh = await t.connect();
    const path = await t.pool("p", 4 * BLOCK);
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["nope", {}, "unknown_op"],
      [
        "register_pool",
        { ...flatPool("p", path, 4, BLOCK), bytes: 4 * BLOCK - 1 },
        "invalid_layout",
      ],
      ["register_pool", { ...flatPool("p", path, 4, BLOCK), device: "tpu" }, "invalid_request"],
      ["register_pool", { ...flatPool("../p", path, 4, BLOCK) }, "invalid_request"],
      ["assign", { pool: "p", blocks: [0], ...owner("acme") }, "unknown_pool"],
      ["release", { handle: "f".repeat(32) }, "unknown_handle"],
      ["release", { handle: 7 }, "invalid_request"],
    ];
    for (const [op, fields, code] of cases) {
      const reply = await kvh.send(op, fields);
      assert.equal(reply.ok, false, op);
      assert.equal(reply.error?.code, code, `${op}: ${reply.error?.message}`);
    }
    await kvh.request("register_pool", flatPool("p", path, 4, BLOCK));
    for (
      const [fields, code] of [
        [{ pool: "p", blocks: [4], ...owner("acme") }, "out_of_range"],
        [{ pool: "p", blocks: [1, 1], ...owner("acme") }, "out_of_range"],
        [{ pool: "p", blocks: [1], ...owner("a/b") }, "invalid_request"],
      ] as const
    ) {
      const reply = await kvh.send("assign", fields);
      assert.equal(reply.error?.code, code);
    }
    const wrongVersion = await kvh.send("stats", { v: 2 });
    assert.equal(wrongVersion.error?.code, "unsupported_version");
    assert.ok(allEqual(await Deno.readFile(path), 0xab), "no byte of the pool changed");
    assert.deepEqual(t.events.map((e) => e.event), ["pool_register"]);
  } finally {
    await t.stop();
  }
});

Deno.test("register_pool refuses paths outside --pool-dir, symlinks, short files and evidence", async () => {
  const t = await startDaemon();
  try {
    const kvh = await t.connect();
    const inside = await t.pool("ok", 4 * BLOCK);
    const outside = join(t.dir, "outside");
    await Deno.writeFile(outside, new Uint8Array(4 * BLOCK));
    const link = join(t.dir, "pools", "link");
    await Deno.symlink(inside, link);
    const logFile = join(t.dir, "logs", "kv_cache.log");
    await Deno.writeFile(logFile, new Uint8Array(4 * BLOCK));
    const short = await t.pool("short", BLOCK);
    for (
      const [path, why] of [
        [outside, /not under an allowed --pool-dir/],
        [link, /symlink/],
        [short, /shorter than/],
        ["pools/ok", /not an absolute path/],
        [join(t.dir, "pools", "missing"), /Refusing pool/],
        [join(t.dir, "pools"), /not a regular file|Refusing/],
      ] as const
    ) {
      const reply = await kvh.send("register_pool", flatPool("p", path, 4, BLOCK));
      assert.equal(reply.error?.code, "pool_refused", path);
      assert.match(reply.error!.message, why);
    }
    assert.ok(allEqual(await Deno.readFile(outside), 0));
  } finally {
    await t.stop();
  }
});

Deno.test("register_pool refuses a hard link to an evidence file inside the pool directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvh-evidence-" });
  const metrics = join(dir, "coverage.json");
  await Deno.writeFile(metrics, new Uint8Array(4 * BLOCK).fill(7));
  const t = await startDaemon({ protectedFiles: [metrics] });
  try {
    const linked = join(t.dir, "pools", "innocent");
    await Deno.link(metrics, linked);
    const kvh = await t.connect();
    const reply = await kvh.send("register_pool", flatPool("p", linked, 4, BLOCK));
    assert.equal(reply.error?.code, "pool_refused");
    assert.match(reply.error!.message, /evidence file/);
    assert.ok(allEqual(await Deno.readFile(metrics), 7));
  } finally {
    await t.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a block assigned to another tenant before its release is refused and quarantined", async () => {
  const t = await startDaemon();
  try {
    const { kvh, path } = await t.connectWithPool("p", 4, BLOCK);
    const { handle } = await kvh.request("assign", { pool: "p", blocks: [1, 2], ...owner("acme") });
    const stolen = await kvh.send("assign", { pool: "p", blocks: [2, 3], ...owner("globex") });
    assert.equal(stolen.error?.code, "quarantined");
    assert.equal(stolen.error?.reason, "cross_tenant_assign");
    assert.deepEqual(stolen.error?.blocks, [2]);
    const quarantine = t.events.find((e) => e.event === "quarantine")!;
    assert.ok(quarantine.critical);
    assert.equal(quarantine.fields.detail, "cross_tenant_assign");
    // Block 3 was not taken either; block 2 is never handed out again.
    const again = await kvh.send("assign", { pool: "p", blocks: [2], ...owner("acme", "r3") });
    assert.equal(again.error?.reason, "already_quarantined");
    // acme's release still scrubs block 2 but tells the engine never to reuse it.
    const released = await kvh.release(handle as string);
    assert.deepEqual(released.blocks, [1]);
    assert.deepEqual(released.quarantined, [2]);
    assert.ok(allEqual(await bytesOf(path, 2), 0));
    assert.equal(t.daemon.metrics().quarantines_by_reason.unverified_cross_tenant, 1);
  } finally {
    await t.stop();
  }
});

Deno.test("same-tenant sharing: a block stays dirty until its last holder releases it", async () => {
  const t = await startDaemon();
  try {
    const { kvh, path } = await t.connectWithPool("p", 4, BLOCK);
    const a = await kvh.request("assign", { pool: "p", blocks: [0, 1], ...owner("acme", "r1") });
    const b = await kvh.request("assign", { pool: "p", blocks: [1, 2], ...owner("acme", "r2") });
    const first = await kvh.release(a.handle as string);
    assert.deepEqual(first.blocks, [0]);
    assert.deepEqual(first.shared, [1]);
    assert.ok(allEqual(await bytesOf(path, 1), 0xab), "block 1 still in use by r2");
    const second = await kvh.release(b.handle as string);
    assert.deepEqual(second.blocks, [1, 2]);
    assert.ok(allEqual(await bytesOf(path, 1), 0));
  } finally {
    await t.stop();
  }
});

Deno.test("a double release and a release by unassigned block ids change nothing", async () => {
  const t = await startDaemon();
  try {
    const { kvh, path } = await t.connectWithPool("p", 4, BLOCK);
    const { handle } = await kvh.request("assign", { pool: "p", blocks: [0], ...owner("acme") });
    await kvh.release(handle as string);
    await Deno.writeFile(path, new Uint8Array(4 * BLOCK).fill(0xcd));
    const twice = await kvh.send("release", { handle });
    assert.equal(twice.error?.code, "already_released");
    const byIds = await kvh.send("release", { pool: "p", blocks: [0] });
    assert.equal(byIds.error?.code, "not_assigned");
    assert.ok(allEqual(await Deno.readFile(path), 0xcd));
  } finally {
    await t.stop();
  }
});

Deno.test("release by pool and block ids takes the blocks from every handle holding them", async () => {
  const t = await startDaemon();
  try {
    const { kvh, path } = await t.connectWithPool("p", 4, BLOCK);
    const a = await kvh.request("assign", { pool: "p", blocks: [0, 1], ...owner("acme") });
    await kvh.request("assign", { pool: "p", blocks: [1], ...owner("acme", "r2") });
    const other = await kvh.request("assign", { pool: "p", blocks: [3], ...owner("globex") });
    const mixed = await kvh.send("release", { pool: "p", blocks: [1, 3] });
    assert.equal(mixed.error?.code, "invalid_request");
    const released = await kvh.request("release", { pool: "p", blocks: [1] });
    assert.deepEqual(released.blocks, [1]);
    assert.ok(allEqual(await bytesOf(path, 1), 0));
    const rest = await kvh.release(a.handle as string);
    assert.deepEqual(rest.blocks, [0]);
    await kvh.release(other.handle as string);
    assert.equal(t.daemon.metrics().active_buffers, 0);
  } finally {
    await t.stop();
  }
});

Deno.test("a pool file that shrank or was removed quarantines the release instead of crashing", async () => {
  const t = await startDaemon();
  try {
    const kvh = await t.connect();
    const short = await t.pool("short", 4 * BLOCK);
    const gone = await t.pool("gone", 4 * BLOCK);
    await kvh.request("register_pool", flatPool("short", short, 4, BLOCK));
    await kvh.request("register_pool", flatPool("gone", gone, 4, BLOCK));
    const a = await kvh.request("assign", { pool: "short", blocks: [3], ...owner("acme") });
    const b = await kvh.request("assign", { pool: "gone", blocks: [0], ...owner("acme") });
    await Deno.truncate(short, BLOCK);
    await Deno.remove(gone);
    const shrunk = await kvh.send("release", { handle: a.handle });
    assert.equal(shrunk.error?.code, "quarantined");
    assert.equal(shrunk.error?.reason, "pool_short");
    assert.equal((await Deno.stat(short)).size, BLOCK, "kvh did not grow the file back");
    const removed = await kvh.send("release", { handle: b.handle });
    assert.equal(removed.error?.reason, "pool_gone");
    assert.equal(t.daemon.metrics().quarantines_by_reason.verification_failed, 2);
    assert.equal((await kvh.request("stats")).quarantined_blocks, 2);
  } finally {
    await t.stop();
  }
});

Deno.test("a client that disconnects leaves its assigned blocks quarantined in the log", async () => {
  const t = await startDaemon();
  try {
    const { kvh, path } = await t.connectWithPool("p", 4, BLOCK);
    await kvh.request("assign", { pool: "p", blocks: [0, 1], ...owner("acme") });
    await kvh.close();
    const next = await t.connect();
    // The stats request is answered after the daemon saw the first connection end, since it
    // can register the same file again only once that session let go of it.
    let registered = await next.send("register_pool", flatPool("p", path, 4, BLOCK));
    while (registered.error?.code === "pool_in_use") {
      await new Promise((resolve) => setTimeout(resolve, 10));
      registered = await next.send("register_pool", flatPool("p", path, 4, BLOCK));
    }
    assert.equal(registered.ok, true);
    const quarantine = t.events.filter((e) => e.event === "quarantine");
    assert.equal(quarantine.length, 1);
    assert.equal(quarantine[0]!.fields.detail, "client_disconnected");
    assert.deepEqual(quarantine[0]!.fields.blocks, [0, 1]);
    assert.ok(allEqual(await bytesOf(path, 0), 0xab), "kvh never saw a release: no scrub");
  } finally {
    await t.stop();
  }
});

Deno.test("two clients at once: pools, handles and pool files stay with their connection", async () => {
  const t = await startDaemon();
  try {
    const a = await t.connect();
    const b = await t.connect();
    const pathA = await t.pool("a", 4 * BLOCK);
    const pathB = await t.pool("b", 4 * BLOCK);
    await a.request("register_pool", flatPool("kv", pathA, 4, BLOCK));
    await b.request("register_pool", flatPool("kv", pathB, 4, BLOCK));
    const stolen = await b.send("register_pool", flatPool("other", pathA, 4, BLOCK));
    assert.equal(stolen.error?.code, "pool_in_use");
    const ha = await a.request("assign", { pool: "kv", blocks: [1], ...owner("acme") });
    const hb = await b.request("assign", { pool: "kv", blocks: [1], ...owner("globex") });
    assert.equal((await b.send("release", { handle: ha.handle })).error?.code, "unknown_handle");
    const [ra, rb] = await Promise.all([
      a.release(ha.handle as string),
      b.release(hb.handle as string),
    ]);
    assert.equal(ra.coverage_pct, 100);
    assert.equal(rb.coverage_pct, 100);
    assert.ok(allEqual(await bytesOf(pathA, 1), 0));
    assert.ok(allEqual(await bytesOf(pathB, 1), 0));
    assert.ok(allEqual(await bytesOf(pathA, 2), 0xab));
    assert.equal((await a.request("stats")).connections, 2);
  } finally {
    await t.stop();
  }
});

Deno.test("pipelined and batched requests: each reply carries its request's id", async () => {
  const t = await startDaemon();
  try {
    const kvh = await t.connect();
    const path = await t.pool("p", 16 * BLOCK);
    // register_pool, then assigns sent before its reply arrives.
    const registered = kvh.request("register_pool", flatPool("p", path, 16, BLOCK));
    const assigns = Array.from(
      { length: 8 },
      (_, i) => kvh.request("assign", { pool: "p", blocks: [i], ...owner("acme", `r${i}`) }),
    );
    await registered;
    const handles = (await Promise.all(assigns)).map((r) => r.handle as string);
    const releases = await Promise.all(handles.map((h) => kvh.release(h)));
    assert.deepEqual(releases.map((r) => r.blocks[0]), [0, 1, 2, 3, 4, 5, 6, 7]);

    const batch = [
      {
        v: 1,
        id: "a",
        op: "register_pool",
        ...flatPool("q", await t.pool("q", 4 * BLOCK), 4, BLOCK),
      },
      { v: 1, id: "b", op: "assign", pool: "q", blocks: [0], ...owner("acme") },
      { v: 1, id: "c", op: "nope" },
    ];
    const [replies] = await rawExchange(t.socket, JSON.stringify(batch) + "\n", 1) as Array<
      Array<{ id: string; ok: boolean }>
    >;
    assert.deepEqual(replies!.map((r) => r.id), ["a", "b", "c"]);
    assert.deepEqual(replies!.map((r) => r.ok), [true, true, false]);
  } finally {
    await t.stop();
  }
});

Deno.test("a line longer than the limit is answered with line_too_long and skipped", async () => {
  const t = await startDaemon({ limits: { max_line_bytes: 64 } });
  try {
    const [first, second] = await rawExchange(
      t.socket,
      `${"x".repeat(200)}\n{"v":1,"id":2,"op":"stats"}\n`,
      2,
    ) as Array<{ ok: boolean; error: { code: string } }>;
    assert.equal(first!.error.code, "line_too_long");
    assert.equal(second!.ok, true);
  } finally {
    await t.stop();
  }
});

Deno.test("a read-back that finds non-zero bytes quarantines the blocks (coverage below threshold)", async () => {
  const broken: EnginePool = {
    device: "cuda",
    identity: "fake",
    scrub: (ranges) =>
      Promise.resolve({
        checkedBytes: ranges.reduce((n, r) => n + r.length, 0),
        nonZeroBytes: 100,
      }),
    close: () => Promise.resolve(),
  };
  const t = await startDaemon({ openCudaPool: () => Promise.resolve(broken) });
  try {
    const kvh = await t.connect();
    const hello = await kvh.request("hello", { engine: "test", pid: 1 });
    assert.deepEqual(hello.devices, ["cpu", "cuda"]);
    const cuda = {
      pool: "g",
      device: "cuda",
      ipc_handle: btoa(String.fromCharCode(...new Uint8Array(64))),
      gpu_uuid: "GPU-00000000-0000-0000-0000-000000000000",
      offset: 0,
      bytes: 4 * BLOCK,
      blocks: 4,
      regions: [{ offset: 0, block_stride: BLOCK, block_bytes: BLOCK }],
    };
    const fd = await kvh.send("register_pool", { ...cuda, handle_type: "fd" });
    assert.equal(fd.error?.code, "unsupported_handle");
    assert.match(fd.error!.message, /expandable_segments/);
    const short = await kvh.send("register_pool", { ...cuda, ipc_handle: btoa("abc") });
    assert.equal(short.error?.code, "invalid_request");
    await kvh.request("register_pool", cuda);
    const { handle } = await kvh.request("assign", { pool: "g", blocks: [0], ...owner("acme") });
    const reply = await kvh.send("release", { handle });
    assert.equal(reply.error?.code, "quarantined");
    assert.equal(reply.error?.reason, "coverage_below_threshold");
    const sanitize = t.events.find((e) => e.event === "sanitize")!;
    assert.ok(sanitize.critical, "a failed scrub is fsynced");
  } finally {
    await t.stop();
  }
});

Deno.test("without a GPU, register_pool with device cuda answers device_unavailable", async () => {
  const t = await startDaemon();
  try {
    const kvh = await t.connect();
    const reply = await kvh.send("register_pool", {
      pool: "g",
      device: "cuda",
      ipc_handle: btoa(String.fromCharCode(...new Uint8Array(64))),
      gpu_uuid: "GPU-0",
      offset: 0,
      bytes: BLOCK,
      blocks: 1,
      regions: [{ offset: 0, block_stride: BLOCK, block_bytes: BLOCK }],
    });
    assert.equal(reply.error?.code, "device_unavailable");
  } finally {
    await t.stop();
  }
});

Deno.test("a log that refuses the scrub record quarantines the release", async () => {
  let refuse = false;
  const audit: AuditSink = {
    append: () => refuse ? Promise.reject(new Error("disk full")) : Promise.resolve({} as RecordV2),
  };
  const t = await startDaemon({ audit });
  try {
    const { kvh } = await t.connectWithPool("p", 4, BLOCK);
    const { handle } = await kvh.request("assign", { pool: "p", blocks: [0], ...owner("acme") });
    refuse = true;
    const reply = await kvh.send("release", { handle });
    assert.equal(reply.error?.reason, "audit_failed");
    const assign = await kvh.send("assign", { pool: "p", blocks: [1], ...owner("acme") });
    assert.equal(assign.error?.reason, "audit_failed");
    assert.equal(t.daemon.metrics().audit_emit_failures_total >= 1, true);
  } finally {
    await t.stop();
  }
});

Deno.test("stop() finishes the release in flight before it returns; a stuck one is abandoned", async () => {
  let unblock = () => {};
  let hold = false;
  let blocked = false;
  const audit: AuditSink = {
    append: (event) => {
      if (!hold || event !== "sanitize") return Promise.resolve({} as RecordV2);
      blocked = true;
      return new Promise((resolve) => {
        unblock = () => resolve({} as RecordV2);
      });
    },
  };
  const t = await startDaemon({ audit });
  try {
    const { kvh } = await t.connectWithPool("p", 4, BLOCK);
    const { handle } = await kvh.request("assign", { pool: "p", blocks: [0], ...owner("acme") });
    hold = true;
    const release = kvh.send("release", { handle });
    while (!blocked) await new Promise((r) => setTimeout(r, 1));
    const stopping = t.daemon.stop(60_000);
    const late = await kvh.send("stats");
    assert.equal(late.ok, true, "stats is still answered while draining");
    unblock();
    const [stopped, reply] = await Promise.all([stopping, release]);
    assert.equal(reply.ok, true, "the release in flight was finished and answered");
    assert.equal(stopped.abandonedReleases, 0);
  } finally {
    await t.stop();
  }
  const stuck = await startDaemon({
    audit: {
      append: (event) =>
        event === "sanitize" ? new Promise(() => {}) : Promise.resolve({} as RecordV2),
    },
  });
  try {
    const kvh = await stuck.connect();
    const path = await stuck.pool("p", 4 * BLOCK);
    await kvh.request("register_pool", flatPool("p", path, 4, BLOCK));
    const { handle } = await kvh.request("assign", { pool: "p", blocks: [0], ...owner("acme") });
    const release = kvh.send("release", { handle }).catch((error) => error);
    await kvh.send("stats");
    const stopped = await stuck.daemon.stop(20);
    assert.equal(stopped.abandonedReleases, 1);
    assert.ok((await release) instanceof Error, "the engine never sees the blocks acknowledged");
    const refused = await stuck.daemon.handleLine(
      stuck.daemon.openSession(),
      '{"v":1,"id":1,"op":"assign"}',
    );
    assert.equal(refused[0]!.reply.error?.code, "shutting_down");
  } finally {
    await stuck.stop();
  }
});

Deno.test("a release whose reply cannot be delivered leaves its blocks quarantined", async () => {
  let unblock = () => {};
  let blocked = false;
  const events: Array<{ event: string; fields: Record<string, unknown> }> = [];
  const audit: AuditSink = {
    append: (event, fields) => {
      events.push({ event, fields });
      if (event !== "sanitize") return Promise.resolve({} as RecordV2);
      blocked = true;
      return new Promise((resolve) => {
        unblock = () => resolve({} as RecordV2);
      });
    },
  };
  const t = await startDaemon({ audit });
  try {
    const path = await t.pool("p", 4 * BLOCK);
    const conn = await Deno.connect({ transport: "unix", path: t.socket });
    const lines = [
      { v: 1, id: 1, op: "register_pool", ...flatPool("p", path, 4, BLOCK) },
      { v: 1, id: 2, op: "assign", pool: "p", blocks: [1], ...owner("acme") },
    ];
    const [, assigned] = await exchange(conn, lines);
    await conn.write(
      new TextEncoder().encode(
        JSON.stringify({ v: 1, id: 3, op: "release", handle: assigned!.handle }) + "\n",
      ),
    );
    while (!blocked) await new Promise((r) => setTimeout(r, 1));
    conn.close();
    unblock();
    // The daemon notices the closed connection on its own schedule: wait for the record.
    let quarantine = events.find((e) => e.event === "quarantine");
    while (quarantine === undefined) {
      await new Promise((r) => setTimeout(r, 5));
      quarantine = events.find((e) => e.event === "quarantine");
    }
    assert.equal(quarantine.fields.detail, "client_disconnected");
    assert.deepEqual(quarantine.fields.blocks, [1]);
    assert.ok(allEqual(await bytesOf(path, 1), 0), "the scrub itself was done");
  } finally {
    await t.stop();
  }
});

async function exchange(
  conn: Deno.Conn,
  requests: Record<string, unknown>[],
): Promise<Array<Record<string, unknown>>> {
  const replies: Array<Record<string, unknown>> = [];
  const buffer = new Uint8Array(1 << 16);
  for (const request of requests) {
    await conn.write(new TextEncoder().encode(JSON.stringify(request) + "\n"));
    let text = "";
    while (!text.includes("\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    replies.push(JSON.parse(text));
  }
  return replies;
}

Deno.test("a connection with max_in_flight lines being worked on is not read further until one is answered", async () => {
  let unblock = () => {};
  let blocked = false;
  const audit: AuditSink = {
    append: (event) => {
      if (event !== "assign") return Promise.resolve({} as RecordV2);
      blocked = true;
      return new Promise((resolve) => {
        const previous = unblock;
        unblock = () => {
          previous();
          resolve({} as RecordV2);
        };
      });
    },
  };
  const t = await startDaemon({ audit, limits: { max_in_flight: 2 } });
  try {
    const { kvh } = await t.connectWithPool("p", 4, BLOCK);
    const first = kvh.request("assign", { pool: "p", blocks: [0], ...owner("acme") });
    const second = kvh.request("assign", { pool: "p", blocks: [1], ...owner("acme") });
    while (!blocked) await new Promise((r) => setTimeout(r, 1));
    let statsAnswered = false;
    const stats = kvh.request("stats").then((reply) => {
      statsAnswered = true;
      return reply;
    });
    // Both assigns hold the connection's two slots: the stats line waits unread.
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 1));
    assert.equal(statsAnswered, false);
    unblock();
    await Promise.all([first, second]);
    assert.equal((await stats).ok, true);
  } finally {
    await t.stop();
  }
});

// Sends the requests in one write, so the daemon reads them together (one batch: one native
// scrub call, one write of the replies), and returns the replies by id.
async function inOneWrite(
  conn: Deno.Conn,
  requests: Record<string, unknown>[],
): Promise<Map<unknown, Record<string, unknown>>> {
  await conn.write(
    new TextEncoder().encode(requests.map((r) => JSON.stringify(r) + "\n").join("")),
  );
  const replies = await readReplies(conn, requests.length);
  return new Map(replies.map((reply) => [reply.id, reply]));
}

Deno.test("releases read together each get their own reply and log record; a bad one spoils none", async () => {
  const t = await startDaemon();
  const conn = await Deno.connect({ transport: "unix", path: t.socket });
  try {
    const path = await t.pool("p", 8 * BLOCK);
    await inOneWrite(conn, [{
      v: 1,
      id: 0,
      op: "register_pool",
      ...flatPool("p", path, 8, BLOCK),
    }]);
    const assigned = await inOneWrite(
      conn,
      [0, 1, 2, 3].map((b) => ({
        v: 1,
        id: b,
        op: "assign",
        pool: "p",
        blocks: [b],
        ...owner(`t${b}`, `r${b}`),
      })),
    );
    const handle = (b: number) => assigned.get(b)!.handle;
    const replies = await inOneWrite(conn, [
      { v: 1, id: "a", op: "release", handle: handle(0) },
      { v: 1, id: "b", op: "release", pool: "p", blocks: [99] },
      { v: 1, id: "c", op: "release", handle: handle(2) },
      { v: 1, id: "d", op: "release", handle: "f00d" },
      { v: 1, id: "e", op: "release", handle: handle(2) },
      { v: 1, id: "f", op: "release", handle: handle(1) },
    ]);
    assert.deepEqual(replies.get("a")!.blocks, [0]);
    assert.deepEqual(replies.get("c")!.blocks, [2]);
    assert.deepEqual(replies.get("f")!.blocks, [1]);
    for (const id of ["a", "c", "f"]) assert.equal(replies.get(id)!.coverage_pct, 100);
    const code = (id: string) => (replies.get(id)!.error as { code: string }).code;
    assert.equal(code("b"), "out_of_range");
    assert.equal(code("d"), "unknown_handle");
    assert.equal(code("e"), "release_in_progress");
    // One sanitize record per release, with its own tenant and blocks; none for the refused.
    const sanitized = t.events.filter((e) => e.event === "sanitize").map((e) => e.fields);
    assert.deepEqual(
      sanitized.map((f) => [f.handle, f.tenant_id, f.blocks]),
      [[handle(0), "t0", [0]], [handle(2), "t2", [2]], [handle(1), "t1", [1]]],
    );
    for (const b of [0, 1, 2]) assert.ok(allEqual(await bytesOf(path, b), 0));
    assert.ok(allEqual(await bytesOf(path, 3), 0xab), "block 3 was not released");
    assert.ok(allEqual(await bytesOf(path, 4), 0xab));
  } finally {
    conn.close();
    await t.stop();
  }
});

Deno.test("releases read together on a removed and an intact pool: only the removed one is quarantined", async () => {
  const t = await startDaemon();
  const conn = await Deno.connect({ transport: "unix", path: t.socket });
  try {
    const gone = await t.pool("gone", 4 * BLOCK);
    const kept = await t.pool("kept", 4 * BLOCK);
    const setup = await inOneWrite(conn, [
      { v: 1, id: 1, op: "register_pool", ...flatPool("gone", gone, 4, BLOCK) },
      { v: 1, id: 2, op: "register_pool", ...flatPool("kept", kept, 4, BLOCK) },
      { v: 1, id: 3, op: "assign", pool: "gone", blocks: [1], ...owner("acme") },
      { v: 1, id: 4, op: "assign", pool: "kept", blocks: [1], ...owner("acme") },
    ]);
    await Deno.remove(gone);
    const replies = await inOneWrite(conn, [
      { v: 1, id: 5, op: "release", handle: setup.get(3)!.handle },
      { v: 1, id: 6, op: "release", handle: setup.get(4)!.handle },
    ]);
    const error = replies.get(5)!.error as { code: string; reason: string; blocks: number[] };
    assert.deepEqual([error.code, error.reason, error.blocks], ["quarantined", "pool_gone", [1]]);
    assert.equal(replies.get(6)!.ok, true);
    assert.deepEqual(replies.get(6)!.blocks, [1]);
    assert.ok(allEqual(await bytesOf(kept, 1), 0));
    assert.ok(allEqual(await bytesOf(kept, 0), 0xab));
    const quarantined = t.events.filter((e) => e.event === "quarantine");
    assert.deepEqual(quarantined.map((e) => [e.fields.pool, e.fields.detail]), [[
      "gone",
      "pool_gone",
    ]]);
    const sanitized = t.events.filter((e) => e.event === "sanitize");
    assert.deepEqual(sanitized.map((e) => e.fields.pool), ["kept"]);
  } finally {
    conn.close();
    await t.stop();
  }
});

Deno.test("lines longer than one socket read: a 20,000-block release and its reply arrive whole", async () => {
  const t = await startDaemon();
  try {
    const kvh = await t.connect();
    const blocks = 20_000;
    const path = await t.pool("p", blocks * 16);
    await kvh.request("register_pool", flatPool("p", path, blocks, 16));
    const ids = Array.from({ length: blocks }, (_, i) => i);
    // Both the assign line and the release reply (over 100 KB each) take several reads.
    const { handle } = await kvh.request("assign", { pool: "p", blocks: ids, ...owner("acme") });
    const released = await kvh.release(handle as string);
    assert.deepEqual(released.blocks, ids);
    assert.equal(released.bytes, blocks * 16);
    assert.ok(allEqual(await Deno.readFile(path), 0));
  } finally {
    await t.stop();
  }
});

Deno.test("lines read together: each is answered on its own, a leading BOM dropped, an overlong one refused in place", async () => {
  const t = await startDaemon({ limits: { max_line_bytes: 64 } });
  try {
    const text = [
      '\ufeff{"v":1,"id":1,"op":"stats"}',
      '{"v":1,"id":2,"op":"hello","engine":"é…é","pid":1}',
      `{"v":1,"id":3,"op":"stats","pad":"${"x".repeat(64)}"}`,
      "  ",
      '{"v":1,"id":"é","op":"stats"}',
      '\ufeff{"v":1,"id":5,"op":"stats"}',
      "",
    ].join("\n");
    const replies = await rawExchange(t.socket, text, 5) as Array<Record<string, unknown>>;
    const byId = (id: unknown) => replies.find((r) => r.id === id);
    assert.equal(replies.length, 5);
    for (const id of [1, 2, "é", 5]) assert.equal(byId(id)?.ok, true, `request ${id}`);
    assert.equal((byId(null)?.error as { code: string }).code, "line_too_long");
  } finally {
    await t.stop();
  }
});

Deno.test("a request split across reads is answered once whole; an overlong one split across reads is skipped", async () => {
  const t = await startDaemon({ limits: { max_line_bytes: 64 } });
  const conn = await Deno.connect({ transport: "unix", path: t.socket });
  const send = (text: string) => conn.write(new TextEncoder().encode(text));
  const tick = () => new Promise((resolve) => setTimeout(resolve, 10));
  try {
    const stats = '{"v":1,"id":1,"op":"stats"}\n';
    await send(stats.slice(0, 10));
    await tick();
    await send(stats.slice(10));
    const [whole] = await readReplies(conn, 1);
    assert.deepEqual([whole!.id, whole!.ok], [1, true]);
    for (let i = 0; i < 3; i++) {
      await send("x".repeat(40));
      await tick();
    }
    await send('\n{"v":1,"id":2,"op":"stats"}\n');
    const [skipped, next] = await readReplies(conn, 2);
    assert.equal((skipped!.error as { code: string }).code, "line_too_long");
    assert.deepEqual([next!.id, next!.ok], [2, true]);
  } finally {
    conn.close();
    await t.stop();
  }
});
