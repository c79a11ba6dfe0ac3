import assert from "node:assert/strict";
import { join } from "node:path";
import { runKvh } from "../cli/_kvh.ts";
import { withTempDir } from "../_temp_dir.ts";
import { python, startListen } from "./_listen.ts";

Deno.test("kvh trace --listen signs checkpoints of the sidecar's log as it writes", async () => {
  await withTempDir(async (keys) => {
    assert.equal((await runKvh(["keygen", "node-1", "--out", keys])).code, 0);
    const checkpoint = join(keys, "checkpoint.note");
    const kvh = await startListen([
      "--signing-key-file",
      join(keys, "node-1.key"),
      "--checkpoint-file",
      checkpoint,
    ]);
    try {
      const engine = await python("tests/sidecar/python/e2e_client.py", [kvh.socket, kvh.poolDir]);
      assert.equal(engine.code, 0, engine.output);
      const { code, stderr } = await kvh.stop();
      assert.equal(code, 0, stderr);
      const verify = await runKvh([
        "verify",
        join(kvh.logDir, "kv_cache.log"),
        "--checkpoint",
        checkpoint,
        "--public-key",
        join(keys, "node-1.pub"),
        "--json",
      ]);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      const report = JSON.parse(verify.stdout);
      assert.equal(report.checkpoint.checkpoints[0].size, report.chain.records);
    } finally {
      await Deno.remove(kvh.dir, { recursive: true });
    }
  });
});
