import assert from "node:assert/strict";
import { join } from "node:path";
import { loadNativePoolFiles, SidecarClient } from "../../lib/sidecar/mod.ts";
import { kvhTaskPermissions, ROOT, runKvh } from "../cli/_kvh.ts";
import { flatPool, owner } from "./_daemon.ts";
import { python, startListen } from "./_listen.ts";

Deno.test("kvh trace --listen: a Python engine's released ranges are zero, the log verifies, metrics show the scrubs", async () => {
  const kvh = await startListen();
  try {
    const info = await Deno.stat(kvh.socket);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(join(kvh.dir, "run"))).mode! & 0o777, 0o700);
    const running = JSON.parse(await Deno.readTextFile(join(kvh.logDir, "coverage.json")));
    assert.equal(running.run_status, "running");
    const engine = await python("tests/sidecar/python/e2e_client.py", [kvh.socket, kvh.poolDir]);
    assert.equal(engine.code, 0, engine.output);
    const { code, stderr } = await kvh.stop();
    assert.equal(code, 0, stderr);
    const metrics = JSON.parse(await Deno.readTextFile(join(kvh.logDir, "coverage.json")));
    assert.equal(metrics.run_status, "stopped");
    assert.equal(metrics.sanitize_total, 2);
    assert.equal(metrics.min_coverage_pct, 100);
    assert.equal(metrics.quarantines_by_reason.unverified_cross_tenant, 1);
    const prom = await Deno.readTextFile(join(kvh.logDir, "metrics.prom"));
    assert.match(prom, /kvh_run_status\{status="stopped"\} 1/);
    const verify = await runKvh(["verify", join(kvh.logDir, "kv_cache.log"), "--json"]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const log = await Deno.readTextFile(join(kvh.logDir, "kv_cache.log"));
    const events = log.trim().split("\n").map((line) => JSON.parse(line));
    const sanitize = events.filter((e) => e.event === "sanitize");
    assert.deepEqual(sanitize[0].blocks, [2, 3, 9]);
    assert.equal(sanitize[0].tenant_id, "acme");
    assert.equal(sanitize[0].pool, "kv");
    // A drained stop is a normal end: the gate passes it (the one quarantine is allowed here).
    const gate = await runKvh(["gate", join(kvh.logDir, "coverage.json"), "--quarantine-max", "1"]);
    assert.equal(gate.code, 0, gate.stdout + gate.stderr);
  } finally {
    await Deno.remove(kvh.dir, { recursive: true });
  }
});

Deno.test("kvh trace --listen removes a stale socket, refuses a live one and a path that is not a socket", async () => {
  const first = await startListen();
  try {
    const second = await runKvh([
      "trace",
      "--listen",
      `unix:${first.socket}`,
      "--log-dir",
      join(first.dir, "logs2"),
    ]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /another process answers on that socket/);
    // Killed without a drain, the first one leaves its socket behind.
    await first.stop("SIGKILL");
    const stale = await startListen();
    await stale.stop();
    const file = join(first.dir, "run", "file");
    await Deno.writeTextFile(file, "evidence");
    const refused = await runKvh([
      "trace",
      "--listen",
      `unix:${file}`,
      "--log-dir",
      join(first.dir, "logs3"),
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /exists and is not a socket/);
    assert.equal(await Deno.readTextFile(file), "evidence");
    await Deno.remove(stale.dir, { recursive: true });
  } finally {
    await Deno.remove(first.dir, { recursive: true });
  }
});

Deno.test("kvh trace --listen refuses an open socket directory, a bad --listen and --verify sample", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvh-listen-" });
  try {
    const open = join(dir, "open");
    await Deno.mkdir(open);
    await Deno.chmod(open, 0o755);
    const cases: Array<[string[], RegExp]> = [
      [["--listen", `unix:${join(open, "kvh.sock")}`], /needs 0700/],
      [["--listen", "tcp:127.0.0.1:1"], /expected unix:PATH/],
      [["--listen", `unix:${join(dir, "s", "k.sock")}`, "--verify", "sample"], /full read-back/],
      [
        ["--listen", `unix:${join(dir, "s", "k.sock")}`, "--pool-dir", join(dir, "none")],
        /--pool-dir/,
      ],
      [["--listen", `unix:${join(dir, "s", "k.sock")}`, "--device", "webgpu"], /webgpu/],
      [
        ["--listen", `unix:${join(dir, "s", "k.sock")}`, "--requests", "5"],
        /Invalid --requests with --listen/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = await runKvh(["trace", ...args, "--log-dir", join(dir, "logs")]);
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kvh trace --listen rewrites the metrics while it runs, so the gate sees live values", async () => {
  const kvh = await startListen();
  try {
    const path = join(kvh.poolDir, "pool");
    await Deno.writeFile(path, new Uint8Array(4 * 4096).fill(1));
    const client = await SidecarClient.connect(kvh.socket);
    await client.request("register_pool", {
      pool: "p",
      device: "cpu",
      path: await Deno.realPath(path),
      bytes: 4 * 4096,
      blocks: 4,
      regions: [{ offset: 0, block_stride: 4096, block_bytes: 4096 }],
    });
    const { handle } = await client.request("assign", {
      pool: "p",
      blocks: [0],
      tenant_id: "acme",
      request_id: "r",
      model_id: "m",
    });
    await client.release(handle as string);
    // The daemon rewrites the files on its own interval: poll until the release shows.
    let metrics = { sanitize_total: 0, run_status: "" };
    for (let i = 0; i < 200 && metrics.sanitize_total === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      metrics = JSON.parse(await Deno.readTextFile(join(kvh.logDir, "coverage.json")));
    }
    assert.equal(metrics.sanitize_total, 1);
    assert.equal(metrics.run_status, "running");
    await client.close();
    const { code } = await kvh.stop();
    assert.equal(code, 0);
  } finally {
    await Deno.remove(kvh.dir, { recursive: true });
  }
});

Deno.test({
  name:
    "kvh trace --listen with the kvh task's permissions serves and quarantines pools under /dev/shm",
  ignore: loadNativePoolFiles() === undefined,
  async fn() {
    const shm = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "kvh-test-" });
    try {
      const kvh = await startListen([], { permissions: kvhTaskPermissions(), poolDir: shm });
      try {
        const engine = await python("tests/sidecar/python/e2e_client.py", [kvh.socket, shm]);
        assert.equal(engine.code, 0, engine.output);
        const client = await SidecarClient.connect(kvh.socket);
        try {
          const short = join(shm, "short");
          const gone = join(shm, "gone");
          for (const [name, path] of [["short", short], ["gone", gone]]) {
            await Deno.writeFile(path!, new Uint8Array(4 * 4096).fill(0xab));
            await client.request("register_pool", flatPool(name!, path!, 4, 4096));
          }
          const a = await client.request("assign", {
            pool: "short",
            blocks: [3],
            ...owner("acme"),
          });
          const b = await client.request("assign", { pool: "gone", blocks: [0], ...owner("acme") });
          await Deno.truncate(short, 4096);
          await Deno.remove(gone);
          const shrunk = await client.send("release", { handle: a.handle });
          assert.equal(shrunk.error?.reason, "pool_short");
          assert.equal((await Deno.stat(short)).size, 4096, "kvh did not grow the file back");
          const removed = await client.send("release", { handle: b.handle });
          assert.equal(removed.error?.reason, "pool_gone");
        } finally {
          await client.close();
        }
        const { code, stderr } = await kvh.stop();
        assert.equal(code, 0, stderr);
        const metrics = JSON.parse(await Deno.readTextFile(join(kvh.logDir, "coverage.json")));
        assert.equal(metrics.sanitize_total, 2);
        assert.equal(metrics.min_coverage_pct, 100);
      } finally {
        await Deno.remove(kvh.dir, { recursive: true });
      }
    } finally {
      await Deno.remove(shm, { recursive: true });
    }
  },
});

Deno.test("kvh trace --listen without the native pool helper says how to reach /dev/shm", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvh-listen-" });
  try {
    // Without --allow-ffi the helper cannot load: pools go through Deno's file API.
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...kvhTaskPermissions().filter((flag) => flag !== "--allow-ffi"),
        join(ROOT, "cli/main.ts"),
        "trace",
        "--listen",
        `unix:${join(dir, "run", "kvh.sock")}`,
        "--log-dir",
        join(dir, "logs"),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 1);
    assert.match(
      new TextDecoder().decode(run.stderr),
      /Invalid --pool-dir \/dev\/shm: files under \/dev need the native pool helper \(libkvh_pool\.so, built by ffi\/native\/build\.sh\) or a --pool-dir on another tmpfs/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
