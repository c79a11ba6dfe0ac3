/** Forward-secure MACs (issue 12.4): derivation, writer, verifier and the attacks they stop. */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { KvhError } from "../../lib/errors.ts";
import {
  epochKeyFor,
  macKeyId,
  MAX_EPOCH_STEPS,
  nextEpochKey,
  openMacState,
  parseKeyring,
  rekeyLog,
} from "../../lib/forensic/epoch_key.ts";
import { sealV2Record } from "../../lib/forensic/format_v2.ts";
import { verifyLog, type VerifyLogOptions } from "../../lib/forensic/verify.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { listChainFiles } from "../../lib/forensic/chain_files.ts";
import { withTempDir } from "../_temp_dir.ts";

const KEY = new Uint8Array(32).map((_, i) => i);
const KEY2 = new Uint8Array(32).fill(7);

/** key_{e+1} = HMAC-SHA256(key_e, "kvh-epoch" ‖ e as 8-byte big-endian), written out here. */
function reference(key: Uint8Array, epochs: number): Buffer {
  let current: Buffer = Buffer.from(key);
  for (let e = 0; e < epochs; e++) {
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(e));
    current = createHmac("sha256", current).update(
      Buffer.concat([Buffer.from("kvh-epoch"), counter]),
    )
      .digest();
  }
  return current;
}

Deno.test("epoch keys follow HMAC-SHA256(key_e, 'kvh-epoch' ‖ e big-endian)", () => {
  assert.equal(
    Buffer.from(nextEpochKey(KEY, 0)).toString("hex"),
    reference(KEY, 1).toString("hex"),
  );
  for (const epoch of [0, 1, 2, 5, 1023, 1024, 1025, 3000]) {
    assert.equal(
      Buffer.from(epochKeyFor(KEY, epoch)!).toString("hex"),
      reference(KEY, epoch).toString("hex"),
      `epoch ${epoch}`,
    );
  }
  // Going back uses what was kept on the way, and gives the same keys.
  assert.equal(
    Buffer.from(epochKeyFor(KEY, 7)!).toString("hex"),
    reference(KEY, 7).toString("hex"),
  );
  assert.equal(epochKeyFor(KEY2, MAX_EPOCH_STEPS + 1), undefined);
  assert.match(macKeyId(KEY), /^[0-9a-f]{16}$/);
  assert.notEqual(macKeyId(KEY), macKeyId(KEY2));
});

interface Written {
  path: string;
  state: string;
}

async function writeLog(
  dir: string,
  records: number,
  options: { initialKey?: Uint8Array; perEpoch?: number; maxBytes?: number } = {},
): Promise<Written> {
  const state = join(dir, "mac.state");
  const macKeys = await openMacState({
    path: state,
    initialKey: "initialKey" in options ? options.initialKey : KEY,
    recordsPerEpoch: options.perEpoch ?? 3,
  });
  const log = await openForensicLog({
    dir: join(dir, "log"),
    macKeys,
    maxBytes: options.maxBytes ?? 1200,
  });
  try {
    await rekeyLog(log, macKeys);
    for (let i = 0; i < records; i++) await log.append("free", { handle: `h${i}` });
  } finally {
    await log.close();
  }
  return { path: join(dir, "log", "kv_cache.log"), state };
}

async function allRecords(path: string): Promise<Record<string, unknown>[]> {
  const records = [];
  for (const file of await listChainFiles(join(path, ".."), "kv_cache.log")) {
    for (const line of (await Deno.readTextFile(file)).split("\n")) {
      if (line !== "") records.push(JSON.parse(line));
    }
  }
  return records;
}

Deno.test("a forward-secure log that rotates and crosses epochs verifies with the initial key", async () => {
  await withTempDir(async (dir) => {
    const { path, state } = await writeLog(dir, 40);
    const records = await allRecords(path);
    assert.ok(records.some((r) => r.event === "rotate"), "the log rotated");
    let epoch = 0;
    for (const record of records) {
      assert.ok(record.epoch === epoch || record.epoch === epoch + 1, `seq ${record.seq}`);
      // Every rotation starts an epoch.
      if (record.event === "rotate") assert.equal(record.epoch, epoch + 1);
      epoch = record.epoch as number;
      assert.equal(record.key_id, macKeyId(KEY));
    }
    assert.ok(epoch >= 13, `40 records of at most 3 per epoch: ${epoch}`);
    const saved = JSON.parse(await Deno.readTextFile(state));
    assert.equal(saved.epoch, epoch);
    assert.equal((await Deno.stat(state)).mode! & 0o777, 0o600);
    assert.equal(
      Buffer.from(saved.key, "base64").toString("hex"),
      reference(KEY, epoch).toString("hex"),
    );
    const reports = [];
    for (const options of [{}, { nativeDigests: false }, { workers: 1 }] as VerifyLogOptions[]) {
      const report = await verifyLog(path, { hmacKey: KEY, ...options });
      assert.equal(report.ok, true, JSON.stringify(report.failure));
      assert.equal(report.mac_checked, true);
      reports.push(report);
    }
    assert.deepEqual(reports[1], reports[0]);
    assert.deepEqual(reports[2], reports[0]);
    // The wrong key fails at the first record.
    const wrong = await verifyLog(path, { hmacKey: KEY2 });
    assert.equal(wrong.failure?.reason, "unknown_key");
  });
});

Deno.test("a restart continues from the state file alone, in the state's epoch", async () => {
  await withTempDir(async (dir) => {
    const { path } = await writeLog(dir, 10);
    const before = (await allRecords(path)).at(-1)!;
    await writeLog(dir, 10, { initialKey: undefined });
    const after = await allRecords(path);
    const next = after[(before.seq as number) + 1]!;
    assert.ok(next.epoch === before.epoch || next.epoch === (before.epoch as number) + 1);
    const report = await verifyLog(path, { hmacKey: KEY });
    assert.equal(report.ok, true, JSON.stringify(report.failure));
    assert.equal(report.records, after.length);
  });
});

/** Re-seals every record after `edit`, MACing each with `keyFor(record)` (an attacker's rewrite). */
async function forge(
  path: string,
  edit: (records: Record<string, unknown>[]) => void,
  keyFor: (record: Record<string, unknown>) => Uint8Array | undefined,
): Promise<void> {
  const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
  const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  edit(records);
  let prev = records[0]!.prev as string;
  const out = [];
  for (const record of records) {
    const { v: _v, seq, ts, event, prev: _prev, hash: _hash, mac: _mac, ...fields } = record;
    const sealed = sealV2Record(
      { seq: seq as number, ts: ts as string, event: event as string, prev },
      fields,
      { key: keyFor(record) },
    );
    prev = sealed.hash;
    out.push(sealed.line);
  }
  await Deno.writeTextFile(path, out.join(""));
}

/** The honest key of a record: what the writer would have used. */
function honestKey(record: Record<string, unknown>): Uint8Array | undefined {
  return record.epoch === undefined ? KEY : epochKeyFor(KEY, record.epoch as number);
}

async function singleFileLog(dir: string): Promise<string> {
  const { path } = await writeLog(dir, 12, { perEpoch: 2, maxBytes: 1 << 20 });
  return path;
}

async function failure(
  path: string,
  options: VerifyLogOptions = { hmacKey: KEY, activeOnly: true },
) {
  const report = await verifyLog(path, options);
  assert.equal(report.ok, false);
  return report.failure!;
}

Deno.test("re-MACing old records with a stolen current key fails at the first re-MACed record", async () => {
  await withTempDir(async (dir) => {
    const path = await singleFileLog(dir);
    const state = join(dir, "mac.state");
    const stolen = new Uint8Array(
      Buffer.from(JSON.parse(await Deno.readTextFile(state)).key, "base64"),
    );
    const current = JSON.parse(await Deno.readTextFile(state)).epoch;
    // Keeping each record's epoch: the stolen key is not the key of earlier epochs.
    await forge(path, (records) => {
      records[1]!.handle = "forged";
    }, () => stolen);
    const kept = await failure(path);
    assert.equal(kept.reason, "mac_mismatch");
    assert.equal(kept.line, 1);
    // Claiming the stolen key's epoch for every record: the epochs no longer start at 0.
    await forge(path, (records) => {
      for (const record of records) record.epoch = current;
    }, () => stolen);
    const claimed = await failure(path);
    assert.equal(claimed.line, 1);
    assert.equal(claimed.reason, "epoch_gap");
  });
});

Deno.test("a forged history claiming the current epoch from genesis is epoch_gap", async () => {
  await withTempDir(async (dir) => {
    // One file (no rotation), so the history starts at genesis in the active file.
    const path = join(dir, "kv_cache.log");
    const macKeys = await openMacState({
      path: join(dir, "s"),
      initialKey: KEY,
      recordsPerEpoch: 2,
    });
    const log = await openForensicLog({ dir, macKeys });
    for (let i = 0; i < 8; i++) await log.append("free", { handle: `h${i}` });
    await log.close();
    await forge(path, (records) => {
      for (const record of records) record.epoch = 3;
    }, (record) => epochKeyFor(KEY, record.epoch as number));
    const report = await verifyLog(path, { hmacKey: KEY });
    assert.equal(report.failure?.reason, "epoch_gap");
    assert.equal(report.failure?.line, 1);
  });
});

Deno.test("an epoch skipped, an epoch going back and a record reset to the initial key fail", async () => {
  await withTempDir(async (dir) => {
    const path = await singleFileLog(dir);
    const original = await Deno.readTextFile(path);
    const cases: [string, (records: Record<string, unknown>[]) => void, string][] = [
      ["skip", (r) => r[4]!.epoch = (r[3]!.epoch as number) + 2, "epoch_gap"],
      ["back", (r) => r[4]!.epoch = (r[3]!.epoch as number) - 1, "epoch_reset"],
      ["reset", (r) => {
        delete r[4]!.epoch;
        delete r[4]!.key_id;
      }, "epoch_reset"],
      ["key", (r) => r[4]!.key_id = macKeyId(KEY2), "key_id_mismatch"],
    ];
    for (const [name, edit, reason] of cases) {
      await Deno.writeTextFile(path, original);
      // Honestly MACed with the key each record claims (or the keyring's for KEY2): only the
      // epoch sequence is wrong.
      await forge(
        path,
        edit,
        (record) =>
          record.key_id === macKeyId(KEY2)
            ? epochKeyFor(KEY2, record.epoch as number)
            : honestKey(record),
      );
      const failed = await failure(path, { hmacKey: KEY, macKeyring: [KEY2], activeOnly: true });
      assert.equal(failed.reason, reason, name);
      assert.equal(failed.line, 5, name);
    }
  });
});

Deno.test("a record without a MAC after MACs began fails, with or without the key", async () => {
  await withTempDir(async (dir) => {
    const path = await singleFileLog(dir);
    await forge(
      path,
      (records) => {
        const last = records.at(-1)!;
        delete last.epoch;
        delete last.key_id;
      },
      (record) =>
        record === undefined
          ? undefined
          : record.epoch === undefined
          ? undefined
          : honestKey(record),
    );
    for (const options of [{ hmacKey: KEY, activeOnly: true }, { activeOnly: true }]) {
      const failed = await failure(path, options);
      assert.equal(failed.reason, "mac_missing");
    }
  });
});

Deno.test("a rekeyed log verifies with the keyring and fails clearly without it", async () => {
  await withTempDir(async (dir) => {
    const { path } = await writeLog(dir, 5);
    await writeLog(dir, 5, { initialKey: KEY2 });
    const records = await allRecords(path);
    const rekey = records.find((r) => r.event === "rekey")!;
    assert.equal(rekey.new_key_id, macKeyId(KEY2));
    assert.equal(rekey.key_id, macKeyId(KEY));
    assert.equal(records.at(-1)!.key_id, macKeyId(KEY2));
    const ok = await verifyLog(path, { hmacKey: KEY, macKeyring: [KEY2] });
    assert.equal(ok.ok, true, JSON.stringify(ok.failure));
    const without = await verifyLog(path, { hmacKey: KEY });
    assert.equal(without.failure?.reason, "unknown_key");
    assert.match(without.failure!.detail, new RegExp(`key ${macKeyId(KEY2)}`));
  });
});

Deno.test("a forward-secure log is not appended to without its state file", async () => {
  await withTempDir(async (dir) => {
    const { state } = await writeLog(dir, 4);
    // The key alone: refused, and the message says what is needed.
    await assert.rejects(openForensicLog({ dir: join(dir, "log"), hmacKey: KEY }), (error) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "log_key_missing");
      assert.equal(error.exitCode, 1);
      assert.match(error.message, /--mac-state-file/);
      return true;
    });
    // A lost state file is not recreated from the initial key.
    await Deno.remove(state);
    const fresh = await openMacState({ path: state, initialKey: KEY, recordsPerEpoch: 3 });
    await assert.rejects(openForensicLog({ dir: join(dir, "log"), macKeys: fresh }), (error) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "mac_state_mismatch");
      assert.equal(error.exitCode, 1);
      return true;
    });
    await assert.rejects(
      openMacState({ path: state, recordsPerEpoch: 3 }),
      (error) => error instanceof KvhError && error.code === "mac_state_missing",
    );
  });
});

Deno.test("a state file lagging the log by an epoch is derived forward; one ahead is refused", async () => {
  await withTempDir(async (dir) => {
    const { path, state } = await writeLog(dir, 7);
    const saved = JSON.parse(await Deno.readTextFile(state));
    const lagging = {
      ...saved,
      epoch: saved.epoch - 1,
      key: Buffer.from(reference(KEY, saved.epoch - 1)).toString("base64"),
    };
    await Deno.writeTextFile(state, JSON.stringify(lagging), { mode: 0o600 });
    await writeLog(dir, 3, { initialKey: undefined });
    assert.equal((await verifyLog(path, { hmacKey: KEY })).ok, true);
    const now = JSON.parse(await Deno.readTextFile(state));
    const ahead = {
      ...now,
      epoch: now.epoch + 2,
      key: Buffer.from(reference(KEY, now.epoch + 2)).toString("base64"),
    };
    await Deno.writeTextFile(state, JSON.stringify(ahead), { mode: 0o600 });
    await assert.rejects(
      writeLog(dir, 1, { initialKey: undefined }),
      (error) => error instanceof KvhError && error.code === "mac_state_mismatch",
    );
  });
});

Deno.test("parseKeyring() reads paths and base64 keys and refuses other lines", () => {
  const entries = parseKeyring(
    `# keys\n${macKeyId(KEY)} keys/a.key\n\n${macKeyId(KEY2)} base64:${
      Buffer.from(KEY2).toString("base64")
    }\n`,
    "ring",
  );
  assert.deepEqual(entries[0], { keyId: macKeyId(KEY), path: "keys/a.key" });
  assert.deepEqual(entries[1]!.key, KEY2);
  assert.throws(() => parseKeyring("nothex path\n", "ring"), /ring line 1/);
  assert.throws(() => parseKeyring(`${macKeyId(KEY)} base64:\n`, "ring"), /empty/);
  assert.throws(
    () => parseKeyring(`# keys\n${macKeyId(KEY)} base64:not*base64\n`, "ring"),
    /ring line 2: the key after base64: is not base64/,
  );
});
