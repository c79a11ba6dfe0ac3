/**
 * The evidence bundle of `kvh gate --evidence DIR` (DESIGN.md §3): the inputs and results of one
 * gate run and `MANIFEST.sha256`, which `sha256sum -c MANIFEST.sha256` checks from inside DIR.
 *
 * @module
 */
import { describeIoError, KvhError } from "../errors.ts";
import { sha256Hex } from "../forensic/digest.ts";
import { dirname } from "../io/path.ts";
import { syncDir, tempSibling, writeNewFile } from "../io/mod.ts";

/** Name of the manifest at the top of a bundle. */
export const MANIFEST_NAME = "MANIFEST.sha256";

/** One file to put in a bundle. */
export interface EvidenceFile {
  /** File name inside the bundle: letters, digits, `.`, `_`, `-`; no directories. */
  name: string;
  /** Content; strings are written as UTF-8. */
  data: Uint8Array<ArrayBuffer> | string;
}

/** One file of a written bundle, as listed in its manifest. */
export interface EvidenceEntry {
  /** File name inside the bundle. */
  name: string;
  /** Lowercase hex SHA-256 of the content. */
  sha256: string;
  /** Size in bytes. */
  bytes: number;
}

/** A written bundle. */
export interface EvidenceBundle {
  /** The bundle's directory. */
  dir: string;
  /** Its files, in manifest order (the manifest itself not included). */
  files: EvidenceEntry[];
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** A bundle written in full beside its directory, not yet in place. */
export interface StagedEvidenceBundle {
  /** The bundle's directory and the digest of each file. */
  bundle: EvidenceBundle;
  /** Renames the staged bundle into place; fails, leaving nothing, if `dir` appeared since. */
  commit(): Promise<void>;
  /** Removes the staged bundle. */
  abort(): Promise<void>;
}

/**
 * Writes an evidence bundle atomically: the files and the manifest are written and fsynced in a
 * temporary directory beside `dir`, which is then renamed to `dir`, so a bundle is complete or
 * absent. Files are 0600, the directory 0700; missing parents of `dir` are created. `dir` must
 * not exist yet: evidence is never overwritten.
 *
 * @param dir The bundle's directory, which must not exist.
 * @param files The files to bundle, in manifest order.
 * @returns The bundle's directory and the digest of each file.
 * @throws {KvhError} `evidence_exists`, `evidence_name_invalid` or `evidence_write_failed`
 * (exit 1).
 *
 * @example Usage
 * ```ts
 * import { writeEvidenceBundle } from "./evidence.ts";
 * import assert from "node:assert/strict";
 *
 * const parent = await Deno.makeTempDir();
 * try {
 *   const bundle = await writeEvidenceBundle(`${parent}/ci/evidence`, [
 *     { name: "verdict.json", data: '{"pass": true}\n' },
 *   ]);
 *   assert.equal(bundle.files.length, 1);
 *   const manifest = await Deno.readTextFile(`${parent}/ci/evidence/MANIFEST.sha256`);
 *   assert.match(manifest, /^[0-9a-f]{64} {2}verdict\.json\n$/);
 * } finally {
 *   await Deno.remove(parent, { recursive: true });
 * }
 * ```
 */
export async function writeEvidenceBundle(
  dir: string,
  files: readonly EvidenceFile[],
): Promise<EvidenceBundle> {
  const staged = await stageEvidenceBundle(dir, files);
  await staged.commit();
  return staged.bundle;
}

/**
 * The first half of {@linkcode writeEvidenceBundle}: writes the whole bundle beside `dir` and
 * returns it staged, so a caller with another output (the gate's `--out`) can put both in place
 * together or neither.
 *
 * @param dir The bundle's directory, which must not exist.
 * @param files The files to bundle, in manifest order.
 * @returns The staged bundle.
 * @throws {KvhError} As {@linkcode writeEvidenceBundle}; nothing is left behind.
 *
 * @example Usage
 * ```ts
 * import { stageEvidenceBundle } from "./evidence.ts";
 * import assert from "node:assert/strict";
 *
 * const parent = await Deno.makeTempDir();
 * const staged = await stageEvidenceBundle(`${parent}/evidence`, [{ name: "a.txt", data: "a" }]);
 * await staged.abort();
 * assert.deepEqual([...Deno.readDirSync(parent)], []);
 * await Deno.remove(parent);
 * ```
 */
export async function stageEvidenceBundle(
  dir: string,
  files: readonly EvidenceFile[],
): Promise<StagedEvidenceBundle> {
  const seen = new Set<string>([MANIFEST_NAME]);
  for (const file of files) {
    if (!SAFE_NAME.test(file.name) || seen.has(file.name)) {
      throw new KvhError(
        "evidence_name_invalid",
        `Invalid evidence file name ${
          JSON.stringify(file.name)
        }: reserved, repeated or not a plain name`,
      );
    }
    seen.add(file.name);
  }
  const failed = (error: unknown) =>
    new KvhError(
      "evidence_write_failed",
      `Cannot write evidence ${dir}: ${describeIoError(error)}`,
      {
        cause: error,
      },
    );
  let present: boolean;
  try {
    present = await exists(dir);
  } catch (error) {
    throw failed(error);
  }
  if (present) {
    throw new KvhError(
      "evidence_exists",
      `Refusing evidence ${dir}: it already exists (evidence is never overwritten; pick a new directory)`,
    );
  }
  const temp = tempSibling(dir);
  const encoder = new TextEncoder();
  const entries: EvidenceEntry[] = [];
  const abort = () => Deno.remove(temp, { recursive: true }).catch(() => {});
  try {
    await Deno.mkdir(dirname(dir), { recursive: true, mode: 0o700 });
    await Deno.mkdir(temp, { mode: 0o700 });
    await Deno.chmod(temp, 0o700);
    for (const file of files) {
      const data = typeof file.data === "string" ? encoder.encode(file.data) : file.data;
      await writeNewFile(`${temp}/${file.name}`, data);
      entries.push({ name: file.name, sha256: sha256Hex(data), bytes: data.length });
    }
    const manifest = entries.map((entry) => `${entry.sha256}  ${entry.name}\n`).join("");
    await writeNewFile(`${temp}/${MANIFEST_NAME}`, encoder.encode(manifest));
    await syncDir(temp);
  } catch (error) {
    await abort();
    throw failed(error);
  }
  return {
    bundle: { dir, files: entries },
    async commit() {
      try {
        // rename(2) would replace an empty directory created at `dir` since the check above; a
        // non-empty one makes it fail, so existing evidence is never replaced.
        await Deno.rename(temp, dir);
        await syncDir(dirname(dir));
      } catch (error) {
        await abort();
        throw failed(error);
      }
    },
    abort,
  };
}
