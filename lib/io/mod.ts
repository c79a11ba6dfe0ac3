/**
 * Durable files: atomic replacement, exclusive creation and directory sync, shared by every kvh
 * area that writes a file.
 *
 * @module
 */
export {
  syncDir,
  tempSibling,
  writeAll,
  writeFileAtomic,
  type WriteFileOptions,
  writeNewFile,
} from "./durable_files.ts";
