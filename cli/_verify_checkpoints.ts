/**
 * The checkpoint side of `kvh verify`: `--checkpoint FILE` (once or twice) with `--public-key
 * FILE` checks the log against signed checkpoints; `--prove SEQ` prints an inclusion proof as one
 * JSON object; `--check-proof FILE` checks one with the checkpoint and key alone. Reads the
 * files, calls lib/transparency, prints; exit 0 ok, 2 failed, 1 usage or I/O.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { describeIoError, KvhError } from "../lib/errors.ts";
import type { VerifyLogOptions } from "../lib/forensic/mod.ts";
import {
  checkInclusionProof,
  type CheckpointInput,
  type LogAndCheckpointsReport,
  parseVerifierKey,
  proveInclusion,
  verifyLogAndCheckpoints,
} from "../lib/transparency/mod.ts";
import { guardOutputs, numberOption, revokePermissionsExcept, writeOutput } from "./_common.ts";

/** The parsed checkpoint flags of `verify`. */
export interface VerifyCheckpointFlags {
  checkpoint?: string[];
  publicKey?: string;
  prove?: number;
  checkProof?: string;
}

/** Adds the checkpoint flags to `verify`. */
// deno-lint-ignore no-explicit-any -- commander's typed Command carries per-command generics; the flags are read back through VerifyCheckpointFlags.
export function addVerifyCheckpointOptions<C extends Command<any, any, any>>(command: C): C {
  command
    .option(
      "--checkpoint <file>",
      "check the log against this signed checkpoint; twice: also their consistency",
      (file: string, files: string[] = []) => [...files, file],
    )
    .option("--public-key <file>", "verifier key of the checkpoints (NAME.pub from kvh keygen)")
    .option(
      "--prove <seq>",
      "print the inclusion proof of record SEQ in the checkpoint's tree as one JSON object",
      numberOption("--prove", { integer: true, min: 0 }),
    )
    .option(
      "--check-proof <file>",
      "check an inclusion proof (from --prove) with --checkpoint and --public-key alone",
    );
  return command;
}

/** Whether `verify` was asked for a checkpoint check rather than the chain check alone. */
export function wantsCheckpoints(flags: VerifyCheckpointFlags): boolean {
  return flags.checkpoint !== undefined || flags.publicKey !== undefined ||
    flags.prove !== undefined || flags.checkProof !== undefined;
}

/** What the checkpoint run needs from `verify`'s own flags. */
export interface CheckpointRun {
  /** Resolves LOG (throws when it is missing); not called for `--check-proof`. */
  logPath: () => string;
  /** Options of the chain check. */
  verify: VerifyLogOptions;
  json: boolean;
  out: string | undefined;
}

/** Runs `verify` with checkpoint flags; returns the exit code. */
export async function runCheckpointVerify(
  flags: VerifyCheckpointFlags,
  run: CheckpointRun,
): Promise<number> {
  const files = flags.checkpoint ?? [];
  if (flags.publicKey === undefined || files.length === 0 || files.length > 2) {
    throw new KvhError(
      "flag_invalid",
      "Invalid arguments: checkpoint checks need --public-key and one or two --checkpoint",
    );
  }
  if ((flags.prove !== undefined || flags.checkProof !== undefined) && files.length !== 1) {
    throw new KvhError(
      "flag_invalid",
      "Invalid arguments: --prove and --check-proof take exactly one --checkpoint",
    );
  }
  const path = flags.checkProof === undefined ? run.logPath() : undefined;
  await guardOutputs(path, { "--out": run.out });
  await revokePermissionsExcept(run.out === undefined ? ["read"] : ["read", "write"]);
  const verifier = parseVerifierKey(await readInput(flags.publicKey, "--public-key"));
  const inputs: CheckpointInput[] = [];
  for (const file of files) {
    inputs.push({ name: file, note: await readInput(file, "--checkpoint") });
  }
  if (flags.checkProof !== undefined) {
    let proof: unknown;
    try {
      proof = JSON.parse(await readInput(flags.checkProof, "--check-proof"));
    } catch (error) {
      if (error instanceof KvhError) throw error;
      throw new KvhError(
        "proof_malformed",
        `Cannot read --check-proof ${flags.checkProof}: not JSON`,
      );
    }
    const problem = checkInclusionProof(proof, inputs[0]!, verifier);
    const document = { proof: flags.checkProof, ok: problem === null, failure: problem };
    console.log(
      run.json
        ? JSON.stringify(document)
        : problem === null
        ? `OK ${flags.checkProof}: the record is in the tree of ${files[0]}`
        : `FAILED ${flags.checkProof}: ${problem}`,
    );
    return problem === null ? 0 : 2;
  }
  if (flags.prove !== undefined) {
    const proof = await proveInclusion(path!, flags.prove, inputs[0]!, verifier);
    console.log(JSON.stringify(proof));
    return 0;
  }
  const report = await verifyLogAndCheckpoints(path!, inputs, verifier, run.verify);
  const document = { log: path, ...report };
  if (run.out !== undefined) {
    await writeOutput("--out", run.out, JSON.stringify(document, null, 2) + "\n");
  }
  for (const warning of report.chain?.warnings ?? []) console.error(`kvh: warning: ${warning}`);
  console.log(run.json ? JSON.stringify(document) : summary(path!, report));
  return report.ok ? 0 : 2;
}

function summary(path: string, report: LogAndCheckpointsReport): string {
  const chain = report.chain;
  if (chain !== null && chain.failure !== null) {
    const { file, line, reason, detail } = chain.failure;
    return `FAILED ${path}: ${reason} in ${file} line ${line}: ${detail}`;
  }
  const checkpoint = report.checkpoint!;
  if (checkpoint.failure !== null) {
    const { reason, detail, checkpoint: name } = checkpoint.failure;
    return `FAILED ${path}: ${reason} against ${name}: ${detail}`;
  }
  const sizes = checkpoint.checkpoints.map((c) => `${c.name} (size ${c.size})`).join(" and ");
  const consistent = checkpoint.consistency_proof === null ? "" : ", consistent with each other";
  return `OK ${path}: ${checkpoint.log_size} records, matches ${sizes}${consistent}`;
}

/** Reads a small input file: refuses a symlink (DESIGN.md §8) and anything but a regular file. */
async function readInput(path: string, flag: string): Promise<string> {
  try {
    const info = await Deno.lstat(path);
    if (info.isSymlink) {
      throw new KvhError("input_symlink", `Refusing ${flag} ${path}: it is a symlink`);
    }
    if (!info.isFile) {
      throw new KvhError("input_not_file", `Cannot read ${flag} ${path}: not a regular file`);
    }
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof KvhError) throw error;
    throw new KvhError(
      "input_unreadable",
      `Cannot read ${flag} ${path}: ${describeIoError(error)}`,
      {
        cause: error,
      },
    );
  }
}
