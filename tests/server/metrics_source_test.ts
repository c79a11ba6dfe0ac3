import assert from "node:assert/strict";
import { FileMetricsSource } from "../../lib/server/metrics_source.ts";
import { waitFor } from "../e2e/_harness.ts";

const decoder = new TextDecoder();

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function text(source: FileMetricsSource): string {
  const snapshot = source.snapshot();
  return snapshot.ok ? decoder.decode(snapshot.body) : `!${snapshot.reason}`;
}

async function replaceAtomically(path: string, content: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, content);
  await Deno.rename(`${path}.tmp`, path);
}

Deno.test("FileMetricsSource.snapshot() returns the same bytes object while the file is unchanged", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/m.prom`, "a 1\n");
    using source = new FileMetricsSource(`${dir}/m.prom`, { watch: false, statIntervalMs: 0 });
    const first = source.snapshot();
    const second = source.snapshot();
    assert.ok(first.ok && second.ok);
    assert.equal(first.body, second.body);
    assert.deepEqual(source.stats().reloads, 1);
  });
});

Deno.test("FileMetricsSource.snapshot() sees an atomic replacement of the same size and mtime", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/m.prom`;
    await Deno.writeTextFile(path, "a 1\n");
    const { mtime } = await Deno.stat(path);
    using source = new FileMetricsSource(path, { watch: false, statIntervalMs: 0 });
    assert.equal(text(source), "a 1\n");
    await Deno.writeTextFile(`${path}.tmp`, "a 2\n");
    await Deno.utime(`${path}.tmp`, mtime!, mtime!);
    await Deno.rename(`${path}.tmp`, path);
    // Only the inode differs: the stat identity must include it.
    assert.equal(text(source), "a 2\n");
    assert.equal(source.stats().reloads, 2);
  });
});

Deno.test("FileMetricsSource.snapshot() reports a missing file once in the log and recovers", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/m.prom`;
    const lines: string[] = [];
    await Deno.writeTextFile(path, "a 1\n");
    using source = new FileMetricsSource(path, {
      watch: false,
      statIntervalMs: 0,
      log: (l) => lines.push(l),
    });
    await Deno.remove(path);
    assert.equal(text(source), "!Metrics file not found");
    assert.equal(text(source), "!Metrics file not found");
    assert.equal(source.stats().reloadFailures, 1);
    assert.equal(source.stats().mtimeMs, undefined);
    await replaceAtomically(path, "a 3\n");
    assert.equal(text(source), "a 3\n");
    assert.deepEqual(lines, [
      `Cannot reload metrics file ${path}: not found`,
      `Reloaded metrics file ${path}: serving it again`,
    ]);
  });
});

Deno.test("FileMetricsSource.snapshot() refuses a directory as not a regular file", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/m.prom`);
    using source = new FileMetricsSource(`${dir}/m.prom`, { watch: false, statIntervalMs: 0 });
    assert.equal(text(source), "!Metrics file unreadable: not a regular file");
  });
});

Deno.test("FileMetricsSource.snapshot() refuses a FIFO without blocking on it", async () => {
  await withDir(async (dir) => {
    const made = await new Deno.Command("mkfifo", { args: [`${dir}/m.prom`] }).output();
    assert.equal(made.code, 0);
    using source = new FileMetricsSource(`${dir}/m.prom`, { watch: false, statIntervalMs: 0 });
    assert.equal(text(source), "!Metrics file unreadable: not a regular file");
  });
});

Deno.test("FileMetricsSource.snapshot() never follows a symlink to another file", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/secret`, "root:hash:19000:0:99999:7:::\n");
    await Deno.symlink(`${dir}/secret`, `${dir}/m.prom`);
    const lines: string[] = [];
    using source = new FileMetricsSource(`${dir}/m.prom`, {
      watch: false,
      statIntervalMs: 0,
      log: (l) => lines.push(l),
    });
    assert.equal(text(source), "!Metrics file unreadable: a symlink, which is never followed");
    assert.match(
      lines[0]!,
      /Cannot reload metrics file .*: it is a symlink, which is never followed/,
    );
  });
});

Deno.test("FileMetricsSource.snapshot() stops serving once the file is replaced by a symlink", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/secret`, "secret 1\n");
    await Deno.writeTextFile(`${dir}/m.prom`, "kvh_up 1\n");
    using source = new FileMetricsSource(`${dir}/m.prom`, { watch: false, statIntervalMs: 0 });
    assert.equal(text(source), "kvh_up 1\n");
    await Deno.remove(`${dir}/m.prom`);
    await Deno.symlink(`${dir}/secret`, `${dir}/m.prom`);
    assert.equal(text(source), "!Metrics file unreadable: a symlink, which is never followed");
  });
});

Deno.test("FileMetricsSource.snapshot() refuses a device such as /dev/zero", () => {
  using source = new FileMetricsSource("/dev/zero", { watch: false, statIntervalMs: 0 });
  assert.equal(text(source), "!Metrics file unreadable: not a regular file");
});

Deno.test("FileMetricsSource.snapshot() refuses a file above maxBytes", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/m.prom`, "a 1\n".repeat(10));
    const lines: string[] = [];
    using source = new FileMetricsSource(`${dir}/m.prom`, {
      watch: false,
      maxBytes: 39,
      log: (l) => lines.push(l),
    });
    assert.equal(text(source), "!Metrics file unreadable: too large");
    assert.match(lines[0]!, /too large: 40 bytes, limit 39$/);
  });
});

const IS_ROOT = Deno.uid() === 0;

Deno.test({
  name: `FileMetricsSource.snapshot() reports an unreadable file without its path${
    IS_ROOT ? " (skipped: root reads a mode-000 file)" : ""
  }`,
  ignore: IS_ROOT,
  fn: async () => {
    await withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/m.prom`, "a 1\n", { mode: 0o000 });
      await Deno.chmod(`${dir}/m.prom`, 0o000);
      using source = new FileMetricsSource(`${dir}/m.prom`, { watch: false });
      assert.equal(text(source), "!Metrics file unreadable: permission denied");
    });
  },
});

Deno.test("FileMetricsSource.snapshot() reads a file larger than its first buffer", async () => {
  await withDir(async (dir) => {
    const big = "kvh_metric 1\n".repeat(2000);
    await Deno.writeTextFile(`${dir}/m.prom`, big);
    using source = new FileMetricsSource(`${dir}/m.prom`, { watch: false });
    assert.equal(text(source), big);
  });
});

Deno.test("FileMetricsSource.snapshot() stats at most once per statIntervalMs", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/m.prom`;
    await Deno.writeTextFile(path, "a 1\n");
    using source = new FileMetricsSource(path, { watch: false, statIntervalMs: 3_600_000 });
    assert.equal(text(source), "a 1\n");
    await replaceAtomically(path, "a 2\n");
    assert.equal(text(source), "a 1\n");
  });
});

Deno.test("FileMetricsSource reloads on a directory event without waiting for a stat", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/m.prom`;
    await Deno.writeTextFile(path, "a 1\n");
    using source = new FileMetricsSource(path, { statIntervalMs: 3_600_000 });
    assert.equal(text(source), "a 1\n");
    await replaceAtomically(path, "a 2\n");
    await waitFor("the watcher's reload", () => source.stats().reloads === 2 || undefined, 10_000);
    assert.equal(text(source), "a 2\n");
  });
});

Deno.test("FileMetricsSource serves a file whose directory appears after it started", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/later/m.prom`;
    using source = new FileMetricsSource(path, { statIntervalMs: 0 });
    assert.equal(text(source), "!Metrics file not found");
    await Deno.mkdir(`${dir}/later`);
    await Deno.writeTextFile(path, "a 1\n");
    assert.equal(text(source), "a 1\n");
  });
});

Deno.test("FileMetricsSource.close() can be called twice", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/m.prom`, "a 1\n");
    const source = new FileMetricsSource(`${dir}/m.prom`);
    source.close();
    source.close();
    assert.equal(text(source), "a 1\n");
  });
});
