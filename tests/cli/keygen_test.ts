import assert from "node:assert/strict";
import { join } from "node:path";
import { runKvh } from "./_kvh.ts";
import { parseSignerKey, parseVerifierKey } from "../../lib/transparency/note.ts";

Deno.test("kvh keygen writes NAME.key 0600 and NAME.pub into a new 0700 DIR", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "keys");
    const run = await runKvh(["keygen", "node-1", "--out", out]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await Deno.stat(out)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(join(out, "node-1.key"))).mode! & 0o777, 0o600);
    const signer = parseSignerKey(await Deno.readTextFile(join(out, "node-1.key")));
    const pub = await Deno.readTextFile(join(out, "node-1.pub"));
    assert.equal(parseVerifierKey(pub).keyId, signer.keyId);
    assert.ok(run.stdout.includes(pub.trim()));
    const seed = (await Deno.readTextFile(join(out, "node-1.key"))).trim().split("+")[4]!;
    assert.ok(!run.stdout.includes(seed) && !run.stderr.includes(seed));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kvh keygen refuses to overwrite an existing key and leaves it intact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal((await runKvh(["keygen", "node-1", "--out", dir])).code, 0);
    const before = await Deno.readTextFile(join(dir, "node-1.key"));
    const again = await runKvh(["keygen", "node-1", "--out", dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^kvh: Refusing to overwrite .*node-1\.key: it already exists\n$/);
    assert.equal(await Deno.readTextFile(join(dir, "node-1.key")), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kvh keygen refuses a NAME that is not a safe file name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const name of ["../x", ".hidden", "a/b", "a+b"]) {
      const run = await runKvh(["keygen", name, "--out", dir]);
      assert.equal(run.code, 1, name);
      assert.match(run.stderr, /Invalid key name/);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kvh keygen refuses when only NAME.pub exists and creates no key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "node-1.pub"), "someone else's\n");
    const run = await runKvh(["keygen", "node-1", "--out", dir]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Refusing to overwrite .*node-1\.pub/);
    assert.equal(await Deno.readTextFile(join(dir, "node-1.pub")), "someone else's\n");
    await assert.rejects(Deno.stat(join(dir, "node-1.key")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
