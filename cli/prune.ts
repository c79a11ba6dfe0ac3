/**
 * `kvh prune` (DESIGN.md §3): retention for the forensic log, kvh's (v2) and the Python tool's
 * (v1). Exit 0 when the log verified before and after, 2 when either verification failed
 * (nothing is pruned when the first one fails), 1 for usage and I/O errors.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { KvhError } from "../lib/errors.ts";
import {
  addMacStateOptions,
  macStateFileOf,
  type MacStateFlags,
  resolveMacKeys,
} from "./_mac_options.ts";
import {
  addCheckpointOptions,
  checkpointFileOf,
  type CheckpointFlags,
  resolveCheckpointer,
} from "./_checkpoint_options.ts";
import { DEFAULT_LOG_FILE } from "../lib/forensic/chain_files.ts";
import type { PruneReport, PruneVerification } from "../lib/retention/mod.ts";
import {
  guardOutputs,
  numberSetting,
  resolveHmacKey,
  revokePermissionsExcept,
  runAction,
  setting,
  textSetting,
  withEnv,
  writeOutput,
} from "./_common.ts";

/** kvh's own layout (`kvh trace` writes forensics/kv_cache.log); the Python tool used /var/forensics. */
const DEFAULT_LOG_DIR = "forensics";

const DAYS = numberSetting({ min: 0 });
const COUNT = numberSetting({ integer: true, min: 0 });

function describeVerification(label: string, verification: PruneVerification): string {
  if (verification.ok) {
    return `${label}: ok (${verification.files} files, ${verification.records} records` +
      (verification.head ? `, head seq ${verification.head.seq} ${verification.head.hash}` : "") +
      ")";
  }
  const failure = verification.failure;
  return `${label}: FAILED` +
    (failure ? ` ${failure.reason} at ${failure.file}:${failure.line}: ${failure.detail}` : "");
}

function renderReport(report: PruneReport): string {
  const lines = [describeVerification("verified before", report.before)];
  const verb = report.dry_run ? "would " : "";
  const action = report.action === "archive" ? `archive to ${report.archive_dir}` : "delete";
  for (const candidate of report.plan) {
    const done = report.dry_run || report.removed.includes(candidate.file);
    lines.push(
      `${
        done ? verb + action : "NOT DONE " + action
      }: ${candidate.file} (${candidate.records} records, ` +
        `rotated ${candidate.rotated_at ?? "unknown"}, rule ${candidate.rules.join("+")})`,
    );
  }
  for (const candidate of report.held) {
    lines.push(
      `keep: ${candidate.file} (an older rotated file is kept; removing it would leave a gap)`,
    );
  }
  if (report.before.ok && report.plan.length === 0) lines.push("nothing to prune");
  if (report.record) {
    lines.push(
      `prune record: ${
        report.record.seq === null ? "" : `seq ${report.record.seq} `
      }${report.record.hash}`,
    );
  }
  if (report.after) lines.push(describeVerification("verified after", report.after));
  return lines.join("\n");
}

/**
 * The `prune` subcommand.
 *
 * @returns The command.
 */
export function pruneCommand() {
  const command = new Command("prune")
    .description(
      "Remove or archive old rotated forensic log files without breaking verification: verify, " +
        "append a prune record naming each file, remove oldest first, verify again.\n" +
        "Replaces: python -m tools.verify_logs --log-dir D --log-file F --retention-days N " +
        "--max-rotated N --archive-dir A --out P (which pruned even after a failed verification).\n" +
        "Exit codes: 0 verified and pruned (or nothing to prune), 2 verification failed before " +
        "(nothing pruned) or after, 1 usage or I/O error (also: the log writer holds the lock).",
    )
    .option(
      "--log-dir <dir>",
      withEnv("log directory (the Python tool's was /var/forensics)", "LOG_DIR", DEFAULT_LOG_DIR),
    )
    .option("--log-file <name>", withEnv("active log file name", "LOG_FILE", DEFAULT_LOG_FILE))
    .option(
      "--retention-days <days>",
      withEnv("remove rotated files rotated more than this many days ago", "RETENTION_DAYS"),
      (text) => DAYS(text, "--retention-days"),
    )
    .option(
      "--max-rotated <n>",
      withEnv("keep at most this many rotated files, the newest; 0 removes all", "MAX_ROTATED"),
      (text) => COUNT(text, "--max-rotated"),
    )
    .option(
      "--archive-dir <dir>",
      withEnv(
        "move removed files here (0600, never overwriting) instead of deleting",
        "ARCHIVE_DIR",
      ),
    )
    .option(
      "--out <file>",
      withEnv("write the before/after report JSON here, 0600, atomically", "VERDICT_OUT"),
    )
    .option("--dry-run", "print the plan and change nothing")
    .option(
      "--hmac-key-file <file>",
      withEnv(
        "HMAC key file of the log (0600), required when it carries MACs",
        "FORENSIC_HMAC_SECRET",
      ),
    )
    .option("--json", "print the report as one JSON document");
  return addMacStateOptions(addCheckpointOptions(command)).action((parsed) =>
    runAction(async () => {
      // The checkpoint flags are added by a shared helper, outside commander's typed chain.
      const options = parsed as typeof parsed & CheckpointFlags & MacStateFlags;
      const dir = setting(options.logDir, "LOG_DIR", textSetting) ?? DEFAULT_LOG_DIR;
      const file = setting(options.logFile, "LOG_FILE", textSetting) ?? DEFAULT_LOG_FILE;
      if (file.includes("/") || file === "." || file === "..") {
        throw new KvhError(
          "flag_invalid",
          `Invalid --log-file ${JSON.stringify(file)}: expected a file name`,
        );
      }
      const retentionDays = setting(options.retentionDays, "RETENTION_DAYS", DAYS);
      const maxRotated = setting(options.maxRotated, "MAX_ROTATED", COUNT);
      const archiveDir = setting(options.archiveDir, "ARCHIVE_DIR", textSetting);
      const out = setting(options.out, "VERDICT_OUT", textSetting);
      await guardOutputs(`${dir}/${file}`, {
        "--out": out,
        "--checkpoint-file": checkpointFileOf(options),
        "--mac-state-file": macStateFileOf(options),
      });
      const hmacKey = await resolveHmacKey(options.hmacKeyFile);
      const observe = await resolveCheckpointer(options);
      // Prune never rekeys: the key is for checking; the state file, when given, MACs its record.
      const macKeys = await resolveMacKeys(options, undefined);
      await revokePermissionsExcept(["read", "write"]);
      const { pruneLog } = await import("../lib/retention/prune_log.ts");
      const report = await pruneLog({
        dir,
        file,
        retentionDays,
        maxRotated,
        archiveDir,
        hmacKey,
        macKeys,
        observe,
        dryRun: options.dryRun === true,
      });
      if (out !== undefined) {
        await writeOutput("--out", out, JSON.stringify(report, null, 2) + "\n");
      }
      console.log(options.json ? JSON.stringify(report) : renderReport(report));
      return report.ok ? 0 : 2;
    })
  );
}
