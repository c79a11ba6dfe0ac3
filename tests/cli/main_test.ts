import assert from "node:assert/strict";
import { buildProgram, VERSION } from "../../cli/main.ts";
import { writeLog } from "../deploy/_log.ts";
import { ROOT, runKvh } from "./_kvh.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kvh-main-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function withoutInitCwd(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  return { ...env, NO_COLOR: "1" };
}

Deno.test("VERSION is deno.json's version", () => {
  assert.equal(VERSION, JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).version);
});

Deno.test("kvh --version prints kvh's and Deno's versions and where the CUDA library is", async () => {
  await withDir(async (dir) => {
    const library = `${dir}/libkvh_cuda.so`;
    await Deno.writeFile(library, new Uint8Array());
    const found = await runKvh(["--version"], { env: { KVH_CUDA_LIB: library } });
    assert.equal(found.code, 0, found.stderr);
    const lines = found.stdout.trim().split("\n");
    assert.equal(lines[0], `kvh ${VERSION}`);
    assert.equal(lines[1], `deno ${Deno.version.deno}`);
    assert.ok(lines.includes(`cuda library: found at ${library}`), found.stdout);
    assert.match(found.stdout, /^cpu library: (found at|not found \(looked in) /m);
    assert.match(found.stdout, /^pool library: (found at|not found \(looked in) /m);

    const missing = await runKvh(["-V"], { env: { KVH_CUDA_LIB: `${dir}/none.so` } });
    assert.equal(missing.code, 0, missing.stderr);
    assert.ok(
      missing.stdout.includes(`cuda library: not found (looked in ${dir}/none.so)`),
      missing.stdout,
    );
  });
});

Deno.test("KVH_CWD makes relative paths the caller's folder", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 7);
    const run = await runKvh(["verify", "forensics/kv_cache.log", "--json"], {
      env: { KVH_CWD: dir },
      cwd: ROOT,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).records, 7);

    const gone = await runKvh(["verify", "forensics/kv_cache.log"], {
      env: { KVH_CWD: `${dir}/missing` },
    });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^kvh: Cannot enter KVH_CWD .*missing: /);
  });
});

Deno.test("deno task kvh from another folder verifies that folder's log", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 5);
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "-q",
        "--config",
        `${ROOT}deno.json`,
        "kvh",
        "verify",
        "forensics/kv_cache.log",
        "--json",
      ],
      cwd: dir,
      // As from a shell: deno task keeps an INIT_CWD it inherits (as npm does), and this test
      // may itself run under `deno task test`.
      env: withoutInitCwd(),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.equal(JSON.parse(stdout).records, 5);
  });
});

Deno.test("buildProgram() builds every subcommand without running one", async () => {
  const program = await buildProgram();
  const names = program.commands.map((command) => command.name()).sort();
  for (const name of ["gate", "prune", "sanitize-bench", "serve-metrics", "trace", "verify"]) {
    assert.ok(names.includes(name), names.join(", "));
  }
});
