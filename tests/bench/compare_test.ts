import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../../bench/compare.ts", import.meta.url));

Deno.test("bench/compare.ts writes the side-by-side table and its figures", async () => {
  const out = await Deno.makeTempDir();
  try {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--quiet", SCRIPT, "--quick", "--runs", "1", "--out", out],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const figures = JSON.parse(await Deno.readTextFile(`${out}/compare.json`));
    for (const [name, value] of Object.entries(figures.kvh)) {
      assert.ok(typeof value === "number" && value > 0 && Number.isFinite(value), name);
    }
    assert.match(figures.loadBefore, /^\d+\.\d\d \d+\.\d\d \d+\.\d\d$/);
    assert.equal(figures.python.verifyLinesPerSecond, 122000);
    const table = await Deno.readTextFile(`${out}/compare.md`);
    const rows = table.split("\n").filter((line) =>
      line.startsWith("| ") && !line.startsWith("| work")
    );
    assert.equal(rows.length, 5, table);
    assert.match(table, /--quick: smoke-test sizes, not a benchmark/);
    assert.match(table, /Load\naverage|Load average/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("bench/compare.ts refuses a run count that is not a positive integer", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", SCRIPT, "--runs", "0"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.notEqual(code, 0);
  assert.match(new TextDecoder().decode(stderr), /Invalid --runs: 0/);
});
