/**
 * Writes the forensic-log test vectors under tests/vectors/forensic/<case>/: the log file(s) and
 * an `expect.json` with `desc` and the wanted `{ok, reason, file, line}` (plus `key`, the HMAC
 * key as text, where the case is verified with one). Every negative is derived systematically
 * from a log the real writer produced with a fixed clock and a fixed seed, so the output is
 * reproducible byte for byte and any implementation of DESIGN.md §4 can consume it.
 *
 * Usage: deno run -A tests/vectors/generate.ts [--check]
 *
 * `--check` writes the vectors into a temporary folder instead and compares them byte for byte
 * with the committed ones: exit 0 when they are what the generator writes, 1 (listing every
 * difference) when not. The tests run it, so the committed vectors cannot drift from the code.
 *
 * @module
 */
import { join } from "node:path";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { sealV1Record } from "../../lib/forensic/format_v1.ts";
import { sha256Hex } from "../../lib/forensic/digest.ts";

const SEED = 20260101;
const COMMITTED = join(import.meta.dirname!, "forensic");
/** Where the vectors are written: the committed folder, or a temporary one for `--check`. */
let ROOT = COMMITTED;
/** A fixed log id (the writer picks a random one for a new log), so output is reproducible. */
const LOG_ID = "5eed20260101000000000000000000a1";
const KEY = "vector-key-0123456789";
const WRONG_KEY = "not-the-vector-key";

interface Expect {
  desc: string;
  ok: boolean;
  reason: string | null;
  file: string | null;
  line: number | null;
  key?: string;
}

/** mulberry32: a small seeded PRNG, so vectors do not depend on Math.random. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function clock(): () => Date {
  let ms = Date.UTC(2026, 0, 1);
  return () => new Date(ms += 1001);
}

const EVENTS = ["allocate", "bind", "write", "sanitize_start", "sanitize_end", "free"];

async function writeLog(
  dir: string,
  options: { records: number; key?: string; maxBytes?: number },
): Promise<void> {
  const random = prng(SEED);
  const log = await openForensicLog({
    dir,
    now: clock(),
    hmacKey: options.key === undefined ? undefined : new TextEncoder().encode(options.key),
    maxBytes: options.maxBytes,
    logId: LOG_ID,
  });
  for (let i = 0; i < options.records; i++) {
    await log.append(EVENTS[i % EVENTS.length]!, {
      tenant_id: `tenant-${Math.floor(random() * 4)}`,
      request_id: `req-${i}`,
      handle: `h-${Math.floor(random() * 1e9).toString(16)}`,
      nbytes: Math.floor(random() * 65536) * 4096,
      coverage_pct: i % 3 === 0 ? 100 : Math.round(random() * 10000) / 100,
    });
  }
  await log.close();
  await Deno.remove(join(dir, "kv_cache.log.lock"));
}

async function caseDir(name: string): Promise<string> {
  const dir = join(ROOT, name);
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

async function save(dir: string, expect: Expect): Promise<void> {
  await Deno.writeTextFile(join(dir, "expect.json"), JSON.stringify(expect, null, 2) + "\n");
}

async function lines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path)).split("\n").slice(0, -1);
}

async function writeLines(path: string, list: string[]): Promise<void> {
  await Deno.writeTextFile(path, list.map((l) => l + "\n").join(""));
}

/** Rewrites a v2 line's body and recomputes its hash, as a forger without the key could. */
function rehash(line: string, edit: (record: Record<string, unknown>) => void): string {
  const record = JSON.parse(line) as Record<string, unknown>;
  delete record.hash;
  delete record.mac;
  edit(record);
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(record).sort()) sorted[k] = record[k];
  const body = JSON.stringify(sorted);
  return body.slice(0, -1) + `,"hash":"${sha256Hex(body)}"}`;
}

async function derive(
  name: string,
  expect: Omit<Expect, "desc"> & { desc: string },
  source: { records: number; key?: string; maxBytes?: number },
  mutate: (dir: string) => Promise<void> = async () => {},
): Promise<void> {
  const dir = await caseDir(name);
  await writeLog(dir, source);
  await save(dir, expect);
  await mutate(dir);
}

const PLAIN = { records: 12 };
const KEYED = { records: 12, key: KEY };
const ROTATED = { records: 40, maxBytes: 2048 };

async function rotatedFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (/^kv_cache-.*\.log$/.test(entry.name)) names.push(entry.name);
  }
  return names.sort((a, b) =>
    Number(a.split("-")[2]!.slice(0, -4)) - Number(b.split("-")[2]!.slice(0, -4))
  );
}

async function main(): Promise<void> {
  await Deno.remove(ROOT, { recursive: true }).catch(() => {});
  const active = "kv_cache.log";
  const ok = { ok: true, reason: null, file: null, line: null };
  const fail = (reason: string, file: string, line: number) => ({ ok: false, reason, file, line });

  await derive("ok-plain", { desc: "an untouched log", ...ok }, PLAIN);
  await derive("ok-hmac", {
    desc: "an untouched keyed log, verified with its key",
    ...ok,
    key: KEY,
  }, KEYED);
  await derive(
    "ok-rotated",
    { desc: "an untouched log over several rotated files", ...ok },
    ROTATED,
  );
  await derive(
    "edit-field",
    { desc: "line 5 tenant_id edited, hash untouched", ...fail("hash_mismatch", active, 5) },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list[4] = list[4]!.replace(/"tenant_id":"tenant-\d"/, '"tenant_id":"tenant-9"');
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "edit-rehash",
    {
      desc: "line 5 edited and its hash recomputed: the next record no longer links",
      ...fail("chain_break", active, 6),
    },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list[4] = rehash(list[4]!, (r) => (r.tenant_id = "tenant-9"));
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "edit-rehash-keyed",
    {
      desc: "keyed log, line 5 edited and its hash recomputed without the key",
      ...fail("mac_missing", active, 5),
      key: KEY,
    },
    KEYED,
    async (dir) => {
      const list = await lines(join(dir, active));
      list[4] = rehash(list[4]!, (r) => (r.tenant_id = "tenant-9"));
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "delete-middle",
    { desc: "line 6 deleted", ...fail("chain_break", active, 6) },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list.splice(5, 1);
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "swap-two",
    { desc: "lines 6 and 7 swapped", ...fail("chain_break", active, 6) },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      [list[5], list[6]] = [list[6]!, list[5]!];
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "duplicate-record",
    { desc: "line 6 written twice", ...fail("chain_break", active, 7) },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list.splice(6, 0, list[5]!);
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "seq-gap",
    { desc: "line 6 seq changed and its hash recomputed", ...fail("seq_gap", active, 6) },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list[5] = rehash(list[5]!, (r) => (r.seq = 99));
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "unknown-version",
    { desc: "line 4 claims v 3 (hash recomputed)", ...fail("unknown_version", active, 4) },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list[3] = rehash(list[3]!, (r) => (r.v = 3));
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "strip-mac",
    {
      desc: "keyed log with the mac of line 4 removed",
      ...fail("mac_missing", active, 4),
      key: KEY,
    },
    KEYED,
    async (dir) => {
      const list = await lines(join(dir, active));
      list[3] = list[3]!.replace(/,"mac":"[0-9a-f]{64}"/, "");
      await writeLines(join(dir, active), list);
    },
  );
  await derive("wrong-key", {
    desc: "keyed log verified with another key",
    ...fail("mac_mismatch", active, 1),
    key: WRONG_KEY,
  }, KEYED);
  await derive(
    "duplicate-key",
    {
      desc: "line 3 gains a duplicate tenant_id before the genuine one",
      ...fail("malformed_json", active, 3),
    },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list[2] = '{"tenant_id":"tenant-9",' + list[2]!.slice(1);
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "whitespace",
    {
      desc: "line 2 gains a space after a colon (content intact, bytes not canonical)",
      ...fail("hash_mismatch", active, 2),
    },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list[1] = list[1]!.replace('"event":', '"event": ');
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "blank-line",
    { desc: "an empty line inserted after line 3", ...fail("malformed_json", active, 4) },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list.splice(3, 0, "");
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "bit-flip-hash",
    { desc: "one hex digit of line 8's hash changed", ...fail("hash_mismatch", active, 8) },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      list[7] = list[7]!.replace(
        /"hash":"(.)/,
        (_m, c: string) => `"hash":"${c === "0" ? "1" : "0"}`,
      );
      await writeLines(join(dir, active), list);
    },
  );
  await derive(
    "torn-last-line",
    { desc: "the last line cut short without its newline", ...fail("torn_tail", active, 12) },
    PLAIN,
    async (dir) => {
      const text = await Deno.readTextFile(join(dir, active));
      await Deno.writeTextFile(join(dir, active), text.slice(0, -40));
    },
  );
  await derive(
    "truncated-tail",
    { desc: "the last 3 lines dropped: undetectable without a checkpoint", ...ok },
    PLAIN,
    async (dir) => {
      const list = await lines(join(dir, active));
      await writeLines(join(dir, active), list.slice(0, -3));
    },
  );
  await derive("empty", { desc: "an empty log", ...ok }, { records: 0 });

  await derive(
    "broken-rotation-link",
    {
      desc: "a rotate record names the wrong previous file (hash recomputed)",
      ...fail("linkage_mismatch", "", 1),
    },
    ROTATED,
    async (dir) => {
      const names = await rotatedFiles(dir);
      const target = names[2]!;
      const list = await lines(join(dir, target));
      list[0] = rehash(list[0]!, (r) => (r.prev_file = "kv_cache-elsewhere.log"));
      await writeLines(join(dir, target), list);
      const expect = {
        desc: "a rotate record names the wrong previous file (hash recomputed)",
        ...fail("linkage_mismatch", target, 1),
      };
      await save(dir, expect);
    },
  );
  await derive("missing-middle-rotated", { desc: "", ...ok }, ROTATED, async (dir) => {
    const names = await rotatedFiles(dir);
    await Deno.remove(join(dir, names[1]!));
    await save(dir, {
      desc: `rotated file ${names[1]} deleted`,
      ...fail("linkage_mismatch", names[2]!, 1),
    });
  });
  await derive("oldest-deleted-no-prune", { desc: "", ...ok }, ROTATED, async (dir) => {
    const names = await rotatedFiles(dir);
    await Deno.remove(join(dir, names[0]!));
    await save(dir, {
      desc: "the oldest rotated file deleted by hand, no prune record",
      ...fail("linkage_mismatch", names[1]!, 1),
    });
  });
  await derive("oldest-pruned", { desc: "", ...ok }, ROTATED, async (dir) => {
    await prune(dir, 2);
    await save(dir, {
      desc: "the two oldest rotated files removed and named in a prune record",
      ...ok,
    });
  });
  await derive("pruned-wrong-hash", { desc: "", ...ok }, ROTATED, async (dir) => {
    await prune(dir, 2, "f".repeat(64));
    const names = await rotatedFiles(dir);
    await save(dir, {
      desc: "a prune record whose last_hash does not match what remains",
      ...fail("linkage_mismatch", names[0]!, 1),
    });
  });
  await derive("prune-interrupted", { desc: "", ...ok }, ROTATED, async (dir) => {
    await prune(dir, 3, undefined, 1);
    await save(dir, {
      desc: "a prune record names three files but only the oldest was deleted (interrupted prune)",
      ...ok,
    });
  });
  await v1Cases();
  await Deno.writeTextFile(join(ROOT, "README.md"), README);
}

async function prune(
  dir: string,
  count: number,
  forgedHash?: string,
  deleteCount = count,
): Promise<void> {
  const names = await rotatedFiles(dir);
  const removed = [];
  for (const name of names.slice(0, count)) {
    const list = await lines(join(dir, name));
    const first = JSON.parse(list[0]!) as { seq: number };
    const last = JSON.parse(list[list.length - 1]!) as { seq: number; hash: string };
    removed.push({
      file: name,
      first_seq: first.seq,
      last_seq: last.seq,
      last_hash: forgedHash ?? last.hash,
    });
    if (removed.length <= deleteCount) await Deno.remove(join(dir, name));
  }
  let ms = Date.UTC(2026, 0, 2);
  const log = await openForensicLog({
    dir,
    now: () => new Date(ms += 1001),
    maxBytes: 2048,
  });
  await log.append("prune", { removed, reason: "retention" });
  await log.close();
  await Deno.remove(join(dir, "kv_cache.log.lock"));
}

/** Format-v1 histories (the Python tool's), rotated, with and without a prune record. */
async function v1Cases(): Promise<void> {
  const build = async (dir: string) => {
    const random = prng(SEED + 1);
    let t = 1767225600;
    const files: string[][] = [];
    let current: string[] = [];
    let prev = "GENESIS";
    for (let i = 0; i < 15; i++) {
      if (i > 0 && i % 5 === 0) {
        const name = `kv_cache-${t}.log`;
        files.push([name, ...current]);
        const rotate = sealV1Record(
          {
            schema: 1,
            event_type: "rotate",
            ts: t + 0.5,
            trace_id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
            prev_file: name,
            prev_file_last_hash: prev,
          },
          "GENESIS",
        );
        current = [rotate.line];
        prev = rotate.currHash;
      }
      const sealed = sealV1Record(
        {
          event_type: "allocate",
          tenant_id: `tenant-${Math.floor(random() * 4)}`,
          nbytes: 4096 * i,
          ts: t + i / 10,
          trace_id: `00000000-0000-4000-8000-${String(100 + i).padStart(12, "0")}`,
        },
        prev,
      );
      current.push(sealed.line);
      prev = sealed.currHash;
      t += 10;
    }
    for (const [name, ...list] of files) await writeLines(join(dir, name!), list);
    await writeLines(join(dir, "kv_cache.log"), current);
    return { files: files.map((f) => f[0]!), prev, current };
  };
  {
    const dir = await caseDir("v1-rotated");
    await build(dir);
    await save(dir, {
      desc: "a format-v1 history over three files",
      ok: true,
      reason: null,
      file: null,
      line: null,
    });
  }
  {
    const dir = await caseDir("v1-oldest-deleted-no-prune");
    const { files } = await build(dir);
    await Deno.remove(join(dir, files[0]!));
    await save(dir, {
      desc: "format v1, oldest rotated file deleted by hand",
      ok: false,
      reason: "linkage_mismatch",
      file: files[1]!,
      line: 1,
    });
  }
  {
    const dir = await caseDir("v1-oldest-pruned");
    const { files, prev, current } = await build(dir);
    const removedLines = await lines(join(dir, files[0]!));
    const lastHash =
      (JSON.parse(removedLines[removedLines.length - 1]!) as { curr_hash: string }).curr_hash;
    await Deno.remove(join(dir, files[0]!));
    const record = sealV1Record(
      {
        event_type: "prune",
        removed: [{ file: files[0]!, last_hash: lastHash, lines: removedLines.length }],
        reason: "retention",
        ts: 1767229200.25,
        trace_id: "00000000-0000-4000-8000-000000000999",
      },
      prev,
    );
    await writeLines(join(dir, "kv_cache.log"), [...current, record.line]);
    await save(dir, {
      desc: "format v1, oldest rotated file removed and named in a v1 prune record",
      ok: true,
      reason: null,
      file: null,
      line: null,
    });
  }
}

const README = `# Forensic log vectors

Generated by \`deno run -A tests/vectors/generate.ts\` (fixed seed ${SEED}, fixed clock); do not edit by
hand. Each folder holds the log file(s) of one case and \`expect.json\`:
\`{desc, ok, reason, file, line, key?}\` — verify \`<case>/kv_cache.log\` (with \`key\` as the HMAC key
when present) and expect the first failure at \`file\`/\`line\` (1-based) with \`reason\`
(DESIGN.md §3), or \`ok\`. tests/forensic/vectors_test.ts walks this folder.
`;

/** Every file under `dir`, as paths relative to it, sorted. */
async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory) out.push(...await listTree(dir, path));
    else out.push(path);
  }
  return out.sort();
}

/** Generates into a temporary folder and lists how it differs from the committed vectors. */
async function check(): Promise<string[]> {
  ROOT = await Deno.makeTempDir();
  try {
    await main();
    const wanted = await listTree(ROOT);
    const have = await listTree(COMMITTED);
    const differences = [
      ...wanted.filter((f) => !have.includes(f)).map((f) => `missing: ${f}`),
      ...have.filter((f) => !wanted.includes(f)).map((f) => `not generated: ${f}`),
    ];
    for (const file of wanted.filter((f) => have.includes(f))) {
      const [a, b] = await Promise.all([
        Deno.readFile(join(ROOT, file)),
        Deno.readFile(join(COMMITTED, file)),
      ]);
      if (a.length !== b.length || a.some((byte, i) => byte !== b[i])) {
        differences.push(`differs: ${file}`);
      }
    }
    return differences;
  } finally {
    await Deno.remove(ROOT, { recursive: true });
    ROOT = COMMITTED;
  }
}

if (import.meta.main) {
  if (Deno.args.includes("--check")) {
    const differences = await check();
    for (const line of differences) console.error(`tests/vectors/forensic: ${line}`);
    if (differences.length > 0) {
      console.error("Run deno run -A tests/vectors/generate.ts and commit the result");
      Deno.exit(1);
    }
  } else {
    await main();
  }
}
