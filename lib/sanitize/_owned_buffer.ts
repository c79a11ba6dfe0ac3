/**
 * What the GPU backends' buffers share: each belongs to the sanitizer that allocated it and is
 * unusable once freed, and every call taking a buffer checks both the same way.
 *
 * @module
 */
import type { DeviceBuffer, DeviceKind } from "./types.ts";

/** A backend's buffer: the sanitizer that allocated it, and whether it was freed. */
export abstract class OwnedBuffer implements DeviceBuffer {
  /** Backend that owns the buffer. */
  abstract readonly device: DeviceKind;
  /** Set once the buffer's memory is released: any later use is refused. */
  freed = false;
  /**
   * @param owner The sanitizer that allocated it.
   * @param byteLength Size in bytes.
   */
  constructor(readonly owner: object, readonly byteLength: number) {}
}

/** Whose buffer a call expects. */
export interface BufferOwnership<T extends OwnedBuffer> {
  /** The backend's buffer class (its constructor's arguments differ per backend: unused). */
  kind: abstract new (...args: never[]) => T;
  /** The sanitizer asked to use the buffer. */
  owner: object;
  /** The backend's name, for the message, e.g. `CUDA`. */
  backend: string;
}

/**
 * The buffer as the backend's own class, checked to come from `expected.owner` and not yet
 * freed.
 *
 * @param buffer What the caller passed.
 * @param expected The backend's class, the sanitizer and its name.
 * @returns The buffer, typed as the backend's.
 * @throws {TypeError} When another sanitizer allocated it or it was freed.
 */
export function ownedBuffer<T extends OwnedBuffer>(
  buffer: DeviceBuffer,
  expected: BufferOwnership<T>,
): T {
  if (!(buffer instanceof expected.kind) || buffer.owner !== expected.owner) {
    throw new TypeError(
      `Invalid buffer: it was not allocated by this ${expected.backend} sanitizer`,
    );
  }
  if (buffer.freed) throw new TypeError("Invalid buffer: it was already freed");
  return buffer;
}

/**
 * Refuses a copy between buffers of different sizes.
 *
 * @param from The source.
 * @param to The destination.
 * @throws {RangeError} When their sizes differ.
 */
export function assertSameSize(from: DeviceBuffer, to: DeviceBuffer): void {
  if (from.byteLength !== to.byteLength) {
    throw new RangeError(
      `Cannot copy: sizes differ (${from.byteLength} and ${to.byteLength} bytes)`,
    );
  }
}
