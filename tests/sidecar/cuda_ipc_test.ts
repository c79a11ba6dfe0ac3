/**
 * The sidecar on a GPU: a second process allocates a pool through the CUDA library and shares it
 * by IPC handle; kvh opens it on the GPU with that UUID, scrubs the released blocks with its
 * batched kernel on its own stream, and the owner reads back from its side. Skipped without a
 * GPU (the GPU script runs it).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openCudaPoolOpener } from "../../lib/sidecar/mod.ts";
import { ROOT } from "../cli/_kvh.ts";
import { owner, startDaemon } from "./_daemon.ts";

const opener = (() => {
  try {
    return openCudaPoolOpener();
  } catch {
    return undefined;
  }
})();

Deno.test({
  name: "a CUDA pool shared by IPC handle: exactly the released blocks read back as zero",
  ignore: opener === undefined,
  async fn() {
    const blocks = 16;
    const blockBytes = 256 * 1024;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        join(ROOT, "tests/sidecar/_cuda_ipc_owner.ts"),
        `${blocks}`,
        `${blockBytes}`,
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const nextLine = async () => {
      while (!text.includes("\n")) text += (await lines.read()).value ?? "";
      const line = text.slice(0, text.indexOf("\n"));
      text = text.slice(text.indexOf("\n") + 1);
      return JSON.parse(line);
    };
    const shared = await nextLine();
    const t = await startDaemon({ openCudaPool: opener });
    try {
      const kvh = await t.connect();
      const hello = await kvh.request("hello", { engine: "gpu-test", pid: 1 });
      assert.deepEqual(hello.devices, ["cpu", "cuda"]);
      await kvh.request("register_pool", {
        pool: "gpu",
        device: "cuda",
        ...shared,
        offset: 0,
        bytes: blocks * blockBytes,
        blocks,
        regions: [{ offset: 0, block_stride: blockBytes, block_bytes: blockBytes }],
      });
      const tooBig = await kvh.send("register_pool", {
        pool: "big",
        device: "cuda",
        ...shared,
        offset: blockBytes,
        bytes: blocks * blockBytes,
        blocks,
        regions: [{ offset: 0, block_stride: blockBytes, block_bytes: blockBytes }],
      });
      assert.equal(tooBig.ok, false, "a pool past the end of the allocation is refused");
      const { handle } = await kvh.request("assign", {
        pool: "gpu",
        blocks: [1, 3, 4],
        ...owner("acme"),
      });
      const released = await kvh.release(handle as string);
      assert.equal(released.coverage_pct, 100);
      assert.equal(released.bytes, 3 * blockBytes);
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("check\n"));
      const zero = await nextLine();
      assert.deepEqual(zero, Array.from({ length: blocks }, (_, b) => [1, 3, 4].includes(b)));
      await writer.close();
    } finally {
      await t.stop();
      try {
        child.kill();
      } catch {
        // Already exited.
      }
      await child.status;
      await lines.cancel();
    }
  },
});
