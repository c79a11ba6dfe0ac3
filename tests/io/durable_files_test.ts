import assert from "node:assert/strict";
import {
  stageFileAtomic,
  syncDir,
  tempSibling,
  writeAll,
  writeFileAtomic,
  writeNewFile,
} from "../../lib/io/mod.ts";
import { withTempDir as withDir } from "../retention/_log.ts";

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((entry) => entry.name).sort();
}

Deno.test("writeFileAtomic() replaces the file whole with mode 0600 and leaves no temp file", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/sub/metrics.prom`;
    await writeFileAtomic(path, "a\n");
    await writeFileAtomic(path, new TextEncoder().encode("b\n"));
    assert.equal(await Deno.readTextFile(path), "b\n");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/sub`)).mode! & 0o777, 0o700);
    assert.deepEqual(await names(`${dir}/sub`), ["metrics.prom"]);
  });
});

Deno.test("writeFileAtomic() fails on a non-empty directory target and removes its temp file", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/dir.prom`);
    await Deno.writeTextFile(`${dir}/dir.prom/x`, "");
    await assert.rejects(writeFileAtomic(`${dir}/dir.prom`, "c"));
    assert.deepEqual(await names(dir), ["dir.prom"]);
  });
});

Deno.test("writeFileAtomic() leaves the old file in place when its parent cannot be created", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "old");
    await assert.rejects(writeFileAtomic(`${dir}/file/out.json`, "new"));
    assert.equal(await Deno.readTextFile(`${dir}/file`), "old");
  });
});

Deno.test("stageFileAtomic() leaves the destination as it was until commit, and abort leaves nothing", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/verdict.json`;
    await Deno.writeTextFile(path, "old");
    const aborted = await stageFileAtomic(path, "discarded");
    assert.equal(await Deno.readTextFile(path), "old");
    await aborted.abort();
    assert.deepEqual(await names(dir), ["verdict.json"]);
    const staged = await stageFileAtomic(path, "new");
    assert.equal(await Deno.readTextFile(path), "old");
    await staged.commit();
    assert.equal(await Deno.readTextFile(path), "new");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual(await names(dir), ["verdict.json"]);
  });
});

Deno.test("writeNewFile() creates 0600 and never replaces an existing file", async () => {
  await withDir(async (dir) => {
    await writeNewFile(`${dir}/a`, "first");
    assert.equal((await Deno.stat(`${dir}/a`)).mode! & 0o777, 0o600);
    await assert.rejects(writeNewFile(`${dir}/a`, "second"), Deno.errors.AlreadyExists);
    assert.equal(await Deno.readTextFile(`${dir}/a`), "first");
  });
});

Deno.test("writeAll() keeps writing after short writes", async () => {
  const received: number[] = [];
  // A sink that takes at most three bytes per call, as a pipe or a full disk may.
  const sink = {
    write(data: Uint8Array): Promise<number> {
      const taken = data.subarray(0, 3);
      received.push(...taken);
      return Promise.resolve(taken.length);
    },
  };
  await writeAll(sink, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.deepEqual(received, [1, 2, 3, 4, 5, 6, 7, 8]);
});

Deno.test("tempSibling() names a hidden file in the same directory, unique per call", () => {
  const a = tempSibling("/var/out/verdict.json");
  assert.match(a, /^\/var\/out\/\.verdict\.json\.\d+\.tmp$/);
  assert.notEqual(a, tempSibling("/var/out/verdict.json"));
  assert.match(tempSibling("/var/out/bundle/"), /^\/var\/out\/\.bundle\.\d+\.tmp$/);
  assert.match(tempSibling("plain"), /^\.plain\.\d+\.tmp$/);
});

Deno.test("syncDir() syncs an existing directory and rejects a missing one", async () => {
  await withDir(async (dir) => {
    await syncDir(dir);
    await assert.rejects(syncDir(`${dir}/missing`), Deno.errors.NotFound);
  });
});
