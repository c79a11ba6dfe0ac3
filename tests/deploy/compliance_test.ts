/**
 * The compliance mappings name commands, flags, source files and evidence files; an auditor
 * follows them literally, so each must be real: commands parse with kvh's own command tree,
 * repository paths exist, and evidence files are ones kvh writes.
 */
import assert from "node:assert/strict";
import { ROOT } from "../cli/_kvh.ts";
import { knownFlags, parseKvhArgs } from "./_kvh_args.ts";

const DIR = `${ROOT}compliance/`;
const DOCS = [...Deno.readDirSync(DIR)].filter((entry) => entry.name.endsWith(".md"))
  .map((entry) => ({ name: entry.name, text: Deno.readTextFileSync(`${DIR}${entry.name}`) }));

/** Inline code spans of Markdown (fenced blocks' lines too), without the backticks. */
function codeSpans(text: string): string[] {
  const fenced = [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split("\n"));
  const inline = [...text.replace(/```[a-z]*\n[\s\S]*?```/g, "").matchAll(/`([^`\n]+)`/g)]
    .map((m) => m[1]!);
  return [...fenced, ...inline].map((span) => span.trim()).filter((span) => span !== "");
}

const REPOSITORY_PATH =
  /^(?:(?:cli|lib|ffi|deploy|docs|clients|compliance|tests|bench)\/[\w./-]*[\w/]|Dockerfile(?:\.cuda)?|CHANGELOG\.md|README\.md|deno\.json)$/;
const EVIDENCE_FILE = /\.(?:log|json|prom|sha256|pub|note)$/;

const spans = DOCS.flatMap((doc) => codeSpans(doc.text).map((span) => ({ doc: doc.name, span })));
const mentions = spans.filter(({ span }) => span.startsWith("kvh "))
  .map(({ doc, span }) => ({ doc, span, args: span.split(/\s+/).slice(1) }));
/** Whole command lines: those of a control's **Command:** line. */
const commands = DOCS.flatMap((doc) =>
  [...doc.text.matchAll(/\*\*Command:\*\* `(kvh [^`]+)`/g)].map((m) => ({
    doc: doc.name,
    span: m[1]!,
    args: m[1]!.split(/\s+/).slice(1),
  }))
);

Deno.test("compliance/controls.md maps every control the issue names", () => {
  const controls = DOCS.find((doc) => doc.name === "controls.md")!.text;
  const wanted = [
    "CC6.1",
    "CC7.2",
    "CC7.3",
    "CC8.1",
    "§164.312(b)",
    "§164.312(c)(1)",
    ...["AU-2", "AU-3", "AU-6", "AU-9", "AU-9(3)", "AU-10", "AU-11", "AU-12", "SC-4"],
  ];
  const sections = controls.split(/\n### /).slice(1);
  for (const id of wanted) {
    const section = sections.find((s) => s.startsWith(`${id} `));
    assert.ok(section, `no section for ${id}`);
    for (
      const part of [
        "**kvh:**",
        "**Command:** `kvh ",
        "**Evidence:**",
        "**Platform must provide:**",
      ]
    ) {
      assert.ok(section.includes(part), `${id} lacks ${part}`);
    }
  }
  // The existing evidence guide links the mappings instead of repeating them.
  assert.match(DOCS.find((doc) => doc.name === "README.md")!.text, /\(controls\.md\)/);
});

Deno.test("compliance: every repository path named exists", () => {
  const paths = spans.filter(({ span }) => REPOSITORY_PATH.test(span));
  assert.ok(paths.length > 20, `only ${paths.length} paths found`);
  for (const { doc, span } of paths) {
    assert.ok(
      (() => {
        try {
          Deno.statSync(`${ROOT}${span}`);
          return true;
        } catch {
          return false;
        }
      })(),
      `${doc}: ${span} does not exist`,
    );
  }
});

Deno.test("compliance: every evidence file named is one kvh writes", () => {
  const sources = [...walk(`${ROOT}cli`), ...walk(`${ROOT}lib`), ...walk(`${ROOT}deploy`)]
    .map((path) => Deno.readTextFileSync(path)).join("\n");
  const written = new Set(commands.flatMap(({ args }) => args));
  for (const { args } of commands.filter(({ args }) => args[0] === "keygen")) {
    const out = args[args.indexOf("--out") + 1];
    written.add(`${out}/${args[1]}.pub`).add(`${out}/${args[1]}.key`);
  }
  for (const { doc, span } of spans) {
    if (span.includes(" ") || !EVIDENCE_FILE.test(span) || REPOSITORY_PATH.test(span)) continue;
    const name = span.split("/").at(-1)!;
    assert.ok(
      written.has(span) || sources.includes(`"${name}"`) || sources.includes(`/${name}`),
      `${doc}: kvh writes no ${span} (not a default name, nor an output of a command named here)`,
    );
  }
});

function* walk(dir: string): Generator<string> {
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.isDirectory) yield* walk(`${dir}/${entry.name}`);
    else if (/\.(ts|yaml)$/.test(entry.name)) yield `${dir}/${entry.name}`;
  }
}

Deno.test("compliance: every kvh subcommand and flag mentioned exists", () => {
  assert.ok(mentions.length > commands.length);
  for (const { doc, span, args } of mentions) {
    const flags = knownFlags(args[0]!);
    assert.ok(flags, `${doc}: \`${span}\`: kvh has no ${args[0]} command`);
    for (
      const flag of args.filter((arg) => arg.startsWith("--")).map((arg) => arg.split("=")[0]!)
    ) {
      assert.ok(flags.has(flag), `${doc}: \`${span}\`: no ${flag}`);
    }
  }
});

for (const { doc, span, args } of commands) {
  Deno.test(`compliance/${doc}: \`${span}\` is a real kvh command line`, () => parseKvhArgs(args));
}
