/**
 * Retention of the forensic log (DESIGN.md §3 `prune`): plan which rotated files go, and prune
 * them so that what remains still verifies and the pruning is itself evidence.
 *
 * @module
 */
export {
  planPrune,
  type PruneCandidate,
  type PrunePlan,
  type PrunePolicy,
  type PruneRule,
  rotatedAt,
} from "./plan_prune.ts";
export {
  pruneLog,
  type PruneLogOptions,
  type PruneReport,
  type PruneStep,
  type PruneVerification,
} from "./prune_log.ts";
