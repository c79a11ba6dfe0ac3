import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DENO_POOL_FILES,
  loadNativePoolFiles,
  PoolUnavailableError,
} from "../../lib/sidecar/mod.ts";
import { flatPool, owner, startDaemon } from "./_daemon.ts";

const BLOCK = 4096;
const native = loadNativePoolFiles();

// The sidecar suite runs on the native helper when it is built; these run the essentials on
// both, the fallback forced.
for (const files of [native, DENO_POOL_FILES]) {
  const name = files?.name ?? "native";
  Deno.test({
    name:
      `${name} pool files: a release zeroes its blocks, a symlink is refused, shrunk and removed pools quarantine`,
    ignore: files === undefined,
    async fn() {
      const t = await startDaemon({ poolFiles: files });
      try {
        const kvh = await t.connect();
        const path = await t.pool("p", 4 * BLOCK);
        await kvh.request("register_pool", flatPool("p", path, 4, BLOCK));
        const { handle } = await kvh.request("assign", { pool: "p", blocks: [1], ...owner("a") });
        const released = await kvh.release(handle as string);
        assert.equal(released.coverage_pct, 100);
        const bytes = await Deno.readFile(path);
        assert.ok(bytes.subarray(BLOCK, 2 * BLOCK).every((b) => b === 0));
        assert.ok(bytes.subarray(0, BLOCK).every((b) => b === 0xab));
        assert.ok(bytes.subarray(2 * BLOCK).every((b) => b === 0xab));

        const link = join(t.dir, "pools", "link");
        await Deno.symlink(path, link);
        const refused = await kvh.send("register_pool", flatPool("l", link, 4, BLOCK));
        assert.match(refused.error!.message, /resolves through a symlink/);

        const short = await t.pool("short", 4 * BLOCK);
        const gone = await t.pool("gone", 4 * BLOCK);
        await kvh.request("register_pool", flatPool("short", short, 4, BLOCK));
        await kvh.request("register_pool", flatPool("gone", gone, 4, BLOCK));
        const a = await kvh.request("assign", { pool: "short", blocks: [3], ...owner("a") });
        const b = await kvh.request("assign", { pool: "gone", blocks: [0], ...owner("a") });
        await Deno.truncate(short, BLOCK);
        await Deno.remove(gone);
        assert.equal((await kvh.send("release", { handle: a.handle })).error?.reason, "pool_short");
        assert.equal((await Deno.stat(short)).size, BLOCK);
        assert.equal((await kvh.send("release", { handle: b.handle })).error?.reason, "pool_gone");

        // A read-back past the end (here with no write pass) is a shrunk pool, not a crash.
        const empty = await t.pool("empty", 0);
        const file = await files!.open(empty);
        try {
          await assert.rejects(
            () => file.scrub([{ offset: 0, length: BLOCK }], 0, 0),
            (error: Error) =>
              error instanceof PoolUnavailableError && error.reason === "pool_short",
          );
        } finally {
          file.close();
        }
      } finally {
        await t.stop();
      }
    },
  });
}

Deno.test({
  name:
    "native pool files: Deno's error classes, stat fields, no NUL in paths, nothing after close",
  ignore: native === undefined,
  async fn() {
    const files = native!;
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "kvh-pool-" }));
    try {
      const missing = join(dir, "missing");
      await assert.rejects(
        () => files.realPath(missing),
        (error: Error) =>
          error instanceof Deno.errors.NotFound &&
          /\(os error 2\): realpath '.*missing'$/.test(error.message),
      );
      await assert.rejects(() => files.open(missing), Deno.errors.NotFound);
      await assert.rejects(() => files.open(`${dir}\0x`), Deno.errors.InvalidData);
      const path = join(dir, "pool");
      await Deno.writeFile(path, new Uint8Array(3 * BLOCK).fill(7));
      const link = join(dir, "link");
      await Deno.symlink(path, link);
      // O_NOFOLLOW: a symlink swapped in after the checks is not followed.
      await assert.rejects(() => files.open(link), Deno.errors.FilesystemLoop);
      const info = await Deno.stat(path);
      const stat = await files.stat(link);
      assert.deepEqual(
        [stat.dev, stat.ino, stat.nlink, stat.size, stat.isFile, stat.isDirectory],
        [BigInt(info.dev), BigInt(info.ino!), 1, 3 * BLOCK, true, false],
      );
      assert.equal((await files.lstat(link)).isFile, false);
      assert.ok((await files.stat(dir)).isDirectory);
      const file = await files.open(path);
      try {
        assert.deepEqual(file.stat().ino, stat.ino);
        const ranges = [{ offset: 0, length: 10 }, { offset: 2 * BLOCK, length: BLOCK }];
        assert.deepEqual(await file.scrub(ranges, 2, 3 * BLOCK), {
          checkedBytes: BLOCK + 10,
          nonZeroBytes: 0,
        });
        const bytes = await Deno.readFile(path);
        assert.equal(bytes.filter((b) => b !== 0).length, 3 * BLOCK - BLOCK - 10);
        // A range the native table cannot hold fails its scrub, and the daemon goes on.
        await assert.rejects(file.scrub([{ offset: 0.5, length: 1 }], 1, 0), RangeError);
        // Only that scrub: another queued in the same batch runs (the native tables are doubles,
        // so a value they cannot hold exactly never reaches C).
        const [bad, good] = await Promise.allSettled([
          file.scrub([{ offset: -1, length: 1 }], 1, 0),
          file.scrub([{ offset: 0, length: 1 }], 1, 0),
        ]);
        assert.ok(bad.status === "rejected" && bad.reason instanceof RangeError);
        assert.deepEqual(good, {
          status: "fulfilled",
          value: { checkedBytes: 1, nonZeroBytes: 0 },
        });
      } finally {
        file.close();
      }
      file.close();
      await assert.rejects(
        () => file.scrub([{ offset: 0, length: 1 }], 1, 0),
        /Bad file descriptor/,
      );
      // A scrub queued for the next native batch and closed before it runs is refused too: it
      // never reaches a file that reused the descriptor number.
      const queued = await files.open(path);
      const scrubbed = queued.scrub([{ offset: BLOCK, length: 1 }], 1, 0);
      queued.close();
      const reused = await files.open(path);
      try {
        await assert.rejects(scrubbed, /Bad file descriptor/);
        assert.equal((await Deno.readFile(path))[BLOCK], 7);
      } finally {
        reused.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
