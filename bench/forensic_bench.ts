/**
 * The forensic log's hot paths: sealing and checking one v2 line, appending through the writer,
 * verifying a v2 and a v1 log. Run: deno task bench (or deno bench -A bench/forensic_bench.ts).
 * bench/forensic_report.ts measures the 100k-record figures of bench/results/forensic.md.
 */
import { checkV2Line, sealV2Record } from "../lib/forensic/format_v2.ts";
import { sealV1Record } from "../lib/forensic/format_v1.ts";
import { GENESIS_V2 } from "../lib/forensic/types.ts";
import { openForensicLog } from "../lib/forensic/writer.ts";
import { verifyLog } from "../lib/forensic/verify.ts";
import { BENCH_FIELDS as FIELDS, BENCH_KEY as KEY } from "./_records.ts";

const HEADER = { seq: 7, ts: "2026-01-01T00:00:00.000Z", event: "allocate", prev: GENESIS_V2 };
const LINE = sealV2Record(HEADER, FIELDS).line.slice(0, -1);
const KEYED_LINE = sealV2Record(HEADER, FIELDS, { key: KEY }).line.slice(0, -1);

Deno.bench("sealV2Record", { group: "line" }, () => {
  sealV2Record(HEADER, FIELDS);
});
Deno.bench("sealV2Record with key", { group: "line" }, () => {
  sealV2Record(HEADER, FIELDS, { key: KEY });
});
Deno.bench("checkV2Line", { group: "line" }, () => {
  checkV2Line(LINE, undefined);
});
Deno.bench("checkV2Line with key", { group: "line" }, () => {
  checkV2Line(KEYED_LINE, KEY);
});

const dir = await Deno.makeTempDir();
const RECORDS = 20_000;
const v2 = await openForensicLog({ dir });
for (let i = 0; i < RECORDS; i++) {
  await v2.append("allocate", { ...FIELDS, request_id: `req-${i}` });
}
await v2.close();
const v1Path = `${dir}/v1.log`;
let prev = "GENESIS";
const v1Lines: string[] = [];
for (let i = 0; i < RECORDS; i++) {
  const sealed = sealV1Record({ event_type: "allocate", ...FIELDS, request_id: `req-${i}` }, prev, {
    now: new Date(i),
  });
  v1Lines.push(sealed.line);
  prev = sealed.currHash;
}
await Deno.writeTextFile(v1Path, v1Lines.join("\n") + "\n");

Deno.bench(`ForensicLog.append x${RECORDS}`, { group: "log", n: 5 }, async () => {
  const target = await Deno.makeTempDir();
  const log = await openForensicLog({ dir: target });
  for (let i = 0; i < RECORDS; i++) await log.append("allocate", FIELDS);
  await log.close();
  await Deno.remove(target, { recursive: true });
});
Deno.bench(`verifyLog v2 ${RECORDS} records`, { group: "log", n: 5 }, async () => {
  await verifyLog(v2.path);
});
Deno.bench(`verifyLog v1 ${RECORDS} lines`, { group: "log", n: 5 }, async () => {
  await verifyLog(v1Path, { activeOnly: true });
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
