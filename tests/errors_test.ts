import assert from "node:assert/strict";
import { describeIoError, KvhError, type KvhErrorCode } from "../lib/errors.ts";

const ROOT = new URL("../", import.meta.url);

async function sources(dir: URL): Promise<string[]> {
  const texts: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) texts.push(...await sources(url));
    else if (entry.name.endsWith(".ts")) texts.push(await Deno.readTextFile(url));
  }
  return texts;
}

Deno.test("KvhError carries a code of the KvhErrorCode union, checked when compiled", () => {
  const error = new KvhError("log_locked", "Cannot open kv_cache.log: another writer holds it");
  const code: KvhErrorCode = error.code;
  assert.deepEqual([code, error.exitCode, error.name], ["log_locked", 1, "KvhError"]);
  // @ts-expect-error A misspelt code does not compile (tests used to match codes by hand).
  assert.equal(new KvhError("log_lockd", "Typo").code, "log_lockd");
});

Deno.test("KvhErrorCode lists exactly the codes kvh raises", async () => {
  const errors = await Deno.readTextFile(new URL("lib/errors.ts", ROOT));
  const union = errors.slice(
    errors.indexOf("export type KvhErrorCode"),
    errors.indexOf(";\n", errors.indexOf("export type KvhErrorCode")),
  );
  const listed = [...union.matchAll(/\| "([a-z0-9_]+)"/g)].map((match) => match[1]!);
  assert.equal(new Set(listed).size, listed.length, "a code is listed twice");
  const code =
    (await Promise.all(["lib/", "cli/", "ffi/"].map((dir) => sources(new URL(dir, ROOT)))))
      .flat().join("\n").replace(errors, "");
  // NoteError builds its two codes as `note_${reason}`.
  const unused = listed.filter((name) =>
    !code.includes(`"${name}"`) && !(name.startsWith("note_") && code.includes("`note_${"))
  );
  assert.deepEqual(unused, [], "codes no module raises");
});

Deno.test("describeIoError() gives a short reason without the path", () => {
  assert.equal(describeIoError(new Deno.errors.NotFound("open 'x'")), "not found");
  assert.equal(describeIoError(new Deno.errors.IsADirectory("x")), "is a directory");
  assert.equal(
    describeIoError(new Deno.errors.NotCapable("x")),
    "kvh was not granted access to it",
  );
  assert.equal(describeIoError(new Error("first\nsecond")), "first");
  assert.equal(describeIoError("text"), "text");
});
