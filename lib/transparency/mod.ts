/**
 * Transparency-log building blocks for the forensic log: RFC 6962 Merkle trees, compact ranges,
 * inclusion and consistency proofs (RFC 9162 §2.1).
 *
 * @module
 */
export {
  CompactRange,
  EMPTY_ROOT,
  hashChildren,
  hashLeaf,
  LEAF_PREFIX,
  NODE_PREFIX,
} from "./merkle.ts";
export { MemoryTree } from "./memory_tree.ts";
export {
  consistencyProof,
  inclusionProof,
  type SubtreeSource,
  verifyConsistency,
  verifyInclusion,
} from "./proof.ts";
export {
  type Checkpoint,
  formatCheckpoint,
  logOrigin,
  openCheckpoint,
  ORIGIN_PREFIX,
  parseCheckpoint,
  signCheckpoint,
} from "./checkpoint.ts";
export {
  generateNoteKey,
  NoteError,
  type NoteFailure,
  type NoteSigner,
  type NoteVerifier,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from "./note.ts";
export { type KeyPairFiles, writeKeyPair } from "./write_key_pair.ts";
export { checkpointer, type CheckpointerOptions } from "./checkpointer.ts";
export {
  canonicalBody,
  type LogIdConflict,
  type LogTree,
  readLogTree,
  type ReadLogTreeOptions,
  recordLeafHash,
} from "./log_tree.ts";
export {
  checkInclusionProof,
  type CheckpointFailure,
  type CheckpointInput,
  type CheckpointReason,
  type CheckpointReport,
  type InclusionProofDocument,
  type LogAndCheckpointsReport,
  proveInclusion,
  verifyCheckpoints,
  verifyLogAndCheckpoints,
} from "./verify_checkpoints.ts";
