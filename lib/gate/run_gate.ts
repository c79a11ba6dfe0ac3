/**
 * One gate run, from resolved configuration to a verdict document and its outputs: load the
 * metrics (a file or the fleet), evaluate the thresholds, verify the log, build the verdict and
 * write `--out` and `--evidence` so that both appear or neither (issue 9 item 2). `cli/gate.ts`
 * only parses flags, calls {@linkcode runGate} and prints.
 *
 * Heavy modules (the verifier, the fleet client, the evidence writer) load only when used, so a
 * plain gate run stays fast to start.
 *
 * @module
 */
import { describeIoError, KvhError } from "../errors.ts";
import type { VerifyReport } from "../forensic/types.ts";
import { evaluateGate } from "./evaluate_gate.ts";
import { readGateMetrics } from "./read_metrics.ts";
import type { GateMetrics, GateThresholds } from "./types.ts";
import {
  addLogCheck,
  type LogCheckReport,
  type VerdictDocument,
  verdictDocument,
} from "./verdict_document.ts";

/** Metrics as an input delivers them: values, the object to echo, the raw bytes for evidence. */
export interface LoadedGateMetrics {
  /** The values the gate reads. */
  metrics: GateMetrics;
  /** The object echoed in the verdict. */
  document: Record<string, unknown>;
  /** The file's bytes, when the input is a file (kept byte for byte in the evidence). */
  bytes?: Uint8Array<ArrayBuffer>;
}

/** Where the gate's metrics come from. */
export interface GateInput {
  /** The path or URL, recorded in the verdict. */
  label: string;
  /** Permissions loading needs beyond reading and writing files (`net` for the fleet). */
  permissions: readonly Deno.PermissionName[];
  /** Loads and validates the metrics. */
  load(): Promise<LoadedGateMetrics>;
}

/**
 * A metrics file as the gate's input.
 *
 * @param path The metrics JSON.
 * @returns The input.
 */
export function fileInput(path: string): GateInput {
  return { label: path, permissions: [], load: () => readGateMetrics(path) };
}

/**
 * The fleet through a Prometheus HTTP API as the gate's input (DESIGN.md §7).
 *
 * @param url The Prometheus base URL.
 * @param selector The series selector, or the default.
 * @returns The input.
 */
export function fleetInput(url: string, selector: string | undefined): GateInput {
  return {
    label: url,
    permissions: ["net"],
    load: async () => {
      const { queryFleetMetrics } = await import("./prometheus_source.ts");
      const metrics = await queryFleetMetrics(url, selector === undefined ? {} : { selector });
      return { metrics, document: { prometheus: url, selector: selector ?? null, ...metrics } };
    },
  };
}

/** Options of {@linkcode runGate}. */
export interface RunGateOptions {
  /** The thresholds to apply. */
  thresholds: GateThresholds;
  /** A forensic log that must verify. */
  requireVerified?: string;
  /** The log's HMAC key. */
  hmacKey?: Uint8Array;
  /** Further initial keys of a rekeyed forward-secure log (`--keyring`). */
  macKeyring?: Uint8Array[];
  /**
   * Accept a log whose MACs cannot be checked for want of a key.
   *
   * @default {false}
   */
  chainOnly?: boolean;
  /** Write the verdict JSON here. */
  out?: string;
  /** Write an evidence bundle to this new directory. */
  evidence?: string;
  /** A test report to add to the bundle. */
  testReport?: string;
}

/** The verification the verdict records. */
type Verification = LogCheckReport & { log: string };

async function verify(
  log: string,
  hmacKey: Uint8Array | undefined,
  macKeyring: Uint8Array[] | undefined,
): Promise<Verification> {
  const { verifyLog } = await import("../forensic/verify.ts");
  const report = await verifyLog(log, { hmacKey, macKeyring });
  const { ok, files, records, head, mac_checked, mac_present, failure } = report;
  return { log, ok, files, records, head, mac_checked, mac_present, failure };
}

/**
 * Runs the gate: loads the metrics, applies the thresholds, verifies the log, and writes the
 * outputs asked for. With both `out` and `evidence`, both are written in full beside their
 * targets first and then renamed into place, so a run that fails leaves neither half-written
 * nor one without the other.
 *
 * @param input Where the metrics come from.
 * @param options Thresholds, log verification and outputs.
 * @returns The verdict document (its `pass` decides the exit code: 0 or 2).
 * @throws {KvhError} Exit 1 for unreadable or malformed input, a missing metric, an unreadable
 * test report or an output that cannot be written.
 *
 * @example Usage
 * ```ts
 * import { fileInput, runGate } from "./run_gate.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/m.json`,
 *   '{"min_coverage_pct": 100, "unsanitized_regions_count": 0, "quarantine_count": 0}',
 * );
 * const document = await runGate(fileInput(`${dir}/m.json`), {
 *   thresholds: { coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 0 },
 * });
 * assert.equal(document.pass, true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runGate(input: GateInput, options: RunGateOptions): Promise<VerdictDocument> {
  const loaded = await input.load();
  let verdict = evaluateGate(loaded.metrics, options.thresholds);
  let verification: Verification | undefined;
  if (options.requireVerified !== undefined) {
    verification = await verify(options.requireVerified, options.hmacKey, options.macKeyring);
    verdict = addLogCheck(verdict, verification, options.requireVerified, {
      chainOnly: options.chainOnly,
    });
  }
  const document = verdictDocument(verdict, {
    metrics: loaded.document,
    input: input.label,
    verification,
  });
  await writeOutputs(options, loaded, JSON.stringify(document, null, 2) + "\n", verification);
  return document;
}

interface Staged {
  commit(): Promise<void>;
  abort(): Promise<void>;
}

async function writeOutputs(
  options: RunGateOptions,
  loaded: LoadedGateMetrics,
  json: string,
  verification: VerifyReport | undefined,
): Promise<void> {
  const staged: Staged[] = [];
  try {
    if (options.evidence !== undefined) {
      staged.push(await stageEvidence(options.evidence, loaded, json, verification, options));
    }
    if (options.out !== undefined) staged.push(await stageOut(options.out, json));
  } catch (error) {
    await Promise.all(staged.map((stage) => stage.abort()));
    throw error;
  }
  // The bundle first: its rename is the step that can still be refused (a directory that
  // appeared meanwhile). If the verdict's rename then fails, the new bundle is taken back.
  for (let i = 0; i < staged.length; i++) {
    try {
      await staged[i]!.commit();
    } catch (error) {
      await Promise.all(staged.slice(i + 1).map((stage) => stage.abort()));
      if (i > 0 && options.evidence !== undefined) {
        await Deno.remove(options.evidence, { recursive: true }).catch(() => {});
      }
      throw error;
    }
  }
}

async function stageOut(path: string, json: string): Promise<Staged> {
  // Loaded on use: a gate run that writes nothing does not load node:path.
  const { stageFileAtomic } = await import("../io/mod.ts");
  const failed = (error: unknown) =>
    new KvhError("output_unwritable", `Cannot write --out ${path}: ${describeIoError(error)}`, {
      cause: error,
    });
  const staged = await stageFileAtomic(path, json).catch((error) => {
    throw failed(error);
  });
  return {
    commit: () =>
      staged.commit().catch((error) => {
        throw failed(error);
      }),
    abort: staged.abort,
  };
}

function extensionOf(path: string): string {
  return /\.[A-Za-z0-9]{1,10}$/.exec(path)?.[0] ?? "";
}

async function stageEvidence(
  dir: string,
  loaded: LoadedGateMetrics,
  verdictJson: string,
  verification: VerifyReport | undefined,
  options: RunGateOptions,
): Promise<Staged> {
  const { stageEvidenceBundle } = await import("./evidence.ts");
  const files: { name: string; data: Uint8Array<ArrayBuffer> | string }[] = [
    { name: "metrics.json", data: loaded.bytes ?? JSON.stringify(loaded.document, null, 2) + "\n" },
    { name: "verdict.json", data: verdictJson },
  ];
  if (verification !== undefined) {
    files.push({ name: "verification.json", data: JSON.stringify(verification, null, 2) + "\n" });
  }
  const report = options.testReport;
  if (report !== undefined) {
    let data: Uint8Array<ArrayBuffer>;
    try {
      data = await Deno.readFile(report);
    } catch (error) {
      throw new KvhError(
        "test_report_unreadable",
        `Cannot read --test-report ${report}: ${describeIoError(error)}`,
        { cause: error },
      );
    }
    files.push({ name: `test-report${extensionOf(report)}`, data });
  }
  return await stageEvidenceBundle(dir, files);
}
