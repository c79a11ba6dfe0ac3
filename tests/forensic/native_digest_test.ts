import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import fc from "fast-check";
import { hmacHex, sha256Hex } from "../../lib/forensic/digest.ts";
import { checkLines } from "../../lib/forensic/_line_check.ts";
import { sealV1Record } from "../../lib/forensic/format_v1.ts";
import { sealV2Record } from "../../lib/forensic/format_v2.ts";
import { DIGEST_DESC_WORDS, loadNativeDigests, NO_MAC } from "../../lib/forensic/native_digest.ts";
import { verifyLog, type VerifyLogOptions } from "../../lib/forensic/verify.ts";
import { GENESIS_V2 } from "../../lib/forensic/types.ts";
import { applyEdits } from "./_edits.ts";

const SOURCE = fileURLToPath(new URL("../../ffi/native/kvh_hash.c", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SEED = 1313;
const encoder = new TextEncoder();

function canBuild(): boolean {
  try {
    return new Deno.Command("sh", {
      args: ["-c", "echo '#include <openssl/sha.h>' | cc -E -x c -"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

// A private copy, so these tests do not depend on ffi/native/build.sh having run.
async function withLibrary(fn: (libraryPath: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/libkvh_hash.so`;
    const { success, stderr } = await new Deno.Command("cc", {
      args: [
        "-O2",
        "-shared",
        "-fPIC",
        "-fvisibility=hidden",
        "-pthread",
        "-o",
        path,
        SOURCE,
        "-lcrypto",
      ],
      stdout: "null",
    }).output();
    assert.ok(success, new TextDecoder().decode(stderr));
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const noCompiler = !canBuild();
// The verify comparisons go through the default loader (ffi/native/build/libkvh_hash.so, built
// by ffi/native/build.sh and .ci/run).
const noDefaultLibrary = loadNativeDigests() === undefined;

Deno.test({
  name: "loadNativeDigests() checks hashes and MACs like node:crypto, for any key length",
  ignore: noCompiler,
  fn: () =>
    withLibrary((libraryPath) => {
      const native = loadNativeDigests({ libraryPath });
      assert.ok(native !== undefined);
      fc.assert(
        fc.property(
          fc.string({ unit: "grapheme", maxLength: 200 }),
          fc.uint8Array({ minLength: 1, maxLength: 130 }),
          fc.boolean(),
          (message, key, tamper) => {
            const mac = hmacHex(key, message);
            const hash = tamper ? sha256Hex(message + "!") : sha256Hex(message);
            const data = encoder.encode(message + hash + mac);
            const at = data.length - 128;
            const desc = new Uint32Array([0, at, 0, 0, at, at + 64]);
            const out = new Uint8Array(1);
            native.check(data, desc, 1, key, out);
            assert.equal(out[0], (tamper ? 0 : 1) | 2);
            native.check(data, desc, 1, undefined, out);
            assert.equal(out[0], tamper ? 0 : 1);
          },
        ),
        { seed: SEED, numRuns: 200 },
      );
    }),
});

Deno.test({
  name: "loadNativeDigests() confirms nothing for ranges outside the data",
  ignore: noCompiler,
  fn: () =>
    withLibrary((libraryPath) => {
      const native = loadNativeDigests({ libraryPath })!;
      const data = encoder.encode("abc" + sha256Hex("abc"));
      const cases = [
        [0, 3, 0, 0, 4, NO_MAC], // hash hex runs past the end
        [0, 99, 0, 0, 3, NO_MAC], // message runs past the end
        [0, 3, 66, 2, 3, NO_MAC], // suffix runs past the end
        [0xffff_fff0, 0x20, 0, 0, 3, NO_MAC], // offset + length overflows 32 bits
        [0, 3, 0, 0, 3, 0xffff_fff0], // MAC hex outside: hash still confirmed, MAC not
      ];
      const desc = new Uint32Array(cases.flat());
      const out = new Uint8Array(cases.length).fill(0xff);
      native.check(data, desc, cases.length, encoder.encode("k"), out);
      assert.deepEqual([...out], [0, 0, 0, 0, 1]);
      assert.throws(() => native.check(data, desc, cases.length + 1, undefined, out), RangeError);
      assert.equal(desc.length, cases.length * DIGEST_DESC_WORDS);
    }),
});

Deno.test("loadNativeDigests() returns undefined for a missing or foreign library", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(loadNativeDigests({ libraryPath: `${dir}/absent.so` }), undefined);
    const bogus = `${dir}/bogus.so`;
    await Deno.writeTextFile(bogus, "not a library");
    assert.equal(loadNativeDigests({ libraryPath: bogus }), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

interface Case {
  name: string;
  path: string;
  options: VerifyLogOptions;
}

function cases(): Case[] {
  const out: Case[] = [];
  const vectors = join(ROOT, "vectors", "forensic");
  for (const entry of Deno.readDirSync(vectors)) {
    if (!entry.isDirectory) continue;
    const expect = JSON.parse(Deno.readTextFileSync(join(vectors, entry.name, "expect.json")));
    const key = expect.key === undefined ? undefined : encoder.encode(expect.key);
    out.push({
      name: `vector ${entry.name}`,
      path: join(vectors, entry.name, "kv_cache.log"),
      options: { hmacKey: key },
    });
  }
  const peer = join(ROOT, "fixtures", "python-tool");
  const secret = Deno.readFileSync(join(peer, "hmac", "secret.txt"));
  const wrong = Deno.readFileSync(join(peer, "hmac-wrong-key", "wrong-secret.txt"));
  for (const entry of Deno.readDirSync(peer)) {
    if (!entry.isDirectory) continue;
    for (const file of Deno.readDirSync(join(peer, entry.name))) {
      if (!file.name.endsWith(".log") || /-\d+\.log$/.test(file.name)) continue;
      const path = join(peer, entry.name, file.name);
      const base = `fixture ${entry.name}/${file.name}`;
      out.push({ name: base, path, options: {} });
      out.push({ name: `${base} with key`, path, options: { hmacKey: secret } });
      out.push({ name: `${base} with the wrong key`, path, options: { hmacKey: wrong } });
      out.push({ name: `${base} allowing NaN`, path, options: { allowNonFinite: true } });
    }
  }
  return out.sort((a, b) => a.name < b.name ? -1 : 1);
}

Deno.test({
  name: "verifyLog() reports the same with and without native digests, on every vector and fixture",
  ignore: noDefaultLibrary,
  fn: async (t) => {
    for (const { name, path, options } of cases()) {
      await t.step(name, async () => {
        const native = await verifyLog(path, { ...options, nativeDigests: true });
        const plain = await verifyLog(path, { ...options, nativeDigests: false });
        assert.deepEqual(native, plain);
      });
    }
  },
});

// Tampered runs of both formats: every line's result must be the same on both paths, whatever
// was changed (including non-ASCII where hex digits belong, which shifts byte offsets).
Deno.test({
  name: "checkLines() gives the same results natively for any tampered v1 or v2 line",
  ignore: noDefaultLibrary,
  fn: () => {
    const key = encoder.encode("k".repeat(70));
    const lines: string[] = [];
    let prev = GENESIS_V2;
    let prevV1 = "GENESIS";
    for (let seq = 0; seq < 6; seq++) {
      const fields = { tenant_id: seq % 2 ? "t1" : "té", n: seq, note: "a\u2028b\n" };
      const sealed = sealV2Record(
        { seq, ts: "2026-01-01T00:00:00.000Z", event: seq === 3 ? "prune" : "allocate", prev },
        seq === 3 ? { removed: [{ last_hash: prev, last_seq: 2 }] } : fields,
        seq % 3 === 2 ? {} : { key },
      );
      lines.push(sealed.line.slice(0, -1));
      prev = sealed.hash;
      const v1 = sealV1Record(fields, prevV1, { key, now: new Date(0) });
      lines.push(v1.line);
      prevV1 = v1.currHash;
    }
    const edit = fc.record({
      line: fc.nat({ max: lines.length - 1 }),
      at: fc.nat(),
      text: fc.oneof(
        fc.constantFrom("0", "f", "é", "😀", "}", '"', ",", " ", "\\", ""),
        fc.string({ unit: "grapheme", maxLength: 3 }),
      ),
      cut: fc.nat({ max: 2 }),
    });
    fc.assert(
      fc.property(fc.array(edit, { maxLength: 4 }), fc.boolean(), (edits, keyed) => {
        const tampered = applyEdits(lines, edits);
        const bytes = encoder.encode(tampered.join("\n"));
        const options = { key: keyed ? key : undefined };
        assert.deepEqual(
          checkLines(bytes, { ...options, nativeDigests: true }),
          checkLines(bytes, { ...options, nativeDigests: false }),
        );
      }),
      { seed: SEED, numRuns: 400 },
    );
  },
});
