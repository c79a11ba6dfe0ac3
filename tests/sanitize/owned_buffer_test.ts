import assert from "node:assert/strict";
import { assertSameSize, OwnedBuffer, ownedBuffer } from "../../lib/sanitize/_owned_buffer.ts";

class TestBuffer extends OwnedBuffer {
  readonly device = "cpu" as const;
}

const owner = {};
const expected = { kind: TestBuffer, owner, backend: "Test" };

Deno.test("ownedBuffer() accepts the owner's live buffer and refuses another's or a freed one", () => {
  const buffer = new TestBuffer(owner, 8);
  assert.equal(ownedBuffer(buffer, expected), buffer);
  assert.throws(
    () => ownedBuffer(new TestBuffer({}, 8), expected),
    new TypeError("Invalid buffer: it was not allocated by this Test sanitizer"),
  );
  assert.throws(
    () => ownedBuffer({ device: "cpu", byteLength: 8 }, expected),
    /not allocated by this Test sanitizer/,
  );
  buffer.freed = true;
  assert.throws(() => ownedBuffer(buffer, expected), /already freed/);
});

Deno.test("assertSameSize() refuses a copy between buffers of different sizes", () => {
  assertSameSize(new TestBuffer(owner, 8), new TestBuffer(owner, 8));
  assert.throws(
    () => assertSameSize(new TestBuffer(owner, 8), new TestBuffer(owner, 9)),
    new RangeError("Cannot copy: sizes differ (8 and 9 bytes)"),
  );
});
