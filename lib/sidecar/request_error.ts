/**
 * The error a request handler throws to answer `ok:false`.
 *
 * @module
 */
import type { SidecarError, SidecarErrorCode, SidecarQuarantineReason } from "./types.ts";

/** A request refused with a protocol error code (docs/protocol.md). */
export class SidecarRequestError extends Error {
  /** Machine-readable code. */
  readonly code: SidecarErrorCode;
  /** With `quarantined`: why. */
  readonly reason?: SidecarQuarantineReason;
  /** With `quarantined`: the blocks. */
  readonly blocks?: number[];

  /**
   * Creates the error.
   *
   * @param code Protocol error code.
   * @param message One sentence for the engine's operator.
   * @param quarantine Reason and blocks of a `quarantined` error.
   */
  constructor(
    code: SidecarErrorCode,
    message: string,
    quarantine?: { reason: SidecarQuarantineReason; blocks: number[] },
  ) {
    super(message);
    this.name = "SidecarRequestError";
    this.code = code;
    this.reason = quarantine?.reason;
    this.blocks = quarantine?.blocks;
  }

  /** The reply's `error` member. */
  toWire(): SidecarError {
    const wire: SidecarError = { code: this.code, message: this.message };
    if (this.reason !== undefined) wire.reason = this.reason;
    if (this.blocks !== undefined) wire.blocks = this.blocks;
    return wire;
  }
}
