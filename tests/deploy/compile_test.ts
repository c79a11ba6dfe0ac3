/**
 * `deno task compile` cannot run here (no `denort` runtime to embed), so this checks everything
 * short of it: the task's flags, that the module graph holds every subcommand and every module
 * loaded at run time (dynamic imports and the verify worker), and that kvh run with exactly the
 * task's permissions passes the CLI tests.
 */
import assert from "node:assert/strict";
import { compilePermissions, compileTaskFlags, kvhRunArgs, ROOT } from "../cli/_kvh.ts";
import { compileGraph, compileIncludes, localPath } from "./_graph.ts";

const LEAST_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-ffi",
];

/** Source lines that are code, not comments (JSDoc text mentions `import(` in prose). */
function codeLines(text: string): string[] {
  return text.split("\n").filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line));
}

Deno.test("compile task: least permissions, the verify worker included, output dist/kvh", () => {
  const flags = compileTaskFlags();
  assert.deepEqual(compilePermissions(), LEAST_PERMISSIONS);
  for (const broad of ["-A", "--allow-all", "--allow-run", "--allow-sys", "--allow-import"]) {
    assert.ok(!flags.some((flag) => flag.startsWith(broad)), `${broad} is more than kvh needs`);
  }
  const option = (name: string) => flags.filter((_, i) => flags[i - 1] === name);
  assert.deepEqual(option("--include"), ["lib/forensic/_check_worker.ts"]);
  assert.deepEqual(option("--output"), ["dist/kvh"]);
  const task: string = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks.compile;
  assert.match(task.split("&&")[0]!, /\scli\/main\.ts\s*$/);
  // The FFI bindings look for their libraries beside the executable: the task puts them there.
  assert.match(task, /cp ffi\/native\/build\/libkvh_cpu\.so dist\//);
  assert.match(task, /cp ffi\/native\/build\/libkvh_hash\.so dist\//);
  assert.match(task, /cp ffi\/native\/build\/libkvh_pool\.so dist\//);
  assert.match(task, /cp ffi\/cuda\/build\/libkvh_cuda\.so dist\//);
});

Deno.test("kvh task, launcher and compile task grant the same permissions", () => {
  const tasks = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks;
  const flagsOf = (text: string) => text.match(/--(allow|deny)-[a-z-]+(=\S+)?/g) ?? [];
  assert.deepEqual(flagsOf(tasks.kvh), LEAST_PERMISSIONS);
  assert.deepEqual(flagsOf(Deno.readTextFileSync(`${ROOT}deploy/bin/kvh`)), LEAST_PERMISSIONS);
});

Deno.test("compile graph: every subcommand, no dynamic import or worker outside it", async () => {
  const includes = compileIncludes();
  const graph = await compileGraph();
  const inGraph = new Set(graph.map((module) => module.specifier));
  for (const module of graph) assert.equal(module.error, undefined, module.specifier);

  const commands = [...Deno.readDirSync(`${ROOT}cli`)]
    .filter((entry) => entry.name.endsWith(".ts"))
    .map((entry) => `file://${ROOT}cli/${entry.name}`);
  for (const command of commands) assert.ok(inGraph.has(command), `${command} is unreachable`);

  for (const module of graph) {
    const path = localPath(module.specifier);
    if (path === undefined || !path.endsWith(".ts")) continue;
    for (const dependency of module.dependencies ?? []) {
      // npm packages are bundled whole from node_modules; local modules must be in the graph.
      if (dependency.isDynamic && dependency.code?.specifier.startsWith("file:")) {
        assert.ok(inGraph.has(dependency.code!.specifier), `${path}: ${dependency.specifier}`);
      }
    }
    for (const line of codeLines(Deno.readTextFileSync(`${ROOT}${path}`))) {
      // deno compile bundles only what it can see: a computed specifier is loaded from nowhere.
      assert.ok(
        !/\bimport\(\s*(?!"[^"]+"\s*\))/.test(line),
        `${path}: a dynamic import without a literal specifier: ${line.trim()}`,
      );
      for (const match of line.matchAll(/new URL\("([^"]+\.ts)", import\.meta\.url\)/g)) {
        const target = new URL(match[1]!, module.specifier).href;
        assert.ok(
          includes.some((include) => `file://${ROOT}${include}` === target),
          `${path} loads ${match[1]} at run time: add it to the compile task's --include`,
        );
      }
    }
  }
});

Deno.test("kvhRunArgs() uses the compile permissions under KVH_TEST_PERMISSIONS=compile", () => {
  const before = Deno.env.get("KVH_TEST_PERMISSIONS");
  try {
    Deno.env.set("KVH_TEST_PERMISSIONS", "compile");
    assert.deepEqual(kvhRunArgs(), ["run", ...LEAST_PERMISSIONS, `${ROOT}cli/main.ts`]);
    Deno.env.delete("KVH_TEST_PERMISSIONS");
    assert.deepEqual(kvhRunArgs(), ["run", "-A", `${ROOT}cli/main.ts`]);
  } finally {
    if (before !== undefined) Deno.env.set("KVH_TEST_PERMISSIONS", before);
  }
});

Deno.test({
  name: "the CLI tests pass with exactly the compile task's permissions",
  // A nested test run of its own: skipped inside itself.
  ignore: Deno.env.get("KVH_TEST_PERMISSIONS") === "compile",
  async fn() {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", "--quiet", "tests/cli/"],
      cwd: ROOT,
      env: { KVH_TEST_PERMISSIONS: "compile", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, text.slice(-4000));
  },
});
