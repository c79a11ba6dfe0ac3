/** Runs `kvh trace --listen` as a child process, the way an operator starts the sidecar. */
import { join } from "node:path";
import { ROOT } from "../cli/_kvh.ts";

/** A running sidecar process. */
export interface ListenProcess {
  dir: string;
  socket: string;
  poolDir: string;
  logDir: string;
  child: Deno.ChildProcess;
  /** Sends SIGTERM and returns the exit code and stderr. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stderr: string }>;
}

/**
 * Starts the daemon and resolves once it says it listens: with `-A` unless `permissions` are
 * given, pools in a new directory unless `poolDir` is given.
 */
export async function startListen(
  extra: string[] = [],
  options: { permissions?: string[]; poolDir?: string } = {},
): Promise<ListenProcess> {
  const dir = await Deno.makeTempDir({ prefix: "kvh-listen-" });
  const poolDir = options.poolDir ?? join(dir, "pools");
  const logDir = join(dir, "logs");
  if (options.poolDir === undefined) await Deno.mkdir(poolDir);
  const socket = join(dir, "run", "kvh.sock");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(options.permissions ?? ["-A"]),
      `${ROOT}cli/main.ts`,
      "trace",
      "--listen",
      `unix:${socket}`,
      "--pool-dir",
      poolDir,
      "--log-dir",
      logDir,
      ...extra,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  while (!stderr.includes("listening on")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`kvh trace --listen exited early: ${stderr}`);
    stderr += value;
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return stderr;
      stderr += value;
    }
  })();
  return {
    dir,
    socket,
    poolDir,
    logDir,
    child,
    async stop(signal = "SIGTERM") {
      child.kill(signal);
      const status = await child.status;
      await child.stdout.cancel();
      return { code: status.code, stderr: await rest };
    },
  };
}

/** Runs a Python script with arguments; returns its exit code and output. */
export async function python(
  script: string,
  args: string[],
): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command("python3", {
    args: [join(ROOT, script), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}
