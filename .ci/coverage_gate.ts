/**
 * Line-coverage gate for `deno task coverage`: fails when lines of lib/ and cli/ covered by the
 * test run fall below the threshold. `deno coverage` reports but has no threshold of its own.
 *
 * Usage: deno run --allow-read --allow-run .ci/coverage_gate.ts COVERAGE_DIR MIN_PERCENT [EXCLUDE_REGEX]
 */
const [dir, minText, exclude] = Deno.args;
if (dir === undefined || minText === undefined) {
  console.error("Usage: coverage_gate.ts COVERAGE_DIR MIN_PERCENT [EXCLUDE_REGEX]");
  Deno.exit(1);
}
const min = Number(minText);
const args = ["coverage", dir, "--lcov", "--include=/(lib|cli)/"];
if (exclude) args.push(`--exclude=${exclude}`);
const out = await new Deno.Command(Deno.execPath(), { args, stderr: "inherit" }).output();
if (!out.success) Deno.exit(1);

let found = 0;
let hit = 0;
const rows: [string, number, number][] = [];
let file = "";
for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
  if (line.startsWith("SF:")) file = line.slice(3).replace(`file://${Deno.cwd()}/`, "");
  else if (line.startsWith("LF:")) found = Number(line.slice(3));
  else if (line.startsWith("LH:")) hit = Number(line.slice(3));
  else if (line === "end_of_record") rows.push([file, hit, found]);
}
rows.sort((a, b) => a[0].localeCompare(b[0]));
let totalHit = 0;
let totalFound = 0;
for (const [name, h, f] of rows) {
  totalHit += h;
  totalFound += f;
  console.log(`${(f === 0 ? 100 : (100 * h) / f).toFixed(1).padStart(6)}%  ${h}/${f}  ${name}`);
}
const pct = totalFound === 0 ? 0 : (100 * totalHit) / totalFound;
console.log(
  `lines covered in lib/ and cli/: ${pct.toFixed(2)}% (${totalHit}/${totalFound}), minimum ${min}%`,
);
if (rows.length === 0 || pct < min) {
  console.error(`Coverage gate failed: ${pct.toFixed(2)}% is below ${min}%`);
  Deno.exit(1);
}
