/**
 * The forensic log (DESIGN.md §4): write it with {@linkcode openForensicLog}, verify it (and the
 * Python tool's format-v1 logs) with {@linkcode verifyLog}.
 *
 * @module
 */
export {
  ForensicLog,
  type ForensicLogOptions,
  type LogObserver,
  type MacKeyProvider,
  type ObservedLog,
  openForensicLog,
} from "./writer.ts";
export {
  type ChainFile,
  verifyLog,
  type VerifyLogOptions,
  type VerifyLogReport,
} from "./verify.ts";
export {
  EpochMacKeys,
  macKeyId,
  type MacStateOptions,
  nextEpochKey,
  openMacState,
  rekeyLog,
} from "./epoch_key.ts";
export { DEFAULT_LOG_FILE, listChainFiles, logLockPath } from "./chain_files.ts";
export {
  type AppendOptions,
  type AuditSink,
  type ChainHead,
  GENESIS_V2,
  type RecordV2,
  type VerifyFailure,
  type VerifyReason,
  type VerifyReport,
} from "./types.ts";
