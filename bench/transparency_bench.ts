/**
 * Costs of signed checkpoints (issue 12): appending with a checkpoint every 1,000 records (and a
 * MAC) against appending without, where the target is at most 35% slower; and an inclusion proof
 * for a 1M-record log by re-hashing it, where the target is under 2 s. Run: deno bench -A
 * bench/transparency_bench.ts (the lead runs it; the 1M-record log takes a while to write).
 */
import { openForensicLog } from "../lib/forensic/writer.ts";
import {
  checkpointer,
  generateNoteKey,
  parseSignerKey,
  parseVerifierKey,
  proveInclusion,
} from "../lib/transparency/mod.ts";
import { BENCH_FIELDS as FIELDS, BENCH_KEY as KEY } from "./_records.ts";

const RECORDS = 20_000;
const signer = parseSignerKey(generateNoteKey("bench").signerKey);

async function append(options: { key: boolean; checkpoints: boolean }): Promise<void> {
  const dir = await Deno.makeTempDir();
  const log = await openForensicLog({
    dir,
    hmacKey: options.key ? KEY : undefined,
    observe: options.checkpoints
      ? checkpointer({ signer, checkpointFile: `${dir}/checkpoint`, everyRecords: 1000 })
      : undefined,
  });
  for (let i = 0; i < RECORDS; i++) await log.append("allocate", FIELDS);
  await log.close();
  await Deno.remove(dir, { recursive: true });
}

Deno.bench(
  `ForensicLog.append x${RECORDS}`,
  { group: "append", baseline: true, n: 5 },
  async () => {
    await append({ key: false, checkpoints: false });
  },
);
Deno.bench(`ForensicLog.append x${RECORDS} with MAC`, { group: "append", n: 5 }, async () => {
  await append({ key: true, checkpoints: false });
});
Deno.bench(
  `ForensicLog.append x${RECORDS} with MAC and a checkpoint every 1000`,
  { group: "append", n: 5 },
  async () => {
    await append({ key: true, checkpoints: true });
  },
);

const MILLION = 1_000_000;
const bigDir = await Deno.makeTempDir();
const bigFile = `${bigDir}/checkpoint`;
{
  const log = await openForensicLog({
    dir: bigDir,
    observe: checkpointer({ signer, checkpointFile: bigFile, everyRecords: 100_000 }),
  });
  for (let i = 0; i < MILLION; i++) await log.append("allocate", FIELDS);
  await log.close();
}
const input = { name: bigFile, note: await Deno.readTextFile(bigFile) };
const verifier = parseVerifierKey(signer.verifierKey);

Deno.bench(`proveInclusion in a ${MILLION}-record log`, { group: "proof", n: 3 }, async () => {
  await proveInclusion(`${bigDir}/kv_cache.log`, 123_457, input, verifier);
});

globalThis.addEventListener("unload", () => {
  Deno.removeSync(bigDir, { recursive: true });
});
