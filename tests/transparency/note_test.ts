import assert from "node:assert/strict";
import {
  generateNoteKey,
  NoteError,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from "../../lib/transparency/note.ts";
import {
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from "../../lib/transparency/checkpoint.ts";
import { EMPTY_ROOT, hashLeaf } from "../../lib/transparency/merkle.ts";

const vector = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/transparency/signed_note.json", import.meta.url)),
);

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof NoteError) return error.reason;
    throw error;
  }
  return "opened";
}

Deno.test("openNote() verifies the published C2SP example note and its key ID", () => {
  const verifier = parseVerifierKey(vector.verifier_key);
  assert.equal(verifier.keyId, "530d903a");
  assert.equal(openNote(vector.note, verifier), vector.text);
});

Deno.test("openNote() rejects the example note once one byte of text or signature changes", () => {
  const verifier = parseVerifierKey(vector.verifier_key);
  assert.equal(
    reason(() => openNote(vector.note.replace("example", "exbmple"), verifier)),
    "bad_signature",
  );
  const sig = vector.note.replace("Uw2Q", "Uw2R");
  assert.equal(reason(() => openNote(sig, verifier)), "bad_signature");
});

Deno.test("parseVerifierKey() refuses a key whose ID does not match, or another algorithm", () => {
  assert.throws(
    () => parseVerifierKey(vector.verifier_key.replace("530d903a", "530d903b")),
    /key ID/,
  );
  assert.throws(
    () => parseVerifierKey("example.com/foo+530d903a+AgkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
    /Ed25519/,
  );
  assert.throws(() => parseVerifierKey("a+b"), /expected/);
});

Deno.test("generateNoteKey() encodes keys as PRIVATE+KEY+name+id+key and name+id+key", () => {
  const { signerKey, verifierKey } = generateNoteKey("node-1");
  assert.match(signerKey, /^PRIVATE\+KEY\+node-1\+[0-9a-f]{8}\+A[Q-Za-f][A-Za-z0-9+/]{42}$/);
  assert.match(verifierKey, /^node-1\+[0-9a-f]{8}\+A[Q-Za-f][A-Za-z0-9+/]{42}$/);
  const signer = parseSignerKey(signerKey + "\n");
  assert.equal(signer.verifierKey, verifierKey);
  assert.equal(parseVerifierKey(verifierKey).keyId, signer.keyId);
  assert.throws(() => generateNoteKey("has space"), TypeError);
  assert.throws(() => generateNoteKey("a+b"), TypeError);
});

Deno.test("parseSignerKey() refuses a tampered key ID without echoing the key", () => {
  const { signerKey } = generateNoteKey("node-1");
  const parts = signerKey.split("+");
  parts[3] = parts[3] === "00000000" ? "00000001" : "00000000";
  assert.throws(() => parseSignerKey(parts.join("+")), (error: Error) => {
    assert.ok(!error.message.includes(parts[4]!));
    return /key ID/.test(error.message);
  });
  assert.throws(() => parseSignerKey("PRIVATE+KEY+x"), /expected/);
});

Deno.test("openNote() ignores signatures of other keys but needs one by the given key", () => {
  const a = generateNoteKey("node-a");
  const b = generateNoteKey("node-b");
  const note = signNote("text\n", parseSignerKey(a.signerKey));
  const both = note + signNote("text\n", parseSignerKey(b.signerKey)).split("\n\n")[1];
  assert.equal(openNote(both, parseVerifierKey(b.verifierKey)), "text\n");
  assert.equal(reason(() => openNote(note, parseVerifierKey(b.verifierKey))), "bad_signature");
  // Same name, another key: the key ID tells them apart.
  const other = generateNoteKey("node-a");
  assert.equal(reason(() => openNote(note, parseVerifierKey(other.verifierKey))), "bad_signature");
});

Deno.test("openNote() reports malformed notes", () => {
  const verifier = parseVerifierKey(vector.verifier_key);
  for (
    const note of ["", "text\n", "text\n\n", "text\n\nnot a signature\n", "text\n\n\u2014 a AAAA\n"]
  ) {
    assert.equal(reason(() => openNote(note, verifier)), "malformed", JSON.stringify(note));
  }
  assert.throws(
    () => signNote("no newline", parseSignerKey(generateNoteKey("x").signerKey)),
    TypeError,
  );
});

Deno.test("signCheckpoint() and openCheckpoint() round-trip origin, size and root", () => {
  const keys = generateNoteKey("node-1");
  const root = hashLeaf("x");
  const note = signCheckpoint(
    { origin: "kvh/0123", size: 42, root },
    parseSignerKey(keys.signerKey),
  );
  assert.match(note, /^kvh\/0123\n42\n[A-Za-z0-9+/]{43}=\n\n\u2014 node-1 /);
  const checkpoint = openCheckpoint(note, parseVerifierKey(keys.verifierKey));
  assert.deepEqual(checkpoint, { origin: "kvh/0123", size: 42, root });
});

Deno.test("parseCheckpoint() accepts extension lines and refuses anything else off the spec", () => {
  const text = formatCheckpoint({ origin: "kvh/a", size: 7, root: EMPTY_ROOT });
  assert.equal(parseCheckpoint(text + "extension\n").size, 7);
  const root = text.split("\n")[2]!;
  for (
    const bad of [
      "kvh/a\n07\n" + root + "\n",
      "kvh/a\n-1\n" + root + "\n",
      "kvh/a\n7\n",
      "\n7\n" + root + "\n",
      "kvh/a\n7\nAAAA\n",
      "kvh/a\n7\n" + root,
    ]
  ) {
    assert.equal(reason(() => parseCheckpoint(bad)), "malformed", JSON.stringify(bad));
  }
});
