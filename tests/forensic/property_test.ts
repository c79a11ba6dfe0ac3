import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import canonicalize from "canonicalize";
import { canonicalizeV2 } from "../../lib/forensic/canonicalize_v2.ts";
import { checkV2Line, sealV2Record } from "../../lib/forensic/format_v2.ts";
import { GENESIS_V2 } from "../../lib/forensic/types.ts";
import { verifyLog } from "../../lib/forensic/verify.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";

const SEED = 1337;
const KEY = new TextEncoder().encode("property-key");
const RESERVED = new Set(["v", "seq", "ts", "event", "prev", "hash", "mac"]);

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.maxSafeInteger(),
  fc.constantFrom(
    0,
    -0,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    5e-324,
    1e-7,
    0.1,
    1 / 3,
    -1.5e-300,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) =>
    !Number.isInteger(d) || Number.isSafeInteger(d)
  ),
  fc.string({ unit: "grapheme" }),
  fc.string({
    unit: fc.constantFrom(
      "\u0000",
      "\n",
      "\r",
      "\t",
      "\u001b",
      "\u007f",
      "\u2028",
      "\u2029",
      "\ufeff",
      "é",
      "\ud83d\ude00",
      '"',
      "\\",
      "/",
    ),
  }),
);
const value = fc.oneof(
  scalar,
  fc.array(scalar, { maxLength: 3 }),
  fc.dictionary(fc.string(), scalar, { maxKeys: 3 }),
);
// Keys of any characters and length, array-index-like ones among them: JSON.stringify emits
// `"1000000000"` before `"!"`, which JCS sorts first.
const fieldName = fc.oneof(
  fc.string({ unit: "grapheme", minLength: 1 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 300 }),
  fc.nat().map(String),
  fc.bigInt({ min: 0n, max: 10n ** 12n }).map(String),
  fc.constantFrom("!", "__proto__", "constructor", "\u0000", "10", "01"),
);
const fields = fc.dictionary(fieldName, value, { maxKeys: 5 })
  .map((f) => Object.fromEntries(Object.entries(f).filter(([k]) => !RESERVED.has(k))));
const event = fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 });

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("openForensicLog() round-trips random records: what it writes verifies", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(event, fields), { minLength: 1, maxLength: 8 }),
      async (records) => {
        await withDir(async (dir) => {
          const log = await openForensicLog({
            dir,
            hmacKey: KEY,
            maxBytes: 4096,
          });
          const written = [];
          for (const [name, f] of records) written.push(await log.append(name, f));
          await log.close();
          const report = await verifyLog(log.path, { hmacKey: KEY });
          assert.equal(report.ok, true, report.failure?.detail);
          assert.equal(report.head?.hash, written.at(-1)!.hash);
          const parsed = (await Deno.readTextFile(log.path)).split("\n").filter(Boolean).map((l) =>
            JSON.parse(l)
          );
          const last = parsed.at(-1)!;
          const { hash: _h, mac: _m, ...content } = written.at(-1)!;
          assert.equal(
            canonicalizeV2(content),
            canonicalizeV2({ ...last, hash: undefined, mac: undefined }),
          );
        });
      },
    ),
    { seed: SEED, numRuns: 60 },
  );
});

Deno.test("verifyLog() fails after any single-byte change to a sealed log", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir, hmacKey: KEY });
    await log.append("allocate", {
      tenant_id: "tenant-é",
      bytes: 4096,
      ratio: 0.25,
      note: "tab\there\u0001",
    });
    await log.append("quarantine", {
      handle: "h-1",
      reason: "coverage",
      nested: { b: [1, null, true], a: "x" },
    });
    await log.append("free", { handle: "h-1" });
    await log.close();
    const original = await Deno.readFile(log.path);
    const target = join(dir, "tampered.log");
    await fc.assert(
      fc.asyncProperty(
        fc.nat(original.length - 1),
        fc.integer({ min: 1, max: 255 }),
        async (at, delta) => {
          const bytes = original.slice();
          bytes[at] = (bytes[at]! + delta) % 256;
          await Deno.writeFile(target, bytes);
          const report = await verifyLog(target, { hmacKey: KEY, activeOnly: true });
          assert.equal(report.ok, false, `byte ${at} changed by ${delta} went unnoticed`);
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });
});

Deno.test("sealV2Record() output verifies for arbitrary JSON, or the writer refuses it", () => {
  const header = { seq: 7, ts: "2026-01-01T00:00:00.000Z", event: "probe", prev: GENESIS_V2 };
  // Large records without generating every character: a short run repeated past 64 KiB.
  const bigString = fc.tuple(fc.string({ unit: "binary", minLength: 1, maxLength: 8 }), fc.nat(30))
    .map(([run, extra]) => run.repeat(Math.ceil(70_000 / run.length) + extra));
  fc.assert(
    fc.property(
      fc.dictionary(fieldName, fc.oneof(fc.jsonValue({ maxDepth: 3 }), bigString), {
        maxKeys: 6,
      }),
      (f) => {
        let sealed;
        try {
          sealed = sealV2Record(header, f, { key: KEY });
        } catch (error) {
          // The writer may refuse what it cannot hold exactly (integers beyond 2^53, -0 is fine).
          if (error instanceof TypeError) return;
          throw error;
        }
        const checked = checkV2Line(sealed.line.slice(0, -1), KEY);
        assert.equal(checked.ok, true, checked.ok ? "" : checked.detail);
        assert.equal(sealed.body, canonicalize(JSON.parse(sealed.body)));
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

Deno.test('sealV2Record() writes {"!":1,"1000000000":2} in RFC 8785 member order', () => {
  const header = { seq: 0, ts: "2026-01-01T00:00:00.000Z", event: "probe", prev: GENESIS_V2 };
  const sealed = sealV2Record(header, {
    "!": 1,
    "1000000000": 2,
    nested: { "4294967294": 1, a: 2 },
  });
  assert.equal(sealed.body, canonicalize(JSON.parse(sealed.body)));
  assert.ok(sealed.body.startsWith('{"!":1,"1000000000":2,'), sealed.body);
  assert.equal(checkV2Line(sealed.line.slice(0, -1), undefined).ok, true);
});
