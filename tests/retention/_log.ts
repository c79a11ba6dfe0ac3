/** Test helpers: build rotated format-v2 logs with a controlled clock, list and snapshot dirs. */
import { openForensicLog } from "../../lib/forensic/writer.ts";

/** 2026-01-01T00:00:00Z. */
export const EPOCH = Date.UTC(2026, 0, 1);

/**
 * Writes `records` critical records to `<dir>/kv_cache.log` with a rotation size small enough for
 * about two records per file; the clock advances `stepMs` per record.
 */
export async function writeRotatedLog(
  dir: string,
  options: { records?: number; stepMs?: number; hmacKey?: Uint8Array; start?: number } = {},
): Promise<void> {
  const { records = 12, stepMs = 3_600_000, hmacKey, start = EPOCH } = options;
  let time = start;
  const log = await openForensicLog({
    dir,
    maxBytes: 300,
    hmacKey,
    now: () => new Date(time += stepMs),
  });
  try {
    for (let i = 0; i < records; i++) {
      await log.append("free", { handle: `h${i}` }, { critical: true });
    }
  } finally {
    await log.close();
  }
}

/** Names in `dir`, sorted, without the writer's lock file. */
export async function listNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".lock")) names.push(entry.name);
  }
  return names.sort();
}

/** Every file's bytes in `dir`, by name, to prove that nothing changed. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of await listNames(dir)) {
    const info = await Deno.stat(`${dir}/${name}`);
    if (info.isFile) {
      files.set(name, new TextDecoder().decode(await Deno.readFile(`${dir}/${name}`)));
    }
  }
  return files;
}

export { withTempDir } from "../_temp_dir.ts";

/** Copies the Python tool's rotated log (7 files, format v1) into `dir`. */
export async function copyV1Fixture(dir: string): Promise<void> {
  const source = new URL("./fixtures/v1-rotated/", import.meta.url).pathname;
  for await (const entry of Deno.readDir(source)) {
    await Deno.copyFile(`${source}${entry.name}`, `${dir}/${entry.name}`);
  }
}
