/**
 * `kvh keygen NAME --out DIR`: creates an Ed25519 key pair for signing checkpoints,
 * `DIR/NAME.key` (signer key, 0600) and `DIR/NAME.pub` (verifier key). Prints the paths and the
 * public verifier key; the private key is never printed.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { writeKeyPair } from "../lib/transparency/mod.ts";
import { revokePermissionsExcept, runAction } from "./_common.ts";

/** Builds the `keygen` subcommand. */
export function keygenCommand() {
  return new Command("keygen")
    .description(
      "Create an Ed25519 key pair for signed checkpoints (C2SP signed-note encodings): " +
        "DIR/NAME.key (signer key, 0600, never overwritten) and DIR/NAME.pub (verifier key). " +
        "DIR is created 0700 when missing. Keep NAME.key on the host that writes the log and " +
        "give NAME.pub to whoever verifies it.\n\n" +
        "Exit codes: 0 written, 1 usage or I/O error (including an existing key file).",
    )
    .argument("<name>", "key name, also the files' base name")
    .requiredOption("--out <dir>", "directory for the key files")
    .action((name, options) =>
      runAction(async () => {
        await revokePermissionsExcept(["read", "write"]);
        const files = await writeKeyPair(options.out, name);
        console.log(`signer key: ${files.keyFile}`);
        console.log(`verifier key: ${files.pubFile}`);
        console.log(files.verifierKey);
        return 0;
      })
    );
}
