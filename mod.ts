/**
 * kvh — KV-cache hygiene for multi-tenant LLM serving.
 *
 * The public library API: the forensic log (write and verify), the tracer and its sanitizers,
 * metrics, the gate, retention and the metrics server. Everything here is a named re-export of
 * an area's `lib/<area>/mod.ts`.
 *
 * @module
 */
export { EXIT_POLICY, EXIT_USAGE, KvhError, type KvhErrorOptions } from "./lib/errors.ts";
