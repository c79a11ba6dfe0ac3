import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import fc from "fast-check";
import { JsonNumber, JsonObject, parseJson } from "../../lib/forensic/_json.ts";
import {
  canonicalV1,
  checkV1Record,
  GENESIS_V1,
  pythonFloatRepr,
  sealV1Record,
} from "../../lib/forensic/format_v1.ts";
import { referencePythonRepr } from "../_reference/python_repr.ts";
import { modelToText, type ModelValue, referenceCanonicalV1 } from "../_reference/canonical_v1.ts";

const SEED = 42;
const PEER = new URL("../fixtures/python-tool/", import.meta.url);
const encoder = new TextEncoder();

function peerText(path: string): string {
  return Deno.readTextFileSync(new URL(path, PEER));
}

function peerBytes(path: string): Uint8Array {
  return Deno.readFileSync(new URL(path, PEER));
}

function peerRecords(path: string, allowNonFinite = false): JsonObject[] {
  return peerText(path).split("\n").filter((line) => line !== "").map((line) => {
    const value = parseJson(line, { allowNonFinite });
    assert.ok(value instanceof JsonObject);
    return value;
  });
}

/** 1-based numbers of the lines whose own hash does not verify. */
function badHashLines(records: JsonObject[], key?: Uint8Array): number[] {
  const bad: number[] = [];
  records.forEach((record, i) => {
    const check = checkV1Record(record, key);
    if (check.currHash !== check.computedHash || check.macOk === false) bad.push(i + 1);
  });
  return bad;
}

/** 1-based number of the first line whose prev_hash does not continue the chain. */
function firstBrokenLink(records: JsonObject[]): number | undefined {
  let prev = GENESIS_V1;
  for (const [i, record] of records.entries()) {
    const check = checkV1Record(record);
    if (check.prevHash !== prev) return i + 1;
    prev = check.currHash!;
  }
  return undefined;
}

const python3 = (() => {
  try {
    return new Deno.Command("python3", { args: ["--version"] }).outputSync().success;
  } catch {
    return false;
  }
})();

async function python(script: string, input: string): Promise<string> {
  const child = new Deno.Command("python3", {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encoder.encode(input));
  await writer.close();
  const { success, stdout, stderr } = await child.output();
  assert.ok(success, new TextDecoder().decode(stderr));
  return new TextDecoder().decode(stdout);
}

Deno.test("checkV1Record() reproduces every hash of the Python tool's untampered logs", () => {
  const logs = [
    "plain/kv_cache.log",
    "hmac/kv_cache.log",
    "unicode/kv_cache.log",
    "floats/kv_cache.log",
    ...[...Deno.readDirSync(new URL("rotated/", PEER))]
      .map((entry) => `rotated/${entry.name}`)
      .filter((path) => path.endsWith(".log")),
  ];
  assert.equal(logs.length, 11);
  for (const log of logs) {
    const records = peerRecords(log);
    assert.ok(records.length > 0, log);
    assert.deepEqual(badHashLines(records), [], log);
    assert.equal(firstBrokenLink(records), undefined, log);
  }
});

Deno.test("checkV1Record() verifies floats/respelled.log from the parsed values", () => {
  const original = peerText("floats/kv_cache.log");
  const respelled = peerText("floats/respelled.log");
  assert.notEqual(original, respelled);
  const records = peerRecords("floats/respelled.log");
  assert.equal(records.length, 36);
  assert.deepEqual(badHashLines(records), []);
});

Deno.test("checkV1Record() flags only the edited line of tampered-edit", () => {
  assert.deepEqual(badHashLines(peerRecords("tampered-edit/kv_cache.log")), [13]);
});

Deno.test("checkV1Record() reports prev_hash so deleted and swapped lines break the chain", () => {
  const deleted = peerRecords("tampered-delete/kv_cache.log");
  assert.deepEqual(badHashLines(deleted), []);
  assert.equal(firstBrokenLink(deleted), 26);
  const reordered = peerRecords("tampered-reorder/kv_cache.log");
  assert.deepEqual(badHashLines(reordered), []);
  assert.equal(firstBrokenLink(reordered), 31);
});

Deno.test("checkV1Record() checks MACs with the right key and fails them with a wrong one", () => {
  const records = peerRecords("hmac/kv_cache.log");
  const secret = peerBytes("hmac/secret.txt");
  const wrong = peerBytes("hmac-wrong-key/wrong-secret.txt");
  for (const record of records) {
    assert.equal(checkV1Record(record, secret).macOk, true);
    assert.equal(checkV1Record(record, wrong).macOk, false);
    const unchecked = checkV1Record(record);
    assert.equal(unchecked.macOk, undefined);
    assert.equal(unchecked.hasMac, true);
    assert.equal(unchecked.computedHash, unchecked.currHash);
  }
  assert.deepEqual(badHashLines(peerRecords("hmac-wrong-key/kv_cache.log"), wrong)[0], 1);
});

Deno.test("checkV1Record() reports a record without hmac when a key is given", () => {
  const check = checkV1Record(peerRecords("plain/kv_cache.log")[0]!, peerBytes("hmac/secret.txt"));
  assert.equal(check.hasMac, false);
  assert.equal(check.macOk, undefined);
});

Deno.test("checkV1Record() treats an empty key as no key, like the Python tool", () => {
  const record = peerRecords("hmac/kv_cache.log")[0]!;
  assert.equal(checkV1Record(record, new Uint8Array()).macOk, undefined);
});

Deno.test("checkV1Record() fails a non-string hmac and reports a missing prev_hash", () => {
  const record = parseJson('{"a": 1, "hmac": 5, "curr_hash": 7}') as JsonObject;
  const check = checkV1Record(record, encoder.encode("k"));
  assert.equal(check.macOk, false);
  assert.equal(check.currHash, undefined);
  assert.equal(check.prevHash, undefined);
  const expected = createHash("sha256").update('{"a":1}').digest("hex");
  assert.equal(check.computedHash, expected);
});

Deno.test("checkV1Record() matches createHmac for keys of every length", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 150 }), fc.string(), (key, text) => {
      const { line } = sealV1Record({ text }, GENESIS_V1, { key, now: new Date(0) });
      const record = parseJson(line) as JsonObject;
      const body = new JsonObject(
        record.entries.filter(([name]) => name !== "curr_hash" && name !== "hmac"),
      );
      const expected = createHmac("sha256", key)
        .update(GENESIS_V1 + canonicalV1(body))
        .digest("hex");
      assert.equal(record.get("hmac"), expected);
      assert.equal(checkV1Record(record, key).macOk, true);
    }),
    { seed: SEED, numRuns: 100 },
  );
});

Deno.test("parseJson() rejects a line with a key duplicated before the genuine one", () => {
  const line = peerText("plain/kv_cache.log").split("\n")[12]!;
  const forged = line.replace('"tenant_id": ', '"tenant_id": "mallory", "tenant_id": ');
  assert.notEqual(forged, line);
  assert.throws(() => parseJson(forged), {
    name: "JsonParseError",
    duplicateKey: "tenant_id",
    message: /^Duplicate key "tenant_id" at offset \d+$/,
  });
});

Deno.test("parseJson() rejects floats/nonfinite.log unless allowNonFinite is set", () => {
  for (const line of peerText("floats/nonfinite.log").split("\n").filter((l) => l !== "")) {
    assert.throws(() => parseJson(line), { name: "JsonParseError", message: /compatibility/ });
  }
  const records = peerRecords("floats/nonfinite.log", true);
  assert.equal(records.length, 3);
  assert.deepEqual(badHashLines(records), []);
  assert.equal(firstBrokenLink(records), undefined);
});

Deno.test("canonicalV1() re-emits every token of floats/values.json as Python does", () => {
  const values = JSON.parse(peerText("floats/values.json")) as {
    name: string;
    python_type: string;
    python_repr: string;
    json_token: string;
  }[];
  assert.ok(values.length >= 30);
  for (const { name, python_type, python_repr, json_token } of values) {
    const canonical = canonicalV1(parseJson(json_token));
    assert.equal(canonical, json_token, name);
    if (python_type === "float" || python_type === "int") assert.equal(canonical, python_repr);
  }
});

Deno.test("canonicalV1() normalises number spellings the way Python's json round trip does", () => {
  const cases: [string, string][] = [
    ["-0", "0"],
    ["-0.0", "-0.0"],
    ["0e0", "0.0"],
    ["-0.0e0", "-0.0"],
    ["1E-7", "1e-07"],
    ["0.00001", "1e-05"],
    ["1.0e2", "100.0"],
    ["1E16", "1e+16"],
    ["1.00", "1.0"],
    ["1E400", "Infinity"],
    ["-1E400", "-Infinity"],
    ["1e-400", "0.0"],
    ["123456789012345678901234567890", "123456789012345678901234567890"],
    ["1e100", "1e+100"],
    ["9.999999999999999e15", "1e+16"],
    ["9999999999999998.0", "9999999999999998.0"],
    ["0.0001", "0.0001"],
    ["0.000099999", "9.9999e-05"],
  ];
  for (const [raw, expected] of cases) {
    assert.equal(canonicalV1(new JsonNumber(raw)), expected, raw);
  }
});

Deno.test("canonicalV1() sorts keys by code point, not UTF-16 code unit", () => {
  const record = peerRecords("unicode/kv_cache.log").find((r) =>
    r.get("event_type") === "key_order"
  );
  assert.ok(record !== undefined);
  const expected = JSON.parse(peerText("unicode/expected.json")) as {
    python_key_order_of_key_order_record: string[];
    canonical_of_line_53_without_curr_hash: string;
  };
  const body = new JsonObject(record.entries.filter(([name]) => name !== "curr_hash"));
  const canonical = canonicalV1(body);
  assert.equal(canonical, expected.canonical_of_line_53_without_curr_hash);
  const fields = record.get("fields") as JsonObject;
  const sorted = (parseJson(canonicalV1(fields)) as JsonObject).entries.map(([key]) => key);
  assert.deepEqual(sorted, expected.python_key_order_of_key_order_record);
});

Deno.test("canonicalV1() escapes like Python with ensure_ascii=False", () => {
  const text =
    '"\\" \\\\ / \\b\\f\\n\\r\\t \\u0000 \\u001b \u007f \u0085 \u2028 \u2029 \ufeff <&> é 😀"';
  assert.equal(
    canonicalV1(parseJson(text)),
    '"\\" \\\\ / \\b\\f\\n\\r\\t \\u0000 \\u001b \u007f \u0085 \u2028 \u2029 \ufeff <&> é 😀"',
  );
  assert.equal(canonicalV1([null, true, false, [], new JsonObject([])]), "[null,true,false,[],{}]");
});

Deno.test("canonicalV1() refuses a lone surrogate, which Python cannot encode", () => {
  assert.throws(() => canonicalV1(["\ud800"]), TypeError);
  assert.throws(() => canonicalV1(new JsonObject([["\udc00", null]])), TypeError);
});

Deno.test("pythonFloatRepr() equals the reference repr for random doubles", () => {
  fc.assert(
    fc.property(fc.double(), (x) => {
      assert.equal(pythonFloatRepr(x), referencePythonRepr(x));
    }),
    { seed: SEED, numRuns: 20_000 },
  );
});

Deno.test("pythonFloatRepr() equals the reference repr at the notation boundaries", () => {
  const edges = [1e-4, 1e-5, 1e16, 1e15, 1e21, 5e-324, Number.MAX_VALUE, 2 ** 53, 2 ** -1074];
  for (const edge of edges) {
    for (const x of [edge, nextDouble(edge, 1), nextDouble(edge, -1)]) {
      assert.equal(pythonFloatRepr(x), referencePythonRepr(x), String(x));
      assert.equal(pythonFloatRepr(-x), referencePythonRepr(-x), String(-x));
    }
  }
  for (let e = -1074; e <= 1023; e++) {
    assert.equal(pythonFloatRepr(2 ** e), referencePythonRepr(2 ** e), `2**${e}`);
  }
});

function nextDouble(x: number, direction: 1 | -1): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) + BigInt(direction));
  return view.getFloat64(0);
}

const modelArbitrary: fc.Arbitrary<ModelValue> = fc.letrec<{ value: ModelValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.string({ unit: "binary", maxLength: 12 }),
    fc.string({ unit: fc.integer({ min: 0, max: 0x20 }).map((c) => String.fromCharCode(c)) }),
    fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map((n) => ({ number: n.toString() })),
    fc.double({ noNaN: true, noDefaultInfinity: true }).chain((x) =>
      fc.constantFrom(
        { number: referencePythonRepr(x) },
        { number: x.toExponential().toUpperCase() },
        { number: x.toExponential(20) },
      )
    ),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.uniqueArray(
      fc.tuple(fc.string({ unit: "binary", maxLength: 6 }), tie("value")),
      { selector: ([key]) => key, maxLength: 6 },
    ).map((members) => ({ members })),
  ),
})).value;

Deno.test("canonicalV1() of parsed random JSON equals the reference canonicaliser", () => {
  fc.assert(
    fc.property(modelArbitrary, fc.boolean(), (model, escapeAll) => {
      const text = modelToText(model, escapeAll);
      assert.equal(canonicalV1(parseJson(text)), referenceCanonicalV1(model), text);
    }),
    { seed: SEED, numRuns: 1000 },
  );
});

Deno.test("sealV1Record() writes the Python tool's line layout and a verifiable hash", () => {
  const now = new Date(Date.UTC(2026, 0, 1, 0, 0, 0, 24));
  const { line, currHash } = sealV1Record(
    { event_type: "prune", removed: ["kv_cache-1.log"], count: 2, ratio: 0.5 },
    "a".repeat(64),
    { now },
  );
  const record = parseJson(line) as JsonObject;
  assert.deepEqual(record.entries.map(([key]) => key), [
    "event_type",
    "removed",
    "count",
    "ratio",
    "schema",
    "ts",
    "trace_id",
    "prev_hash",
    "curr_hash",
  ]);
  assert.ok(line.startsWith('{"event_type": "prune", "removed": ["kv_cache-1.log"], "count": 2'));
  assert.match(line, /"schema": 1, "ts": 1767225600\.024, "trace_id": "[0-9a-f-]{36}", /);
  assert.match(
    record.get("trace_id") as string,
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  const check = checkV1Record(record);
  assert.equal(check.computedHash, currHash);
  assert.equal(check.currHash, currHash);
  assert.equal(check.prevHash, "a".repeat(64));
  assert.equal(check.hasMac, false);
});

Deno.test("sealV1Record() keeps caller-supplied schema, ts and trace_id in place", () => {
  const { line } = sealV1Record(
    {
      schema: 1,
      event_type: "rotate",
      ts: new JsonNumber("1767225609.0"),
      trace_id: "t",
      prev_file: "kv_cache-1767225609.log",
    },
    GENESIS_V1,
  );
  assert.ok(line.startsWith('{"schema": 1, "event_type": "rotate", "ts": 1767225609.0, '));
  assert.ok(line.includes('"trace_id": "t", "prev_file": "kv_cache-1767225609.log", "prev_hash"'));
});

Deno.test("sealV1Record() adds an hmac that verifies with the same key only", () => {
  const key = encoder.encode("s3cret");
  const { line } = sealV1Record({ event_type: "prune" }, GENESIS_V1, { key });
  const record = parseJson(line) as JsonObject;
  assert.equal(record.entries.at(-1)![0], "hmac");
  assert.equal(checkV1Record(record, key).macOk, true);
  assert.equal(checkV1Record(record, encoder.encode("other")).macOk, false);
  assert.equal(
    sealV1Record({}, GENESIS_V1, { key: new Uint8Array() }).line.includes("hmac"),
    false,
  );
});

Deno.test("sealV1Record() writes ints, floats, bigints and nested values as Python would", () => {
  const { line } = sealV1Record(
    {
      ints: [0, -0, 7, 2 ** 53 - 1, 12345678901234567890n],
      floats: [0.5, 2 ** 53, 1e-7, new JsonNumber("2.0")],
      nested: { b: [null, true], a: "é\n", "10": 1 },
      already: new JsonObject([["z", new JsonNumber("1")], ["y", null]]),
    },
    GENESIS_V1,
    { now: new Date(1767225600000) },
  );
  assert.ok(
    line.startsWith(
      '{"ints": [0, 0, 7, 9007199254740991, 12345678901234567890], ' +
        '"floats": [0.5, 9007199254740992.0, 1e-07, 2.0], ' +
        '"nested": {"10": 1, "b": [null, true], "a": "é\\n"}, "already": {"z": 1, "y": null}, ' +
        '"schema": 1, "ts": 1767225600.0, ',
    ),
    line,
  );
  const check = checkV1Record(parseJson(line) as JsonObject);
  assert.equal(check.computedHash, check.currHash);
});

Deno.test("sealV1Record() refuses fields the log sets and values JSON cannot hold", () => {
  for (const name of ["prev_hash", "curr_hash", "hmac"]) {
    assert.throws(() => sealV1Record({ [name]: "x" }, GENESIS_V1), {
      name: "TypeError",
      message: `Cannot seal v1 record: field "${name}" is set by the log itself`,
    });
  }
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  const bad: [unknown, RegExp][] = [
    [NaN, /not a finite number/],
    [Infinity, /not a finite number/],
    ["\ud800", /lone surrogate/],
    [undefined, /not a JSON value/],
    [new Date(0), /not a JSON value/],
    [() => 1, /not a JSON value/],
    [cyclic, /nests too deeply or is cyclic/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => sealV1Record({ value }, GENESIS_V1), { name: "TypeError", message });
  }
});

Deno.test("sealV1Record() chains onto a Python log so the whole file still verifies", () => {
  const records = peerRecords("plain/kv_cache.log");
  const last = checkV1Record(records.at(-1)!).currHash!;
  const { line } = sealV1Record({ event_type: "prune", removed: [] }, last);
  const all = [...records, parseJson(line) as JsonObject];
  assert.deepEqual(badHashLines(all), []);
  assert.equal(firstBrokenLink(all), undefined);
});

const noPython = { ignore: !python3 };
if (!python3) console.warn("python3 is not on PATH: skipping the comparisons with real Python");

Deno.test({
  name: "pythonFloatRepr() equals real python3 repr on 2,000 random doubles",
  ...noPython,
  async fn() {
    const doubles = fc.sample(fc.double({ noNaN: true }), { seed: SEED, numRuns: 2000 });
    const script = "import sys\nfor l in sys.stdin: print(repr(float(l)))";
    const lines = await python(
      script,
      doubles.map((x) => Object.is(x, -0) ? "-0.0" : String(x)).join("\n") + "\n",
    );
    const python3Repr = lines.trimEnd().split("\n")
      .map((r) => r === "inf" ? "Infinity" : r === "-inf" ? "-Infinity" : r);
    assert.deepEqual(doubles.map(pythonFloatRepr), python3Repr);
  },
});

Deno.test({
  name: "canonicalV1() equals real python3 json.dumps on random JSON",
  ...noPython,
  async fn() {
    const models = fc.sample(modelArbitrary, { seed: SEED, numRuns: 500 });
    const texts = models.map((model) => modelToText(model));
    const script = [
      "import json, sys",
      "for l in sys.stdin:",
      "    v = json.loads(l)",
      "    print(json.dumps(json.dumps(v, sort_keys=True, ensure_ascii=False,",
      "                     separators=(',', ':'))))",
    ].join("\n");
    const out = (await python(script, texts.join("\n") + "\n")).trimEnd().split("\n");
    assert.equal(out.length, texts.length);
    texts.forEach((text, i) => {
      assert.equal(canonicalV1(parseJson(text)), JSON.parse(out[i]!), text);
    });
  },
});

Deno.test({
  name: "sealV1Record() lines verify with the Python tool's own algorithm",
  ...noPython,
  async fn() {
    const key = encoder.encode("k");
    let prev = GENESIS_V1;
    const lines: string[] = [];
    for (const fields of [{ event_type: "prune", n: 1.5 }, { tenant: "東京 😀", big: 2n ** 70n }]) {
      const sealed = sealV1Record(fields, prev, { key });
      lines.push(sealed.line);
      prev = sealed.currHash;
    }
    // python-tool.md §2.6 step 5-6, verbatim in Python.
    const script = [
      "import hashlib, hmac, json, sys",
      "prev = 'GENESIS'",
      "for line in sys.stdin:",
      "    rec = json.loads(line)",
      "    body = {k: v for k, v in rec.items() if k not in ('curr_hash', 'hmac')}",
      "    c = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(',', ':'))",
      "    msg = (prev + c).encode('utf-8')",
      "    assert rec['curr_hash'] == hashlib.sha256(msg).hexdigest()",
      "    assert rec['hmac'] == hmac.new(b'k', msg, hashlib.sha256).hexdigest()",
      "    assert line.rstrip('\\n') == json.dumps(rec, ensure_ascii=False)",
      "    prev = rec['curr_hash']",
      "print('ok')",
    ].join("\n");
    assert.equal((await python(script, lines.join("\n") + "\n")).trim(), "ok");
  },
});

Deno.test("canonicalV1() sorts each key sequence correctly however often it recurs", () => {
  const keys = ["ab", "c1", "c2", "c3", "c4", "curr_hash", "hmac"];
  // "ba" has the same length and end characters as "ab": the memo's hash of both sequences is
  // equal, so only the exact comparison tells them apart.
  const sequences = [keys, ["ba", ...keys.slice(1)], [...keys].reverse(), keys.slice(1)];
  for (let round = 0; round < 3; round++) {
    for (const sequence of sequences) {
      const model: ModelValue = { members: sequence.map((key, i) => [key, { number: `${i}` }]) };
      const record = parseJson(modelToText(model)) as JsonObject;
      assert.equal(canonicalV1(record), referenceCanonicalV1(model));
      const unsealed: ModelValue = {
        members: model.members.filter(([key]) => key !== "curr_hash" && key !== "hmac"),
      };
      const check = checkV1Record(record);
      const expected = createHash("sha256").update(referenceCanonicalV1(unsealed)).digest("hex");
      assert.equal(check.computedHash, expected);
    }
  }
});

Deno.test("canonicalV1() stays correct after more key sequences than it memoises", () => {
  for (let i = 0; i < 5000; i++) {
    const model: ModelValue = {
      members: [`k${i}`, "b", "a", "d", "c", "f", "e"].map((key) => [key, null]),
    };
    const text = modelToText(model);
    if (i % 500 === 0 || i > 4090) {
      assert.equal(canonicalV1(parseJson(text)), referenceCanonicalV1(model));
    } else {
      canonicalV1(parseJson(text));
    }
  }
});

Deno.test("canonicalV1() escapes strings of parsed lines that had escapes or raw tabs", () => {
  const escaped = parseJson('{"k\\"": "a\\u0041\\n", "b": ["x\\\\"], "c": {"d": "\\t"}}');
  assert.equal(canonicalV1(escaped), '{"b":["x\\\\"],"c":{"d":"\\t"},"k\\"":"aA\\n"}');
  const rawTab = parseJson('{"b":\t"x", "a": "y"}');
  assert.equal(canonicalV1(rawTab), '{"a":"y","b":"x"}');
  const built = new JsonObject([["q", 'say "hi"']]);
  assert.equal(canonicalV1(built), '{"q":"say \\"hi\\""}');
});
