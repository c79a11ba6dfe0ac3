import assert from "node:assert/strict";
import { join } from "node:path";
import { verifyLog } from "../../lib/forensic/verify.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";

const CHILD = join(import.meta.dirname!, "_writer_child.ts");

Deno.test("openForensicLog() keeps every fsynced critical event across SIGKILL and recovers the torn tail", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHILD, "critical", dir],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // Seqs the child printed: each append had resolved, so each record was fsynced.
    const acknowledged: number[] = [];
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    while (acknowledged.length < 200) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      for (const part of parts) acknowledged.push(Number(part));
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await reader.cancel();
    assert.equal(status.signal, "SIGKILL");
    const path = join(dir, "kv_cache.log");

    const afterKill = await verifyLog(path);
    assert.ok(afterKill.ok || afterKill.failure?.reason === "torn_tail", afterKill.failure?.detail);
    assert.ok(afterKill.head!.seq >= acknowledged.at(-1)!);

    // A write cut short by the kill (or a power loss) leaves a torn last line: simulate it so the
    // recovery path always runs.
    await Deno.writeTextFile(path, '{"event":"quarantine","handle":"h-torn","pr', { append: true });
    const torn = await verifyLog(path);
    assert.equal(torn.failure?.reason, "torn_tail");

    const log = await openForensicLog({ dir });
    await log.append("allocate", { after: "crash" });
    await log.close();
    const recovered = await verifyLog(path);
    assert.equal(recovered.ok, true, recovered.failure?.detail);
    const records = (await Deno.readTextFile(path)).split("\n").filter(Boolean).map((l) =>
      JSON.parse(l)
    );
    const seqs = new Set(records.filter((r) => r.event === "quarantine").map((r) => r.seq));
    for (const seq of acknowledged) assert.ok(seqs.has(seq), `acknowledged seq ${seq} was lost`);
    assert.equal(records.at(-2).event, "recovery");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
