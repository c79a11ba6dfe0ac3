import fc from "fast-check";
import { CacheTracer } from "../../lib/tracer/mod.ts";
import { CpuSanitizer } from "../../lib/sanitize/cpu.ts";
import type { AuditSink } from "../../lib/forensic/types.ts";

/** One request of a random interleaving: who, how large, how it is scrubbed, what goes wrong. */
export interface Step {
  tenant: number;
  size: number;
  verify: "full" | "sample" | "none";
  /** Skip the scrub before the free (must quarantine). */
  skipScrub: boolean;
  /** An engine bug: the tenant writes again after the free (the hand-off must catch it). */
  strayAfterFree: boolean;
}

/** Totals over every run, so the test can check the harness exercised the dangerous paths. */
export const totals = { violations: 0, strays: 0, leaks: 0, handOffs: 0 };

/** fast-check arbitrary of interleavings over `tenants` tenants. */
export function stepsArbitrary(tenants: number): fc.Arbitrary<Step[]> {
  return fc.array(
    fc.record({
      tenant: fc.nat(tenants - 1),
      size: fc.constantFrom(0, 64, 4096),
      verify: fc.constantFrom("full" as const, "full" as const, "sample" as const, "none" as const),
      skipScrub: fc.constantFrom(false, false, false, false, false, true),
      strayAfterFree: fc.boolean(),
    }),
    { maxLength: 40 },
  );
}

/**
 * Runs the steps in four concurrent lanes against one tracer and a shared pool: each step takes
 * a pooled buffer of its size (handed on through the tracer) or a new one, checks it holds no
 * other tenant's byte, writes its own, scrubs, frees it back. Returns the violations.
 */
export async function runInterleaving(steps: Step[], audit: AuditSink): Promise<number> {
  const sanitizer = new CpuSanitizer();
  const tracer = new CacheTracer({ sanitizer, audit, defaultMaxReuse: -1, verifySamples: 8 });
  const pool = new Map<number, string[]>();
  let violations = 0;
  const runStep = async (step: Step, i: number) => {
    const owner = { tenantId: `t${step.tenant}`, requestId: `r${i}`, modelId: "m" };
    try {
      const pooled = pool.get(step.size)?.pop();
      let handle: string | undefined;
      if (pooled !== undefined) {
        handle = await tracer.reuse(pooled, owner).catch(() => undefined);
        if (handle !== undefined) totals.handOffs++;
      }
      handle ??= await tracer.allocate({ ...owner, shape: [step.size], dtype: "uint8" });
      await tracer.markInUse(handle);
      const buffer = tracer.buffer(handle);
      const bytes = sanitizer.bytes(buffer);
      if (bytes.some((b) => b !== 0 && b !== step.tenant + 1)) violations++;
      bytes.fill(step.tenant + 1);
      if (!step.skipScrub) await tracer.sanitize(handle, { verify: step.verify });
      await tracer.free(handle);
      if (step.strayAfterFree && bytes.length > 0) {
        bytes.fill(step.tenant + 1);
        totals.strays++;
      }
      pool.set(step.size, [...(pool.get(step.size) ?? []), handle]);
    } catch (error) {
      if (!(error instanceof Error) || !("code" in error)) throw error;
    }
  };
  await Promise.all([0, 1, 2, 3].map(async (lane) => {
    for (let i = lane; i < steps.length; i += 4) await runStep(steps[i]!, i);
  }));
  totals.leaks += tracer.metrics().leaks_detected_total;
  totals.violations += violations;
  await tracer.close();
  return violations;
}

/** An audit sink that keeps nothing: the property is about bytes, not the log. */
export const NULL_SINK: AuditSink = {
  append: (event, fields) =>
    Promise.resolve({ v: 2, seq: 0, ts: "", event, prev: "", hash: "", ...fields }),
};
