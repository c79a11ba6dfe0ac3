/**
 * Durable files: atomic replacement, exclusive creation and directory sync, shared by every kvh
 * area that writes a file, and the guard that keeps outputs off the forensic log.
 *
 * @module
 */
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
