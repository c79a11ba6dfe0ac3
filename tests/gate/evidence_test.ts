import assert from "node:assert/strict";
import { MANIFEST_NAME, writeEvidenceBundle } from "../../lib/gate/evidence.ts";
import { KvhError } from "../../lib/errors.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function hasSha256sum(): Promise<boolean> {
  try {
    return (await new Deno.Command("sha256sum", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

Deno.test("writeEvidenceBundle() writes files and a manifest sha256sum -c accepts", async () => {
  await withTempDir(async (parent) => {
    const dir = `${parent}/bundle`;
    const bundle = await writeEvidenceBundle(dir, [
      { name: "metrics.json", data: new Uint8Array([0x7b, 0x7d]) },
      { name: "verdict.json", data: '{"pass": true}\n' },
    ]);
    assert.deepEqual(bundle.files.map((file) => [file.name, file.bytes]), [
      ["metrics.json", 2],
      ["verdict.json", 15],
    ]);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), [MANIFEST_NAME, "metrics.json", "verdict.json"]);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${dir}/verdict.json`)).mode! & 0o777, 0o600);
    const manifest = await Deno.readTextFile(`${dir}/${MANIFEST_NAME}`);
    assert.equal(
      manifest,
      bundle.files.map((file) => `${file.sha256}  ${file.name}\n`).join(""),
    );
    if (await hasSha256sum()) {
      const check = await new Deno.Command("sha256sum", { args: ["-c", MANIFEST_NAME], cwd: dir })
        .output();
      assert.ok(check.success, new TextDecoder().decode(check.stderr));
      await Deno.writeTextFile(`${dir}/verdict.json`, '{"pass": false}\n');
      const tampered = await new Deno.Command("sha256sum", {
        args: ["-c", MANIFEST_NAME],
        cwd: dir,
        stdout: "null",
        stderr: "null",
      }).output();
      assert.equal(tampered.success, false);
    }
    const leftovers = [];
    for await (const entry of Deno.readDir(parent)) leftovers.push(entry.name);
    assert.deepEqual(leftovers, ["bundle"]);
  });
});

Deno.test("writeEvidenceBundle() refuses a directory that already exists", async () => {
  await withTempDir(async (parent) => {
    await Deno.mkdir(`${parent}/bundle`);
    await Deno.writeTextFile(`${parent}/bundle/old.txt`, "keep");
    await assert.rejects(
      writeEvidenceBundle(`${parent}/bundle`, [{ name: "verdict.json", data: "{}" }]),
      (error: unknown) => {
        assert.ok(error instanceof KvhError);
        assert.equal(error.code, "evidence_exists");
        assert.match(error.message, /already exists/);
        return true;
      },
    );
    assert.equal(await Deno.readTextFile(`${parent}/bundle/old.txt`), "keep");
  });
});

Deno.test("writeEvidenceBundle() refuses unsafe, repeated and reserved names", async () => {
  await withTempDir(async (parent) => {
    for (const names of [["../x"], ["a/b"], [MANIFEST_NAME], ["a.json", "a.json"], [""]]) {
      await assert.rejects(
        writeEvidenceBundle(`${parent}/b`, names.map((name) => ({ name, data: "" }))),
        (error: unknown) => error instanceof KvhError && error.code === "evidence_name_invalid",
      );
    }
  });
});

Deno.test("writeEvidenceBundle() creates missing parents", async () => {
  await withTempDir(async (parent) => {
    await writeEvidenceBundle(`${parent}/ci/run-7/bundle`, [{ name: "verdict.json", data: "{}" }]);
    assert.equal(await Deno.readTextFile(`${parent}/ci/run-7/bundle/verdict.json`), "{}");
  });
});

Deno.test("writeEvidenceBundle() reports a directory it cannot create as exit 1", async () => {
  await withTempDir(async (parent) => {
    await Deno.writeTextFile(`${parent}/file`, "");
    await assert.rejects(
      writeEvidenceBundle(`${parent}/file/bundle`, [{ name: "verdict.json", data: "{}" }]),
      (error: unknown) => {
        assert.ok(error instanceof KvhError);
        assert.equal(error.code, "evidence_write_failed");
        assert.equal(error.exitCode, 1);
        assert.match(error.message, /file\/bundle: /);
        return true;
      },
    );
    const entries = [];
    for await (const entry of Deno.readDir(parent)) entries.push(entry.name);
    assert.deepEqual(entries, ["file"]);
  });
});
