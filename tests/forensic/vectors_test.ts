import assert from "node:assert/strict";
import { join } from "node:path";
import { verifyLog } from "../../lib/forensic/verify.ts";

const ROOT = join(import.meta.dirname!, "..", "vectors", "forensic");

interface Expect {
  desc: string;
  ok: boolean;
  reason: string | null;
  file: string | null;
  line: number | null;
  key?: string;
}

for (
  const entry of [...Deno.readDirSync(ROOT)].filter((e) => e.isDirectory).sort((a, b) =>
    a.name < b.name ? -1 : 1
  )
) {
  const dir = join(ROOT, entry.name);
  const expect = JSON.parse(Deno.readTextFileSync(join(dir, "expect.json"))) as Expect;
  Deno.test(`verifyLog() answers vector ${entry.name}: ${expect.desc}`, async () => {
    const report = await verifyLog(join(dir, "kv_cache.log"), {
      hmacKey: expect.key === undefined ? undefined : new TextEncoder().encode(expect.key),
    });
    assert.deepEqual(
      {
        ok: report.ok,
        reason: report.failure?.reason ?? null,
        file: report.failure?.file ?? null,
        line: report.failure?.line ?? null,
      },
      { ok: expect.ok, reason: expect.reason, file: expect.file, line: expect.line },
      report.failure?.detail,
    );
    assert.equal(report.mac_checked, expect.key !== undefined);
    const parallel = await verifyLog(join(dir, "kv_cache.log"), {
      hmacKey: expect.key === undefined ? undefined : new TextEncoder().encode(expect.key),
      workers: 2,
    });
    assert.deepEqual(parallel, report, "Workers must give the same answer");
  });
}

Deno.test("tests/vectors/generate.ts --check: the committed vectors are what the generator writes", async () => {
  const generator = join(import.meta.dirname!, "..", "vectors", "generate.ts");
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", generator, "--check"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
});
