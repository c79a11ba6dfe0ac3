import assert from "node:assert/strict";
import canonicalize from "canonicalize";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { scanCanonicalBody } from "../../lib/forensic/_canonical_scan.ts";
import { canonicalizeJcs } from "../../lib/forensic/canonicalize_v2.ts";
import { checkV2Line } from "../../lib/forensic/format_v2.ts";
import { GENESIS_V2 } from "../../lib/forensic/types.ts";
import { verifyLog } from "../../lib/forensic/verify.ts";

const DATA = join(import.meta.dirname!, "..", "fixtures", "rfc8785");
const NAMES = ["arrays", "french", "structures", "unicode", "values", "weird"];

for (const name of NAMES) {
  Deno.test(`canonicalizeJcs() matches the RFC 8785 reference output for ${name}.json`, () => {
    const input = Deno.readTextFileSync(join(DATA, "input", `${name}.json`));
    const output = Deno.readFileSync(join(DATA, "output", `${name}.json`));
    const hex = Deno.readTextFileSync(join(DATA, "outhex", `${name}.txt`)).trim().split(/\s+/);
    assert.deepEqual([...output].map((b) => b.toString(16).padStart(2, "0")), hex);
    const canonical = canonicalizeJcs(JSON.parse(input));
    assert.equal(canonical, new TextDecoder().decode(output));
    if (canonical.startsWith("{")) {
      assert.notEqual(scanCanonicalBody(canonical), undefined, `scanner refused ${name}`);
    }
  });
}

/** A v2 line as an independent RFC 8785 writer (npm:canonicalize) would seal it. */
function independentLine(fields: Record<string, unknown>): string {
  const body = canonicalize({
    v: 2,
    seq: 0,
    ts: "2026-01-01T00:00:00.000Z",
    event: "probe",
    prev: GENESIS_V2,
    ...fields,
  })!;
  const hash = createHash("sha256").update(body).digest("hex");
  return `${body.slice(0, -1)},"hash":"${hash}"}`;
}

Deno.test("checkV2Line() accepts every canonical number, 1e+30 and integers beyond 2^53 included", () => {
  for (const n of [1e30, 1e21, 2 ** 60, -(2 ** 53) - 2, 1e-27, 333333333.3333333, 5e-324]) {
    const line = independentLine({ n, list: [n, { m: n }] });
    const checked = checkV2Line(line, undefined);
    assert.equal(checked.ok, true, `${n}: ${checked.ok ? "" : checked.detail}`);
  }
});

Deno.test("verifyLog() accepts a log sealed by an independent RFC 8785 writer", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "kv_cache.log");
    await Deno.writeTextFile(
      path,
      independentLine({ "!": 1, "1000000000": 2, big: 1e30, "€": "\u20ac", "\n": [] }) + "\n",
    );
    const report = await verifyLog(path);
    assert.equal(report.ok, true, report.failure?.detail);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkV2Line() still refuses a number that is not in ECMAScript form", () => {
  for (const text of ["1E30", "1e30", "1.0", "-0", "9007199254740993"]) {
    const line = independentLine({ n: 0 }).replace('"n":0', `"n":${text}`);
    const checked = checkV2Line(line, undefined);
    assert.equal(checked.ok, false, text);
  }
});
