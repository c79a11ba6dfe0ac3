/**
 * The metrics textfile, kept in memory and reloaded when it changes.
 *
 * Writers replace the file atomically (temp file + rename, DESIGN.md §6), so the inode changes
 * under a fixed name. The source therefore watches the directory, not the file, and on every
 * scrape compares the path's identity (inode, size, mtime) with what it last read: the watcher
 * makes reloads prompt, the stat makes them certain when watch events are lost, coalesced or
 * unavailable (network file systems, a directory that does not exist yet).
 *
 * @module
 */
import { dirname } from "node:path";
import type { ExpositionSnapshot, MetricsSource, MetricsSourceStats } from "./types.ts";

/** Options of {@linkcode FileMetricsSource}. */
export interface FileMetricsSourceOptions {
  /**
   * Receives one line per failed reload and one per recovery (never the file's content).
   *
   * @default {() => {}}
   */
  log?: (line: string) => void;
  /**
   * Watch the file's directory for changes; without it the per-scrape stat still notices them.
   *
   * @default {true}
   */
  watch?: boolean;
  /**
   * Least time between two stat checks of the path, so a flood of requests costs at most one
   * `stat` per interval; every real scrape (seconds apart) still gets its own check.
   *
   * @default {100}
   */
  statIntervalMs?: number;
  /**
   * Largest file served; a bigger one is answered with 503 rather than held in memory.
   *
   * @default {16777216}
   */
  maxBytes?: number;
}

interface Identity {
  ino: number | null;
  size: number;
  mtimeMs: number | null;
}

/**
 * Serves a Prometheus textfile from memory: loaded at construction, reloaded on directory
 * events and whenever a scrape finds the path's inode, size or mtime changed. While the file is
 * missing, unreadable, not a regular file or too large, {@linkcode FileMetricsSource.snapshot}
 * says why, and the content comes back as soon as the file does.
 *
 * @example Serve a file
 * ```ts
 * import { FileMetricsSource } from "./metrics_source.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/metrics.prom`, "kvh_quarantined_buffers 0\n");
 * using source = new FileMetricsSource(`${dir}/metrics.prom`, { watch: false });
 * const snapshot = source.snapshot();
 * assert.ok(snapshot.ok);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FileMetricsSource implements MetricsSource, Disposable {
  readonly #path: string;
  readonly #log: (line: string) => void;
  readonly #maxBytes: number;
  readonly #statIntervalMs: number;
  #lastCheck = -Infinity;
  #snapshot: ExpositionSnapshot = { ok: false, reason: "Metrics file not loaded" };
  #identity: Identity | null = null;
  #reloads = 0;
  #reloadFailures = 0;
  #watcher: Deno.FsWatcher | null = null;

  /**
   * Loads the file and starts watching its directory.
   *
   * @param path The textfile to serve.
   * @param options Logging, watching and size limit.
   */
  constructor(path: string, options: FileMetricsSourceOptions = {}) {
    const { log = () => {}, watch = true, maxBytes = 16 * 1024 * 1024, statIntervalMs = 100 } =
      options;
    this.#statIntervalMs = statIntervalMs;
    this.#path = path;
    this.#log = log;
    this.#maxBytes = maxBytes;
    this.#reload();
    if (watch) this.#watch();
  }

  /**
   * The exposition as of now: re-stats the path (at most once per `statIntervalMs`) and
   * reloads if it changed.
   *
   * @returns The cached bytes (the same array until the content changes), or the reason there
   * are none.
   */
  snapshot(): ExpositionSnapshot {
    const now = performance.now();
    if (now - this.#lastCheck >= this.#statIntervalMs) {
      this.#lastCheck = now;
      this.#check();
    }
    return this.#snapshot;
  }

  /**
   * Counters for the exporter's self-metrics.
   *
   * @returns Reloads, reload failures and the served file's mtime.
   */
  stats(): MetricsSourceStats {
    return {
      reloads: this.#reloads,
      reloadFailures: this.#reloadFailures,
      mtimeMs: this.#snapshot.ok ? this.#identity?.mtimeMs ?? undefined : undefined,
    };
  }

  /** Stops watching the directory. */
  close(): void {
    try {
      this.#watcher?.close();
    } catch {
      // Already closed: closing twice is harmless.
    }
    this.#watcher = null;
  }

  /** Same as {@linkcode FileMetricsSource.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #check(): void {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(this.#path);
    } catch (error) {
      if (this.#snapshot.ok || this.#identity !== null) this.#fail(error);
      return;
    }
    const seen = this.#identity;
    if (
      seen === null || seen.ino !== info.ino || seen.size !== info.size ||
      seen.mtimeMs !== (info.mtime?.getTime() ?? null)
    ) {
      this.#reload();
    }
  }

  #reload(): void {
    let file: Deno.FsFile | undefined;
    try {
      // Opening a FIFO for reading would block the whole server until a writer appears.
      if (!Deno.statSync(this.#path).isFile) throw new TypeError("Not a regular file");
      file = Deno.openSync(this.#path, { read: true });
      // fstat describes the inode actually read, so a rename between stat and read is caught
      // by the next scrape's comparison instead of being attributed to the wrong content.
      const info = file.statSync();
      if (!info.isFile) throw new TypeError("Not a regular file");
      if (info.size > this.#maxBytes) {
        throw new RangeError(`Too large: ${info.size} bytes, limit ${this.#maxBytes}`);
      }
      const body = readAll(file, info.size);
      this.#identity = { ino: info.ino, size: info.size, mtimeMs: info.mtime?.getTime() ?? null };
      const recovered = !this.#snapshot.ok && this.#reloadFailures > 0;
      this.#snapshot = { ok: true, body };
      this.#reloads++;
      if (recovered) this.#log(`Reloaded metrics file ${this.#path}: serving it again`);
    } catch (error) {
      this.#fail(error);
    } finally {
      file?.close();
    }
  }

  #fail(error: unknown): void {
    const reason = describe(error);
    // One line and one count per distinct failure, not per scrape while the file stays away.
    if (this.#snapshot.ok || this.#snapshot.reason !== reason || this.#identity !== null) {
      this.#reloadFailures++;
      this.#log(`Cannot reload metrics file ${this.#path}: ${reasonDetail(error)}`);
    }
    this.#identity = null;
    this.#snapshot = { ok: false, reason };
  }

  #watch(): void {
    try {
      this.#watcher = Deno.watchFs(dirname(this.#path), { recursive: false });
    } catch {
      // No directory yet, or no inotify: the per-scrape stat covers it.
      return;
    }
    const watcher = this.#watcher;
    (async () => {
      try {
        for await (const event of watcher) {
          // Any event in the directory triggers a check: a Kubernetes volume swaps a `..data`
          // symlink rather than the file, so the event may not name the file at all.
          if (event.kind !== "access") this.#check();
        }
      } catch {
        // The watcher was closed or the directory went away; scrapes still stat the path.
      }
    })();
  }
}

function readAll(file: Deno.FsFile, expected: number): Uint8Array<ArrayBuffer> {
  let buffer = new Uint8Array(Math.max(expected, 4096));
  let length = 0;
  while (true) {
    if (length === buffer.length) {
      const grown = new Uint8Array(buffer.length * 2);
      grown.set(buffer);
      buffer = grown;
    }
    const read = file.readSync(buffer.subarray(length));
    if (read === null) break;
    length += read;
  }
  return buffer.slice(0, length);
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "Metrics file not found";
  if (error instanceof Deno.errors.PermissionDenied) {
    return "Metrics file unreadable: permission denied";
  }
  if (error instanceof Deno.errors.IsADirectory || error instanceof TypeError) {
    return "Metrics file unreadable: not a regular file";
  }
  if (error instanceof RangeError) return "Metrics file unreadable: too large";
  return "Metrics file unreadable";
}

function reasonDetail(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Error) return error.message.split("\n")[0]!.toLowerCase();
  return String(error);
}
