/** A small valid forensic log, for tests that only need one to exist in a given folder. */
import { openForensicLog } from "../../lib/forensic/writer.ts";

/**
 * Writes `records` records to `<dir>/forensics/kv_cache.log` (the path kvh's examples use), so
 * a test can tell this log from another by its record count.
 */
export async function writeLog(dir: string, records: number): Promise<void> {
  const log = await openForensicLog({ dir: `${dir}/forensics` });
  try {
    for (let i = 0; i < records; i++) await log.append("free", { handle: `h${i}` });
  } finally {
    await log.close();
  }
}
