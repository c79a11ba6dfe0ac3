import assert from "node:assert/strict";
import { basename, join } from "node:path";
import {
  changedSince,
  closeSnapshot,
  openSnapshotFile,
  snapshotChain,
  snapshotReader,
  writtenSince,
} from "../../lib/forensic/_snapshot.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";

async function withRotatedLog(fn: (dir: string, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    let ms = Date.UTC(2026, 0, 1);
    const log = await openForensicLog({ dir, maxBytes: 400, now: () => new Date(ms += 1000) });
    for (let i = 0; i < 8; i++) await log.append("allocate", { i });
    await log.close();
    await fn(dir, log.path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readAll(reader: { read(b: Uint8Array): Promise<number | null> }): Promise<number> {
  let total = 0;
  const buffer = new Uint8Array(64);
  for (let n = await reader.read(buffer); n !== null; n = await reader.read(buffer)) total += n;
  return total;
}

Deno.test("snapshotChain() reads the active file only up to its size when the snapshot was taken", async () => {
  await withRotatedLog(async (_dir, path) => {
    const snapshot = await snapshotChain(path, false);
    try {
      const active = snapshot.files.at(-1)!;
      assert.equal(active.active, true);
      assert.ok(snapshot.files.length > 2);
      assert.equal(await writtenSince(active), false);
      await Deno.writeTextFile(path, '{"v":2,"seq":99', { append: true });
      assert.equal(await writtenSince(active), true);
      assert.equal(await changedSince(snapshot), true);
      assert.equal(await readAll(snapshotReader(active, active.file!)), active.size);
    } finally {
      closeSnapshot(snapshot);
    }
  });
});

Deno.test("snapshotChain() notices a rotated file removed after the listing", async () => {
  await withRotatedLog(async (_dir, path) => {
    const snapshot = await snapshotChain(path, false);
    try {
      const oldest = snapshot.files[0]!;
      await Deno.remove(oldest.path);
      assert.equal(await openSnapshotFile(oldest), undefined);
      assert.equal(await changedSince(snapshot), true);
    } finally {
      closeSnapshot(snapshot);
    }
  });
});

Deno.test("snapshotChain() mid-rotation: the old file under both names is taken once", async () => {
  await withRotatedLog(async (dir, path) => {
    const rotated = join(dir, "kv_cache-20990101T000000Z-999.log");
    await Deno.link(path, rotated);
    const snapshot = await snapshotChain(path, false);
    try {
      assert.equal(basename(snapshot.files.at(-1)!.path), basename(rotated));
      assert.ok(snapshot.files.every((entry) => !entry.active));
    } finally {
      closeSnapshot(snapshot);
    }
  });
});

Deno.test("snapshotChain() reports an active file missing beside rotated files", async () => {
  await withRotatedLog(async (_dir, path) => {
    await Deno.remove(path);
    const snapshot = await snapshotChain(path, false);
    assert.equal(snapshot.missingActive, path);
    assert.ok(snapshot.files.length > 0);
    assert.equal(await changedSince(snapshot), false);
    await Deno.writeTextFile(path, "");
    assert.equal(await changedSince(snapshot), true);
    closeSnapshot(snapshot);
  });
});
