// The native line verifier (ffi/native/kvh_hash.c kvh_verify_lines) may only accept a line the
// TypeScript check passes as a plain record with the same fields; everything else it leaves to
// TypeScript. These tests hold it to that on generated, tampered and mutated logs.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkLine,
  checkLines,
  checkLinesNatively,
  type LineResult,
  nativeLineResult,
} from "../../lib/forensic/_line_check.ts";
import { hmacHex, sha256Hex } from "../../lib/forensic/digest.ts";
import { sealV1Record } from "../../lib/forensic/format_v1.ts";
import { sealV2Record } from "../../lib/forensic/format_v2.ts";
import {
  LINE_LINKED,
  LINE_MAC,
  LINE_V1,
  LINE_V2,
  loadNativeDigests,
} from "../../lib/forensic/native_digest.ts";
import { verifyLog, type VerifyLogOptions } from "../../lib/forensic/verify.ts";
import { GENESIS_V2 } from "../../lib/forensic/types.ts";
import { applyEdits, type LineEdit } from "./_edits.ts";

const SEED = 1314;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const KEY = encoder.encode("native-lines-key");
// Runs through the default loader (ffi/native/build/libkvh_hash.so, built by ffi/native/build.sh
// and .ci/run); without it there is nothing native to compare.
const ignore = loadNativeDigests() === undefined;

const TS = "2026-01-01T00:00:00.000Z";

/**
 * Numbers format v2 can carry (no integer beyond 2^53), most of which the native verifier
 * decides, and two it leaves undecided: a subnormal, and a 16-digit power of two.
 */
const NUMBERS = [
  0,
  -7,
  4096,
  0.1,
  1.5,
  -2.25,
  1.5e-7,
  1e-7,
  123456789.123,
  0.30000000000000004,
  1767225600.001,
  1717171717.1234567,
  2 ** -30,
  5e-324,
  1.5e-300,
  Number.MAX_SAFE_INTEGER,
];

type Fields = (i: number) => Record<string, unknown>;

function v2Lines(count: number, key?: Uint8Array, fields: Fields = (i) => ({ i })): string[] {
  const lines: string[] = [];
  let prev = GENESIS_V2;
  for (let seq = 0; seq < count; seq++) {
    const sealed = sealV2Record({ seq, ts: TS, event: "allocate", prev }, fields(seq), { key });
    lines.push(sealed.line.slice(0, -1));
    prev = sealed.hash;
  }
  return lines;
}

function v1Lines(count: number, key?: Uint8Array, fields: Fields = (i) => ({ i })): string[] {
  const lines: string[] = [];
  let prev = "GENESIS";
  for (let i = 0; i < count; i++) {
    const { line, currHash } = sealV1Record({ event_type: "free", ...fields(i) }, prev, {
      key,
      now: new Date(Date.UTC(2026, 0, 1) + i),
    });
    lines.push(line);
    prev = currHash;
  }
  return lines;
}

/**
 * Checks every verdict of a natively checked run against the TypeScript check of its line:
 * an accepted line is a plain passing record with the same hash, seq and MAC presence, and a
 * linked one links to the line before it.
 */
function assertVerdicts(bytes: Uint8Array, key: Uint8Array | undefined): number {
  const run = checkLinesNatively(bytes, { key })!;
  const plain = checkLines(bytes, { key, nativeDigests: false });
  assert.equal(run.count, plain.length);
  let accepted = 0;
  let previous: LineResult | undefined;
  for (let i = 0; i < run.count; i++) {
    const status = run.status[i]!;
    const result = nativeLineResult(run, i, { key });
    assert.deepEqual(result, plain[i]);
    if (status !== 0) {
      accepted++;
      const at = run.hashAt[i]!;
      const hash = decoder.decode(run.bytes.subarray(at, at + 64));
      assert.equal(result.kind, status & LINE_V2 ? "v2" : "v1", `line ${i}`);
      assert.equal(result.kind === "v2" || result.kind === "v1", true);
      if (result.kind === "v2") {
        assert.equal(hash, result.hash);
        assert.equal(run.seqs[i], result.seq);
        assert.equal(result.epoch, undefined);
        assert.ok(!["rotate", "recovery", "prune"].includes(result.event));
      } else if (result.kind === "v1") {
        assert.equal(hash, result.currHash);
        assert.ok(result.eventType !== "rotate" && result.eventType !== "prune");
      }
      assert.equal((status & LINE_MAC) !== 0, (result as { hasMac: boolean }).hasMac);
      if (status & LINE_LINKED) {
        assert.ok(previous !== undefined && run.status[i - 1] !== 0);
        if (result.kind === "v2" && previous.kind === "v2") {
          assert.equal(result.prev, previous.hash);
          assert.equal(result.seq, previous.seq + 1);
        } else if (result.kind === "v1" && previous.kind === "v1") {
          assert.equal(result.prevHash, previous.currHash);
        } else {
          assert.fail(`line ${i} links across formats`);
        }
      }
    }
    previous = result;
  }
  return accepted;
}

Deno.test({
  name: "checkLinesNatively() accepts and links the plain records kvh and the Python tool write",
  ignore,
  fn: () => {
    for (const key of [undefined, KEY]) {
      const mixed = (i: number) => ({
        n: NUMBERS[i % NUMBERS.length]!,
        s: "é😀\u2028",
        a: [i, [], "x, y"],
      });
      const v2 = v2Lines(40, key, mixed);
      const run = checkLinesNatively(encoder.encode(v2.join("\n")), { key })!;
      assert.equal(run.status[0]! & (LINE_V2 | LINE_MAC), LINE_V2 | (key ? LINE_MAC : 0));
      // Every line but those with an undecided number (and the line after each) is linked.
      const linked = [...run.status].filter((s) => s & LINE_LINKED).length;
      assert.ok(linked >= 25, `${linked} of 40 v2 lines linked`);
      assertVerdicts(run.bytes, key);
      const v1 = v1Lines(40, key, mixed);
      const run1 = checkLinesNatively(encoder.encode(v1.join("\n")), { key })!;
      assert.equal(run1.status[0]! & (LINE_V1 | LINE_MAC), LINE_V1 | (key ? LINE_MAC : 0));
      const linked1 = [...run1.status].filter((s) => s & LINE_LINKED).length;
      assert.ok(linked1 >= 25, `${linked1} of 40 v1 lines linked`);
      assertVerdicts(run1.bytes, key);
    }
  },
});

Deno.test({
  name: "checkLinesNatively() accepts only what the TypeScript check passes, for any record",
  ignore,
  fn: () => {
    const scalar = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constantFrom(...NUMBERS),
      fc.string({
        unit: fc.constantFrom("a", "é", "\u0000", "\n", "\u007f", "😀", '"', "\\", "\ue000"),
      }),
    );
    const value = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof(
        { depthSize: "small" },
        scalar,
        fc.array(tie("v"), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom("a", "b", "é", "😀", "\ue000", "10"), tie("v"), {
          maxKeys: 3,
        }),
      ),
    })).v;
    const fields = fc.dictionary(fc.constantFrom("n", "m", "ü", "z", "epoch", "x"), value, {
      maxKeys: 4,
    });
    fc.assert(
      fc.property(
        fc.array(fields, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (records, keyed) => {
          const key = keyed ? KEY : undefined;
          const lines: string[] = [];
          try {
            lines.push(...v2Lines(records.length, key, (i) => records[i]!));
          } catch {
            // A value format v2 cannot carry (say, an integer beyond 2^53).
          }
          try {
            lines.push(...v1Lines(records.length, key, (i) => withoutReserved(records[i]!)));
          } catch {
            // Likewise for v1.
          }
          assertVerdicts(encoder.encode(lines.join("\n")), key);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  },
});

/** Keyed and plain records of both formats, with strings, numbers, arrays and an object. */
function sampleLines(): string[] {
  return [
    ...v2Lines(3, KEY, (i) => ({ t: `té${i}`, n: NUMBERS[i + 3]!, a: [1.5, "x"], o: { b: 1 } })),
    ...v2Lines(3, undefined, (i) => ({ n: -i, z: null })),
    ...v1Lines(3, KEY, (i) => ({ t: `té${i}`, n: NUMBERS[i + 3]!, a: [1.5, "x, y"] })),
    ...v1Lines(3, undefined, (i) => ({ n: -i, z: null, b: true })),
  ];
}

function lineEdit(lines: string[], text: fc.Arbitrary<string>): fc.Arbitrary<LineEdit> {
  return fc.record({
    line: fc.nat({ max: lines.length - 1 }),
    at: fc.nat(),
    text,
    cut: fc.nat({ max: 2 }),
  });
}

function withoutReserved(record: Record<string, unknown>): Record<string, unknown> {
  const { prev_hash: _a, curr_hash: _b, hmac: _c, ...rest } = record;
  return rest;
}

Deno.test({
  name: "checkLinesNatively() settles no changed line: any edit leaves it to TypeScript",
  ignore,
  fn: () => {
    const lines = sampleLines();
    const edit = lineEdit(
      lines,
      fc.oneof(
        fc.constantFrom(
          "0",
          "f",
          "é",
          "😀",
          "}",
          '"',
          ",",
          " ",
          "\\",
          "",
          "e",
          "E",
          "-",
          ".",
          "\n",
        ),
        fc.string({ unit: "grapheme", maxLength: 3 }),
      ),
    );
    fc.assert(
      fc.property(fc.array(edit, { maxLength: 3 }), fc.boolean(), (edits, keyed) => {
        const tampered = applyEdits(lines, edits);
        assertVerdicts(encoder.encode(tampered.join("\n")), keyed ? KEY : undefined);
      }),
      { seed: SEED, numRuns: 400 },
    );
  },
});

Deno.test({
  name: "checkLinesNatively() describes every line of a run of many short lines",
  ignore,
  fn: () => {
    // More lines than the verdict arrays are first sized for: the call is resumed.
    const lines = [...v2Lines(3), ...Array(5000).fill(""), "{}", ...v2Lines(3), "x"];
    const bytes = encoder.encode(lines.join("\n"));
    assertVerdicts(bytes, undefined);
    assert.equal(checkLinesNatively(new Uint8Array(0), {})!.count, 1);
    assert.equal(checkLinesNatively(bytes, { nativeDigests: false }), undefined);
    // A line over the cap is never accepted: the TypeScript path reports it as too long.
    const long = checkLinesNatively(encoder.encode(lines[0]!), { maxLineBytes: 10 })!;
    assert.equal(long.status[0], 0);
    assert.deepEqual(nativeLineResult(long, 0, { maxLineBytes: 10 }), {
      kind: "unreadable",
      problem: "too_long",
    });
    assert.deepEqual(nativeLineResult(long, 0, {}), checkLine(lines[0]!, {}));
  },
});

/**
 * Edits a line and seals it again over its edited text, the way the native verifier reads it
 * (v2: the bytes before the spliced members; v1: members sorted by key and values as written),
 * so that only the form of the line, not its digests, tells whether it is canonical.
 */
function resealed(line: string, key: Uint8Array | undefined): string {
  const spliced = /,"hash":"[0-9a-f]{64}"(,"mac":"[0-9a-f]{64}")?\}$/.exec(line);
  if (spliced !== null) {
    const body = line.slice(0, spliced.index) + "}";
    const mac = spliced[1] === undefined ? "" : `,"mac":"${hmacHex(key ?? KEY, body)}"`;
    return `${body.slice(0, -1)},"hash":"${sha256Hex(body)}"${mac}}`;
  }
  const members = splitTopLevel(line.slice(1, -1));
  const pairs = members.map((member) => {
    const at = member.indexOf('": ');
    return [member.slice(0, at + 1), dropSpaces(member.slice(at + 3))] as const;
  });
  const prev = pairs.find(([name]) => name === '"prev_hash"')?.[1].slice(1, -1) ?? "";
  const sorted = pairs.filter(([name]) => name !== '"curr_hash"' && name !== '"hmac"')
    .sort(([a], [b]) => Buffer.compare(encoder.encode(a), encoder.encode(b)));
  const message = prev + "{" + sorted.map(([name, value]) => `${name}:${value}`).join(",") + "}";
  return line.replace(/("curr_hash": ")[0-9a-f]{64}"/, `$1${sha256Hex(message)}"`)
    .replace(/("hmac": ")[0-9a-f]{64}"/, `$1${hmacHex(key ?? KEY, message)}"`);
}

/** The members of a Python-written object's text, split at `, ` outside strings and arrays. */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === "[" || c === "{")) depth++;
    else if (!quoted && (c === "]" || c === "}")) depth--;
    else if (!quoted && depth === 0 && c === "," && text[i + 1] === " ") {
      out.push(text.slice(start, i));
      start = i + 2;
    }
  }
  out.push(text.slice(start));
  return out;
}

function dropSpaces(value: string): string {
  let quoted = false;
  let out = "";
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '"') quoted = !quoted;
    if (!quoted && value[i] === " " && value[i - 1] === ",") continue;
    out += value[i];
  }
  return out;
}

Deno.test({
  name: "checkLinesNatively() accepts no line in another form, even sealed over its own text",
  ignore,
  fn: () => {
    const lines = sampleLines();
    // What a forger or a careless tool might write instead of the canonical spelling.
    const variants: [RegExp | string, string][] = [
      [/"n": -?\d+/, '"n": -0'],
      [/"n":-?\d+/, '"n":-0'],
      ["1.5", "1.50"],
      ["1.5", "15e-1"],
      ["1.5", "1.5E0"],
      ["1.5", "1.5e+00"],
      ["0.1", "1e-1"],
      ["4096", "4096.0"],
      ["4096", "4.096e3"],
      ["null", "nul"],
      ['"t', '"\\u0074'],
      ["é", "\\u00e9"],
      ['"a"', '"v"'],
      ['"a"', '"zz"'],
      ['"event_type": "free"', '"event_type": "rotate"'],
      ['"event_type": "free"', '"event_type": "prune"'],
      ['"event":"allocate"', '"event":"prune"'],
      ['"event":"allocate"', '"event":"rotate"'],
      ['"z"', '"epoch"'],
      ['"z"', '"a"'],
      ['"b": true', '"b": {"c": 1}'],
      [", ", ",  "],
      [": ", ":"],
      ['"x"', '"x\u0001"'],
      ['"v":2', '"v":3'],
      ['"v":2', '"v":2.0'],
      [/"seq":\d+/, '"seq":-1'],
      [/"seq":\d+/, '"seq":1e3'],
      [/"seq":\d+/, '"seq":01'],
    ];
    for (const keyed of [false, true]) {
      const key = keyed ? KEY : undefined;
      for (const [from, to] of variants) {
        const edited = lines.map((line) => resealed(line.replace(from, to), key));
        assertVerdicts(encoder.encode(edited.join("\n")), key);
      }
      // Unchanged lines sealed again are accepted: the resealing itself is faithful.
      const same = lines.map((line) => resealed(line, key));
      const run = checkLinesNatively(encoder.encode(same.join("\n")), { key })!;
      const status = [...run.status.subarray(0, run.count)];
      // With a key, a line without a MAC is left to TypeScript to report.
      const accepted = (s: number, i: number) => s !== 0 || (keyed && !/"h?mac"/.test(same[i]!));
      assert.ok(status.every(accepted), `keyed ${keyed}: ${status}`);
    }
    const edit = lineEdit(
      lines,
      fc.constantFrom(
        "0",
        "-",
        ".",
        "e",
        "E",
        "+",
        " ",
        ",",
        '"',
        "\\",
        "[",
        "]",
        "{",
        "}",
        ":",
        "é",
      ),
    );
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 2 }), fc.boolean(), (edits, keyed) => {
        const key = keyed ? KEY : undefined;
        // Edits before the digests (the last 140 characters), which resealing rewrites.
        const tampered = applyEdits(lines, edits, (line) => line.length - 140)
          .map((line) => resealed(line, key));
        assertVerdicts(encoder.encode(tampered.join("\n")), key);
      }),
      { seed: SEED, numRuns: 600 },
    );
  },
});

Deno.test({
  name: "checkLinesNatively() checks a large run in two halves with the same results",
  ignore,
  fn: () => {
    // 256 KiB and more are checked in two halves at once (on 2+ CPUs): only the first line of
    // each half is left unlinked.
    const records = v2Lines(1500, KEY, (i) => ({ pad: "p".repeat(200), i }));
    const bytes = encoder.encode(records.join("\n"));
    assert.ok(bytes.length > 1 << 18);
    const run = checkLinesNatively(bytes, { key: KEY })!;
    const linked = run.status.subarray(0, run.count).filter((s) => s & LINE_LINKED).length;
    assert.ok(linked >= run.count - 2, `${linked} of ${run.count}`);
    assert.equal(assertVerdicts(bytes, KEY), 1500);
    // A first half of more lines than its share of the verdict arrays: the call is resumed.
    const blanks = [...Array(200_000).fill(""), ...records.slice(0, 400)];
    assertVerdicts(encoder.encode(blanks.join("\n")), KEY);
  },
});

Deno.test({
  name: "loadNativeDigests().verifyLines() gives the same verdicts on any number of threads",
  ignore,
  fn: () => {
    const native = loadNativeDigests()!;
    const records = v2Lines(4000, undefined, (i) => ({ pad: "p".repeat(150 + (i % 7) * 20), i }));
    const bytes = encoder.encode(records.join("\n"));
    const verdicts = (threads: number, capacity: number) => {
      const out = {
        status: new Uint8Array(capacity),
        ends: new Uint32Array(capacity),
        seqs: new Float64Array(capacity),
        hashAt: new Uint32Array(capacity),
      };
      const count = native.verifyLines(bytes, 1 << 24, undefined, out, threads);
      return { count, ...out };
    };
    const one = verdicts(1, 5000);
    assert.equal(one.count, 4000);
    for (const threads of [2, 3, 4, 8, 100]) {
      for (const capacity of [5000, 4000, 1500, 7]) {
        const many = verdicts(threads, capacity);
        const count = many.count;
        assert.ok(count <= capacity && count > 0, `${threads} threads, capacity ${capacity}`);
        // The same lines in the same order; only where a part starts is a line not linked.
        assert.deepEqual(many.ends.subarray(0, count), one.ends.subarray(0, count));
        assert.deepEqual(many.hashAt.subarray(0, count), one.hashAt.subarray(0, count));
        assert.deepEqual(many.seqs.subarray(0, count), one.seqs.subarray(0, count));
        let unlinked = 0;
        for (let i = 0; i < count; i++) {
          assert.equal(many.status[i]! | LINE_LINKED, one.status[i]! | LINE_LINKED);
          if (many.status[i] !== one.status[i]) unlinked++;
        }
        assert.ok(unlinked < Math.min(threads, 8), `${unlinked} part starts`);
        // Room in every part's share: all lines at once (else the caller resumes after count).
        if (capacity === 5000) assert.equal(count, 4000);
      }
    }
  },
});

async function mutatedReports(
  original: Uint8Array,
  options: VerifyLogOptions[],
  numRuns: number,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/kv_cache.log`;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: original.length - 1 }),
        fc.oneof(
          fc.integer({ min: 0, max: 255 }),
          fc.constantFrom(0x0a, 0x20, 0x22, 0x30, 0x66, 0xc3),
        ),
        async (at, byte) => {
          const bytes = original.slice();
          bytes[at] = byte;
          await Deno.writeFile(path, bytes);
          for (const option of options) {
            assert.deepEqual(
              await verifyLog(path, option),
              await verifyLog(path, { ...option, nativeDigests: false }),
            );
          }
        },
      ),
      { seed: SEED, numRuns },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const [format, lines] of [["v2", v2Lines], ["v1", v1Lines]] as const) {
  Deno.test({
    name:
      `verifyLog() reports the same natively and in TypeScript for any one-byte change of a ${format} log`,
    ignore,
    fn: async () => {
      const plain = lines(30, undefined, (i) => ({ t: `t${i % 3}`, n: NUMBERS[i % 16]! }));
      const keyed = lines(30, KEY, (i) => ({ t: `t${i % 3}`, shape: [i, 2] }));
      await mutatedReports(encoder.encode(plain.join("\n") + "\n"), [{}], 150);
      await mutatedReports(encoder.encode(keyed.join("\n") + "\n"), [{}, { hmacKey: KEY }], 100);
    },
  });
}
