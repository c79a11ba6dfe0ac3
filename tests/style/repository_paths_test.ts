/**
 * Tests, benchmarks and sources run from a clone alone: no file may reach a path outside the
 * repository (a user's clone has none of the project's sibling folders). Every relative path literal (`"../x"` in a URL
 * or import, and runs of `".."` arguments to `join`/`resolve`) is resolved against the file's own
 * folder and must stay inside the repository root.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname!, "..", "..");
const SCANNED = /\.(ts|sh|py|json|md)$|^\.ci\/run$/;
const SKIPPED =
  /^(node_modules|\.tools|\.coverage|dist|tests\/fixtures|bench\/results)\/|deno\.lock$/;

// "../../x" inside quotes or backticks.
const RELATIVE_LITERAL = /["'`]((?:\.\.\/)+[^"'`\s]*)["'`]/g;
// join(base, "..", "..", "x") / resolve(...): the `..` arguments and what follows them.
const DOTDOT_ARGUMENTS = /(?:join|resolve)\(([^()]*?(?:"\.\."\s*,\s*)+[^()]*)\)/g;
// A sibling checkout named outright, in any spelling.
// Spelled in pieces so this file does not name the folder it forbids.
const SIBLING_NAME = ["sha", "red"].join("");
const SIBLING = `../${SIBLING_NAME}`;
const SIBLING_FOLDER = new RegExp(`\\.\\./${SIBLING_NAME}\\b|"\\.\\.",\\s*"${SIBLING_NAME}"`);

async function* repositoryFiles(): AsyncGenerator<string> {
  const git = new Deno.Command("git", {
    args: ["ls-files", "--cached", "--others", "--exclude-standard"],
    cwd: ROOT,
    stdout: "piped",
  });
  const { stdout } = await git.output();
  for (const path of new TextDecoder().decode(stdout).split("\n")) {
    // This file's own examples are references on purpose.
    if (path === "tests/style/repository_paths_test.ts") continue;
    if (path !== "" && SCANNED.test(path) && !SKIPPED.test(path)) yield path;
  }
}

function escapes(fromDir: string, target: string): boolean {
  const where = relative(ROOT, resolve(fromDir, target));
  return where === ".." || where.startsWith("../") || where.startsWith("/");
}

/** The places in one file's text that leave the repository. */
export function outsideReferences(path: string, text: string): string[] {
  const found: string[] = [];
  const dir = dirname(join(ROOT, path));
  // A shell script runs from the root (`cd "$(dirname "$0")/.."` and the like), a source file
  // resolves against its own folder: judge both ways and report only what escapes from each.
  const bases = path.endsWith(".sh") || path === ".ci/run" ? [dir, ROOT] : [dir];
  for (const match of text.matchAll(RELATIVE_LITERAL)) {
    if (bases.every((base) => escapes(base, match[1]!))) found.push(match[1]!);
  }
  for (const match of text.matchAll(DOTDOT_ARGUMENTS)) {
    const parts = [...match[1]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    if (escapes(dir, join(...parts))) found.push(match[0]);
  }
  if (SIBLING_FOLDER.test(text)) found.push(SIBLING);
  return found;
}

Deno.test("outsideReferences() finds URL, join and named references that leave the repository", () => {
  assert.deepEqual(outsideReferences("tests/a/x_test.ts", 'new URL("../../../data/", u)'), [
    "../../../data/",
  ]);
  assert.equal(
    outsideReferences("tests/a/x_test.ts", 'join(import.meta.dirname!, "..", "..", "..", "x")')
      .length,
    1,
  );
  assert.deepEqual(outsideReferences("README.md", `see ${SIBLING}/DESIGN.md`), [SIBLING]);
  assert.deepEqual(outsideReferences("tests/a/x_test.ts", 'new URL("../../mod.ts", u)'), []);
  assert.deepEqual(
    outsideReferences("tests/a/x_test.ts", 'join(import.meta.dirname!, "..", "..", "lib")'),
    [],
  );
});

Deno.test("no source, test, benchmark or script refers to a path outside the repository", async () => {
  const offenders: string[] = [];
  for await (const path of repositoryFiles()) {
    const text = await Deno.readTextFile(join(ROOT, path));
    for (const reference of outsideReferences(path, text)) offenders.push(`${path}: ${reference}`);
  }
  assert.deepEqual(offenders, []);
});
