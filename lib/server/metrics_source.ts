/**
 * The metrics textfile, kept in memory and reloaded when it changes.
 *
 * Writers replace the file atomically (temp file + rename, DESIGN.md §6), so the inode changes
 * under a fixed name. The source therefore watches the directory, not the file, and on every
 * scrape compares the path's identity (inode, size, mtime) with what it last read: the watcher
 * makes reloads prompt, the stat makes them certain when watch events are lost, coalesced or
 * unavailable (network file systems, a directory that does not exist yet).
 *
 * Only a regular file is served, and only the file the path names itself: it is opened with
 * `O_NOFOLLOW` (a symlink as the last component is refused, so a link to `/etc/shadow` placed
 * where the metrics file should be serves nothing) and `O_NONBLOCK` (a FIFO cannot block the
 * server), and the opened descriptor, not the path, is checked to be a regular file. Symlinked
 * directories above the file, as in a Kubernetes volume, are still followed.
 *
 * @module
 */
import fs from "node:fs";
import { dirname } from "../io/path.ts";
import {
  FileTooLargeError,
  fromNodeError,
  NotRegularFileError,
  readRegularFileSync,
  SymlinkRefusedError,
} from "../io/read_regular_file.ts";
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
  ino: number;
  size: number;
  mtimeMs: number;
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
    let info: fs.Stats;
    try {
      // lstat: replacing the file with a symlink changes the identity and forces a reload.
      info = fs.lstatSync(this.#path);
    } catch (error) {
      if (this.#snapshot.ok || this.#identity !== null) this.#fail(fromNodeError(error));
      return;
    }
    const seen = this.#identity;
    if (
      seen === null || seen.ino !== info.ino || seen.size !== info.size ||
      seen.mtimeMs !== info.mtimeMs
    ) {
      this.#reload();
    }
  }

  #reload(): void {
    try {
      // The opened descriptor, not the path, is checked: what is checked is what is read, and a
      // rename between open and read is caught by the next scrape's comparison.
      const { bytes, ino, mtimeMs } = readRegularFileSync(this.#path, {
        maxBytes: this.#maxBytes,
        noFollow: true,
      });
      this.#identity = { ino, size: bytes.length, mtimeMs };
      const recovered = !this.#snapshot.ok && this.#reloadFailures > 0;
      this.#snapshot = { ok: true, body: bytes };
      this.#reloads++;
      if (recovered) this.#log(`Reloaded metrics file ${this.#path}: serving it again`);
    } catch (error) {
      this.#fail(error);
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

function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "Metrics file not found";
  if (error instanceof Deno.errors.PermissionDenied) {
    return "Metrics file unreadable: permission denied";
  }
  if (error instanceof SymlinkRefusedError) {
    return "Metrics file unreadable: a symlink, which is never followed";
  }
  if (error instanceof NotRegularFileError) return "Metrics file unreadable: not a regular file";
  if (error instanceof FileTooLargeError) return "Metrics file unreadable: too large";
  return "Metrics file unreadable";
}

function reasonDetail(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof SymlinkRefusedError) return "it is a symlink, which is never followed";
  if (error instanceof Error) return error.message.split("\n")[0]!.toLowerCase();
  return String(error);
}
