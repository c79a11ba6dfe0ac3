/**
 * The fast parser of `kvh gate` (lib/gate/flags.ts) and the commander tree (cli/gate.ts) read
 * the same flag table; this differential test checks that whatever command line the fast parser
 * accepts, commander accepts too, with the same metrics file and the same flag values. What the
 * fast parser declines goes to commander anyway, so declining is always safe.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { GATE_FLAGS, parseGateArgs, type RawFlags } from "../../lib/gate/flags.ts";
import { gateCommandTree } from "../../cli/gate.ts";

type Parsed = { file?: string; raw: RawFlags } | undefined;

async function commanderParse(args: string[]): Promise<Parsed> {
  let parsed: Parsed;
  const command = await gateCommandTree((file, raw) => {
    parsed = { file, raw };
    return Promise.resolve();
  });
  command.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  try {
    await command.parseAsync(args, { from: "user" });
  } catch {
    return undefined;
  }
  return parsed;
}

const value = fc.oneof(
  fc.constantFrom("99.9", "0", "150", "0x10", "-1", "1e3", "", "--json", "-", "a=b", "x y"),
  fc.string({ maxLength: 6 }),
);
const token = fc.oneof(
  fc.constantFrom(...GATE_FLAGS.map((spec) => spec.long)).chain((long) =>
    fc.oneof(
      fc.constant([long]),
      value.map((v) => [long, v]),
      value.map((v) => [`${long}=${v}`]),
    )
  ),
  fc.constantFrom(["m.json"], ["other.json"], ["-"], ["--"], ["-h"], ["--nope"], ["--json=1"]),
);

Deno.test("parseGateArgs() accepts only what commander accepts, with the same values", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(token, { maxLength: 6 }), async (tokens) => {
      const args = tokens.flat();
      const fast = parseGateArgs(args);
      if (fast === undefined) return;
      const slow = await commanderParse(args);
      assert.ok(slow !== undefined, `commander refused ${JSON.stringify(args)}`);
      assert.equal(slow.file, fast.file, JSON.stringify(args));
      assert.deepEqual(new Map(slow.raw), new Map(fast.raw), JSON.stringify(args));
    }),
    { seed: 1009, numRuns: 400 },
  );
});

Deno.test("parseGateArgs() handles the plain command lines a CI step writes", () => {
  const parsed = parseGateArgs([
    "coverage.json",
    "--coverage-min",
    "99.9",
    "--quarantine-max=0",
    "--json",
  ]);
  assert.deepEqual(parsed, {
    file: "coverage.json",
    raw: new Map<string, string | true>([
      ["--coverage-min", "99.9"],
      ["--quarantine-max", "0"],
      ["--json", true],
    ]),
  });
  for (const args of [["--help"], ["-h"], ["a", "b"], ["--coverage-min"], ["--json=1"]]) {
    assert.equal(parseGateArgs(args), undefined, args.join(" "));
  }
});
