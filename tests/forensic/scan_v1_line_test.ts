import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { sha256Hex } from "../../lib/forensic/digest.ts";
import { JsonObject, JsonParseError, parseJson } from "../../lib/forensic/_json.ts";
import { checkV1Record, scanV1Line, sealV1Record } from "../../lib/forensic/format_v1.ts";

const SEED = 1301;
const PEER = join(import.meta.dirname!, "..", "fixtures", "python-tool");

/** What the full path (strict parse, Python-style re-serialisation) makes of a line. */
function fullPath(line: string) {
  let parsed;
  try {
    parsed = parseJson(line);
  } catch (error) {
    if (error instanceof JsonParseError) return undefined;
    throw error;
  }
  if (!(parsed instanceof JsonObject) || parsed.has("v")) return undefined;
  const check = checkV1Record(parsed);
  const eventType = parsed.get("event_type");
  return { ...check, eventType, mac: parsed.get("hmac") };
}

// Whenever the fast path reads a line, the full path must read it too and hash the same bytes.
function assertAgrees(line: string): boolean {
  const scan = scanV1Line(line);
  if (scan === undefined) return false;
  const full = fullPath(line);
  assert.ok(full !== undefined, `the full path rejects ${line}`);
  assert.equal(sha256Hex(scan.message), full.computedHash, line);
  assert.equal(scan.currHash, full.currHash);
  assert.equal(scan.prevHash, full.prevHash);
  assert.equal(scan.mac, full.mac);
  assert.equal(scan.eventType, full.eventType);
  return true;
}

Deno.test("scanV1Line() reads every line of the Python tool's plain and hmac logs", () => {
  for (const file of ["plain/kv_cache.log", "hmac/kv_cache.log"]) {
    const lines = Deno.readTextFileSync(join(PEER, file)).split("\n").filter((l) => l !== "");
    for (const line of lines) {
      assert.ok(assertAgrees(line), `${file}: ${line}`);
      assert.equal(sha256Hex(scanV1Line(line)!.message), scanV1Line(line)!.currHash);
    }
  }
});

Deno.test("scanV1Line() agrees with the full path on every fixture line it reads", () => {
  for (const entry of Deno.readDirSync(PEER)) {
    if (!entry.isDirectory) continue;
    for (const file of Deno.readDirSync(join(PEER, entry.name))) {
      if (!file.name.endsWith(".log")) continue;
      const text = Deno.readTextFileSync(join(PEER, entry.name, file.name));
      for (const line of text.split("\n")) assertAgrees(line);
    }
  }
});

Deno.test("scanV1Line() leaves escapes, nested objects, other spacing and duplicates to the full path", () => {
  const { line } = sealV1Record({ event_type: "free", a: [1, 2.5, "x"] }, "GENESIS");
  assert.ok(scanV1Line(line) !== undefined);
  for (
    const changed of [
      line.replace('"free"', '"fr\\u0065e"'),
      line.replace('"free"', '{"x": 1}'),
      line.replace(", ", ","),
      line.replace('"a": ', '"a":  '),
      line.replace('"a": [1', '"event_type": "x", "a": [1'),
      line.replace('"a"', '"v"'),
      line.replace('"free"', '"prune"'),
      line.replace('"free"', "7"),
      line.replace("2.5", "NaN"),
      line.replace("2.5", "02.5"),
      line + " ",
      " " + line,
      line.replace(/, "curr_hash": "[0-9a-f]+"/, ""),
      line.replace('"free"', '"\ud800"'),
    ]
  ) {
    assert.equal(scanV1Line(changed), undefined, changed);
  }
});

Deno.test("scanV1Line() respells numbers as the full path does", () => {
  const { line } = sealV1Record({ n: 1 }, "GENESIS");
  for (
    const spelled of ["1E-7", "100.0", "-0", "-0.0", "1e400", "123456789012345678901234567890"]
  ) {
    const changed = line.replace('"n": 1', `"n": ${spelled}`);
    assert.ok(assertAgrees(changed), changed);
  }
});

Deno.test("scanV1Line() agrees with the full path on any edited line", () => {
  const lines = [
    sealV1Record(
      { event_type: "allocate", shape: [2, [8, []], 64], pi: 3.14, ok: true },
      "GENESIS",
      {
        key: new Uint8Array([1]),
      },
    ).line,
    sealV1Record({ "é": "日本", z: null, "": false, "10": -1e-7, "2": 1e21 }, "f".repeat(64)).line,
  ];
  const edit = fc.record({
    line: fc.nat({ max: lines.length - 1 }),
    at: fc.nat(),
    text: fc.oneof(
      fc.constantFrom("\\", '"', ",", ", ", " ", ":", "{", "}", "[", "]", "0", "e", ".", "-", "N"),
      fc.string({ unit: "grapheme", maxLength: 3 }),
    ),
    cut: fc.nat({ max: 3 }),
  });
  let read = 0;
  fc.assert(
    fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
      const changed = [...lines];
      for (const { line, at, text, cut } of edits) {
        const original = changed[line]!;
        const i = at % (original.length + 1);
        changed[line] = original.slice(0, i) + text + original.slice(i + cut);
      }
      for (const line of changed) if (assertAgrees(line)) read++;
    }),
    { seed: SEED, numRuns: 1500 },
  );
  // The edits must leave many lines readable, or the property says little.
  assert.ok(read > 500, `only ${read} edited lines were read`);
});
