/**
 * Durable files: atomic replacement, exclusive creation and directory sync, shared by every kvh
 * area that writes a file, the guard that keeps outputs off the forensic log, and the joining of
 * byte pieces that line readers share.
 *
 * @module
 */
export { concatBytes } from "./concat_bytes.ts";
export {
  copyNewFile,
  type StagedFile,
  stageFileAtomic,
  syncDir,
  tempSibling,
  writeAll,
  writeFileAtomic,
  type WriteFileOptions,
  writeNewFile,
} from "./durable_files.ts";
export { type OutputTarget, refuseEvidenceOutputs, resolvePath } from "./output_guard.ts";
