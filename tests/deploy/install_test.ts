/**
 * The README's install command, run as a new user would: from a copy of the clone, on a PATH
 * with Node/npm tools but no `deno`, into a temporary DENO_INSTALL_ROOT; then `kvh` from another
 * folder. npm is a stub that "installs" this Deno, so the test needs no network.
 */
import assert from "node:assert/strict";
import { ROOT, runProgram } from "../cli/_kvh.ts";
import { writeLog } from "./_log.ts";

/** The tools the scripts (and the stub npm) call: the PATH holds these and npm, no deno. */
const TOOLS = ["sh", "dirname", "head", "grep", "sed", "mkdir", "chmod", "mv", "ln"];

async function which(tool: string): Promise<string> {
  for (const dir of ["/usr/bin", "/bin", "/usr/local/bin"]) {
    try {
      if ((await Deno.stat(`${dir}/${tool}`)).isFile) return `${dir}/${tool}`;
    } catch {
      // Not in this folder.
    }
  }
  throw new Error(`Test prerequisite missing: ${tool}`);
}

function run(command: string, args: string[], cwd: string, env: Record<string, string>) {
  return runProgram(command, args, { cwd, env, clearEnv: true });
}

/** The first ```sh block of the README's `## Install` section: the command a new user runs. */
function readmeInstallCommand(): string[] {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  const section = readme.slice(readme.indexOf("\n## Install\n"));
  const block = /```sh\n([^`]*)```/.exec(section)?.[1] ?? "";
  const lines = block.trim().split("\n");
  assert.equal(lines.length, 1, `the install block is not one command: ${block}`);
  return lines[0]!.split(" ");
}

Deno.test("deploy/install.sh puts a kvh on PATH that runs the clone from any folder", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kvh-install-" });
  try {
    // A clone: the files kvh runs from, with this checkout's node_modules.
    const clone = `${tmp}/clone`;
    await Deno.mkdir(clone);
    for (const path of ["cli", "lib", "ffi", "deploy", "deno.json", "deno.lock"]) {
      const copy = await run(await which("cp"), ["-R", `${ROOT}${path}`, `${clone}/`], tmp, {});
      assert.equal(copy.code, 0, copy.stderr);
    }
    await Deno.symlink(`${ROOT}node_modules`, `${clone}/node_modules`);

    const bin = `${tmp}/path`;
    await Deno.mkdir(bin);
    for (const tool of TOOLS) await Deno.symlink(await which(tool), `${bin}/${tool}`);
    await Deno.writeTextFile(
      `${bin}/npm`,
      [
        "#!/bin/sh",
        `echo "$@" >> ${tmp}/npm.log`,
        'while [ "$1" != "--prefix" ]; do shift; done',
        'mkdir -p "$2/node_modules/.bin"',
        `ln -s ${Deno.execPath()} "$2/node_modules/.bin/deno"`,
        "",
      ].join("\n"),
    );
    await Deno.chmod(`${bin}/npm`, 0o755);
    const denoDir = JSON.parse(
      new TextDecoder().decode(
        (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
      ),
    ).denoDir;
    const env = {
      PATH: bin,
      HOME: `${tmp}/home`,
      DENO_DIR: denoDir,
      DENO_INSTALL_ROOT: `${tmp}/root`,
      NO_COLOR: "1",
    };
    const elsewhere = `${tmp}/work`;
    await Deno.mkdir(elsewhere);

    // Before the install, the launcher says what to run instead of failing obscurely.
    const early = await run(`${clone}/deploy/bin/kvh`, ["--version"], elsewhere, env);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /^kvh: Deno not found: run \S+\/deploy\/install\.sh/);

    const [shell, script, ...rest] = readmeInstallCommand();
    assert.deepEqual([shell, script, rest], ["sh", "deploy/install.sh", []]);
    // Run as the README says, from the clone's root.
    const install = await run(`${bin}/sh`, [script!], clone, env);
    assert.equal(install.code, 0, install.stdout + install.stderr);
    assert.match(
      await Deno.readTextFile(`${tmp}/npm.log`),
      /--prefix \S+\/clone\/\.tools .*deno@2\.9\.6/,
    );
    const kvh = `${tmp}/root/bin/kvh`;
    assert.ok(((await Deno.stat(kvh)).mode! & 0o111) !== 0, "kvh is not executable");
    // Only a pointer to the clone: no copy of the configuration to go stale after git pull.
    const wrapper = await Deno.readTextFile(kvh);
    assert.ok(wrapper.includes(`${clone}/deploy/bin/kvh`), wrapper);
    assert.doesNotMatch(wrapper, /--allow-|deno\.json/);

    // The clone's own forensics/ holds garbage: kvh must read the caller's log instead.
    await Deno.mkdir(`${clone}/forensics`);
    await Deno.writeTextFile(`${clone}/forensics/kv_cache.log`, "not a log\n");
    await writeLog(elsewhere, 3);
    const verify = await run(kvh, ["verify", "forensics/kv_cache.log", "--json"], elsewhere, env);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(JSON.parse(verify.stdout).records, 3);

    // git pull: a changed version in the clone shows at once, without reinstalling.
    const config = JSON.parse(await Deno.readTextFile(`${clone}/deno.json`));
    await Deno.writeTextFile(
      `${clone}/deno.json`,
      JSON.stringify({ ...config, version: "9.9.9" }),
    );
    const version = await run(kvh, ["--version"], elsewhere, env);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^kvh 9\.9\.9\n/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
