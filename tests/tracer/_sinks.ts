import type { AppendOptions, AuditSink, RecordV2 } from "../../lib/forensic/types.ts";

/** An in-memory audit sink that records every event; `failAfter` makes later appends reject. */
export class MemorySink implements AuditSink {
  events: Array<{ event: string; fields: Record<string, unknown>; critical: boolean }> = [];
  failing = false;

  append(
    event: string,
    fields: Record<string, unknown>,
    options: AppendOptions = {},
  ): Promise<RecordV2> {
    if (this.failing) return Promise.reject(new Error("No space left on device (os error 28)"));
    this.events.push({ event, fields, critical: options.critical ?? false });
    return Promise.resolve({
      v: 2,
      seq: this.events.length - 1,
      ts: new Date(0).toISOString(),
      event,
      prev: "0".repeat(64),
      hash: "0".repeat(64),
      ...fields,
    });
  }

  names(): string[] {
    return this.events.map((e) => e.event);
  }
}
