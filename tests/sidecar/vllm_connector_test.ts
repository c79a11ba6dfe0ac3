import assert from "node:assert/strict";
import { join } from "node:path";
import { python, startListen } from "./_listen.ts";

Deno.test("kvh_vllm.KvhConnector, driven with vLLM's call sequence, frees a request only after kvh cleared every layer", async () => {
  const kvh = await startListen();
  try {
    const check = await python("tests/sidecar/python/vllm_connector_check.py", [
      kvh.socket,
      kvh.poolDir,
    ]);
    assert.equal(check.code, 0, check.output);
    assert.match(check.output, /vllm connector ok/);
    const { code, stderr } = await kvh.stop();
    assert.equal(code, 0, stderr);
    const log = (await Deno.readTextFile(join(kvh.logDir, "kv_cache.log"))).trim().split("\n")
      .map((line) => JSON.parse(line));
    const scrubs = log.filter((e) => e.event === "sanitize");
    // Request acme: two assignments (prefill, one decode block) on each of two layers.
    assert.equal(scrubs.length, 4);
    assert.ok(
      scrubs.every((e) => e.tenant_id === "acme" && e.model_id === "meta-llama_Llama-3.1-8B"),
    );
    // globex was never released (kvh unreachable): quarantined when its connection dropped.
    const quarantined = log.filter((e) => e.event === "quarantine");
    assert.ok(
      quarantined.some((e) => e.tenant_id === "globex" && e.detail === "client_disconnected"),
    );
  } finally {
    await Deno.remove(kvh.dir, { recursive: true });
  }
});
