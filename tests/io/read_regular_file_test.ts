import assert from "node:assert/strict";
import {
  FileTooLargeError,
  fromNodeError,
  NotRegularFileError,
  readRegularFileSync,
  SymlinkRefusedError,
} from "../../lib/io/read_regular_file.ts";
import { withTempDir } from "../_temp_dir.ts";

Deno.test("readRegularFileSync() reads a file up to the cap, larger than its first buffer", async () => {
  await withTempDir(async (dir) => {
    const text = "x".repeat(10_000);
    await Deno.writeTextFile(`${dir}/f`, text);
    const read = readRegularFileSync(`${dir}/f`, { maxBytes: 10_000 });
    assert.equal(new TextDecoder().decode(read.bytes), text);
    assert.equal(read.ino, (await Deno.stat(`${dir}/f`)).ino);
    assert.throws(() => readRegularFileSync(`${dir}/f`, { maxBytes: 9_999 }), FileTooLargeError);
  });
});

Deno.test("readRegularFileSync() follows a symlink unless noFollow, which refuses it", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/target`, "t");
    await Deno.symlink(`${dir}/target`, `${dir}/link`);
    assert.equal(readRegularFileSync(`${dir}/link`, { maxBytes: 10 }).bytes.length, 1);
    assert.throws(
      () => readRegularFileSync(`${dir}/link`, { maxBytes: 10, noFollow: true }),
      SymlinkRefusedError,
    );
  });
});

Deno.test("readRegularFileSync() refuses a FIFO and a device without blocking, maps missing paths", async () => {
  await withTempDir(async (dir) => {
    assert.equal((await new Deno.Command("mkfifo", { args: [`${dir}/p`] }).output()).code, 0);
    assert.throws(() => readRegularFileSync(`${dir}/p`, { maxBytes: 10 }), NotRegularFileError);
    assert.throws(() => readRegularFileSync("/dev/zero", { maxBytes: 10 }), NotRegularFileError);
    assert.throws(
      () => readRegularFileSync(`${dir}/absent`, { maxBytes: 10 }),
      Deno.errors.NotFound,
    );
    await Deno.writeTextFile(`${dir}/file`, "");
    assert.throws(
      () => readRegularFileSync(`${dir}/file/below`, { maxBytes: 10 }),
      Deno.errors.NotFound,
    );
  });
});

Deno.test("fromNodeError() maps POSIX codes to Deno's classes and leaves others alone", () => {
  assert.ok(fromNodeError({ code: "EACCES" }) instanceof Deno.errors.PermissionDenied);
  assert.ok(fromNodeError({ code: "ELOOP" }) instanceof SymlinkRefusedError);
  const other = new Error("EIO");
  assert.equal(fromNodeError(other), other);
  assert.equal(fromNodeError(null), null);
});
