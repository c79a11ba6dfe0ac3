/** An in-process sidecar daemon on a Unix socket in a temporary directory, for tests. */
import { join } from "node:path";
import type { AuditSink, RecordV2 } from "../../lib/forensic/types.ts";
import { SidecarClient, SidecarDaemon, type SidecarDaemonOptions } from "../../lib/sidecar/mod.ts";

/** An event the daemon appended. */
export interface LoggedEvent {
  event: string;
  fields: Record<string, unknown>;
  critical: boolean;
}

/** A running test daemon. */
export interface TestDaemon {
  dir: string;
  socket: string;
  daemon: SidecarDaemon;
  events: LoggedEvent[];
  connect(): Promise<SidecarClient>;
  /** Creates a pool file of `bytes` filled with `fill` in the pool directory. */
  pool(name: string, bytes: number, fill?: number): Promise<string>;
  /** Connects, creates a flat pool of `blocks` × `blockBytes` and registers it. */
  connectWithPool(
    name: string,
    blocks: number,
    blockBytes: number,
  ): Promise<{ kvh: SidecarClient; path: string }>;
  stop(): Promise<void>;
}

/** Starts a daemon; `audit` replaces the recording sink. */
export async function startDaemon(
  options: Partial<SidecarDaemonOptions> = {},
): Promise<TestDaemon> {
  const dir = await Deno.makeTempDir({ prefix: "kvh-sidecar-" });
  await Deno.mkdir(join(dir, "pools"));
  await Deno.mkdir(join(dir, "logs"));
  const events: LoggedEvent[] = [];
  const audit: AuditSink = {
    append: (event, fields, opts) => {
      events.push({ event, fields, critical: opts?.critical ?? false });
      return Promise.resolve({} as RecordV2);
    },
  };
  const daemon = new SidecarDaemon({
    audit,
    poolDirs: [await Deno.realPath(join(dir, "pools"))],
    protectedDirs: [await Deno.realPath(join(dir, "logs"))],
    ...options,
  });
  const socket = join(dir, "kvh.sock");
  const listener = Deno.listen({ transport: "unix", path: socket });
  const serving = daemon.serve(listener);
  const clients: SidecarClient[] = [];
  const connect = async () => {
    const client = await SidecarClient.connect(socket);
    clients.push(client);
    return client;
  };
  const pool = async (name: string, bytes: number, fill = 0xab) => {
    const path = join(dir, "pools", name);
    await Deno.writeFile(path, new Uint8Array(bytes).fill(fill));
    return await Deno.realPath(path);
  };
  return {
    dir,
    socket,
    daemon,
    events,
    connect,
    pool,
    async connectWithPool(name, blocks, blockBytes) {
      const kvh = await connect();
      const path = await pool(name, blocks * blockBytes);
      await kvh.request("register_pool", flatPool(name, path, blocks, blockBytes));
      return { kvh, path };
    },
    async stop() {
      await daemon.stop(100);
      await serving;
      for (const client of clients) await client.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Registers a flat pool of `blocks` × `blockBytes` at `path`. */
export function flatPool(
  pool: string,
  path: string,
  blocks: number,
  blockBytes: number,
): Record<string, unknown> {
  return {
    pool,
    device: "cpu",
    path,
    bytes: blocks * blockBytes,
    blocks,
    regions: [{ offset: 0, block_stride: blockBytes, block_bytes: blockBytes }],
  };
}

/** The owner fields of an assign. */
export function owner(tenant: string, request = "r1"): Record<string, string> {
  return { tenant_id: tenant, request_id: request, model_id: "m" };
}

/** Sends raw bytes on a new connection and returns the first `lines` reply lines, parsed. */
export async function rawExchange(
  socket: string,
  text: string,
  lines: number,
): Promise<unknown[]> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    await conn.write(new TextEncoder().encode(text));
    return await readReplies(conn, lines);
  } finally {
    conn.close();
  }
}

/** Reads the next `lines` reply lines of a connection (or as many as come before it closes). */
export async function readReplies(
  conn: Deno.Conn,
  lines: number,
): Promise<Array<Record<string, unknown>>> {
  const buffer = new Uint8Array(1 << 16);
  let received = "";
  while (received.split("\n").length <= lines) {
    const n = await conn.read(buffer);
    if (n === null) break;
    received += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return received.trim().split("\n").slice(0, lines).map((line) => JSON.parse(line));
}
