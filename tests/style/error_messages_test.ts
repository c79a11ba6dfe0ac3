/**
 * Error messages follow the Deno style (STYLE.md §4, as enforced in denoland/std by
 * _tools/error_message_lint_plugin.ts): a capital first letter, no trailing period, no sentence
 * break, no contractions. Every `new …Error(…)` and `super(…)` in an error class under lib/ and
 * cli/ whose message is a string or template literal is checked, by walking the syntax tree that
 * `Deno.lint.runPlugin` provides.
 */
import assert from "node:assert/strict";

interface Violation {
  line: number;
  problem: string;
  message: string;
}

const LEADING_LOWERCASE = /^[a-z]/;
const TRAILING_PERIOD = /\.$/;
// A period, space and capital letter: "e.g. 4KiB" or a listed "." character is not a break.
const SENTENCE_BREAK = /\.\s+[A-Z]/;
const CONTRACTION =
  /\b\w+n['’]t\b|\b(?:i|you|we|they|it|that|there|what|who|let)['’](?:s|re|ve|ll|d|m)\b|\w['’](?:re|ve|ll)\b/i;
// A code such as "log_locked" (KvhError's first argument) or an identifier: not a message.
const WORD = /^\S*$/;

// deno-lint-ignore no-explicit-any -- the lint AST node types are a large union; only a few fields are read
type AstNode = any;

function messageText(node: AstNode | undefined): { text: string; open: boolean[] } | undefined {
  if (node?.type === "Literal" && typeof node.value === "string") {
    return { text: node.value, open: [false, false] };
  }
  if (node?.type === "TemplateLiteral") {
    const quasis = node.quasis.map((q: AstNode) => q.cooked ?? q.raw) as string[];
    // `open` marks a message that starts or ends with an interpolation: nothing to check there.
    return {
      text: quasis.join("${}"),
      open: [quasis[0] === "", quasis.at(-1) === ""],
    };
  }
  return undefined;
}

function messageArgument(name: string, args: AstNode[]): AstNode | undefined {
  if (name === "KvhError") return args[1];
  const first = messageText(args[0]);
  if (first !== undefined && WORD.test(first.text) && messageText(args[1]) !== undefined) {
    return args[1];
  }
  return args[0];
}

function check(node: AstNode, violations: Violation[], source: string): void {
  const message = messageText(node);
  if (message === undefined || WORD.test(message.text)) return;
  const line = source.slice(0, node.range[0]).split("\n").length;
  const add = (problem: string) => violations.push({ line, problem, message: message.text });
  if (!message.open[0] && LEADING_LOWERCASE.test(message.text)) {
    add("starts with a lowercase letter");
  }
  if (!message.open[1] && TRAILING_PERIOD.test(message.text)) add("ends with a period");
  if (SENTENCE_BREAK.test(message.text)) add("has more than one sentence");
  if (CONTRACTION.test(message.text)) add("uses a contraction");
}

function calleeName(callee: AstNode): string | undefined {
  if (callee.type === "Identifier") return callee.name;
  if (callee.type === "MemberExpression" && callee.property.type === "Identifier") {
    return callee.property.name;
  }
  return undefined;
}

/** Returns the style violations of the error messages in one source file. */
function errorMessageViolations(fileName: string, source: string): Violation[] {
  const violations: Violation[] = [];
  const plugin: Deno.lint.Plugin = {
    name: "kvh-style",
    rules: {
      "error-message": {
        create(context) {
          return {
            NewExpression(node: AstNode) {
              const name = calleeName(node.callee);
              if (name === undefined || !name.endsWith("Error")) return;
              check(messageArgument(name, node.arguments), violations, source);
            },
            CallExpression(node: AstNode) {
              if (node.callee.type !== "Super") return;
              const owner: AstNode = context.sourceCode.getAncestors(node)
                .findLast((a: AstNode) =>
                  a.type === "ClassDeclaration" || a.type === "ClassExpression"
                );
              const base = owner?.superClass ? calleeName(owner.superClass) : undefined;
              if (base === undefined || !base.endsWith("Error")) return;
              check(messageArgument(base, node.arguments), violations, source);
            },
          };
        },
      },
    },
  };
  Deno.lint.runPlugin(plugin, fileName, source);
  return violations;
}

async function* sourceFiles(dir: URL): AsyncGenerator<URL> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  for (const entry of entries.sort((a, b) => a.name < b.name ? -1 : 1)) {
    if (entry.isDirectory) yield* sourceFiles(new URL(`${entry.name}/`, dir));
    else if (entry.isFile && entry.name.endsWith(".ts")) yield new URL(entry.name, dir);
  }
}

Deno.test("error messages in lib/ and cli/ follow the Deno style", async () => {
  const root = new URL("../../", import.meta.url);
  const report: string[] = [];
  let files = 0;
  for (const dir of ["lib/", "cli/"]) {
    for await (const file of sourceFiles(new URL(dir, root))) {
      files++;
      const path = file.pathname.slice(root.pathname.length);
      const source = await Deno.readTextFile(file);
      for (const v of errorMessageViolations(path, source)) {
        report.push(`${path}:${v.line}: ${v.problem}: ${JSON.stringify(v.message)}`);
      }
    }
  }
  assert.ok(files > 0, "no source files found under lib/ or cli/");
  assert.deepEqual(report, [], `Error messages break the Deno style:\n${report.join("\n")}`);
});

Deno.test("errorMessageViolations() flags each rule and accepts Deno-style messages", () => {
  const source = [
    'throw new Error("cannot open the log");', // 1 lowercase
    'throw new TypeError("Cannot open the log.");', // 2 trailing period
    "throw new RangeError(`Bad size ${n}. Use a smaller one`);", // 3 sentence break
    'throw new Error("Log can\'t be opened");', // 4 contraction
    'throw new KvhError("log_locked", "log is locked");', // 5 KvhError message is argument 2
    'throw new errors.FooError("bad", "X y.");', // 6 member callee, code-like first argument
    'class A extends KvhError { constructor() { super("code", `it\'s ${x}`); } }', // 7 super
    'class B extends SyntaxError { constructor() { super("oops here."); } }', // 8 super
    'throw new Error("Cannot open kv_cache.log: permission denied");', // fine
    "throw new Error(`${path}: not found.${x}`);", // fine: ends with an interpolation
    "throw new TypeError(`--hmac-key-file ${f} is group-readable`);", // fine: starts with a flag
    'throw new KvhError("log_locked", message);', // fine: not a literal
    'throw new UnknownHandleError("h-1");', // fine: an identifier, not a message
    'class C extends Base { constructor() { super("lower case"); } }', // fine: not an error class
    "throw new Error(\"File 'a.log': locked\");", // fine: quotes are not contractions
    'throw new Error("Bad size (e.g. 4KiB or . or _) here");', // fine: no sentence break
  ].join("\n");
  const found = errorMessageViolations("sample.ts", source).map((v) => `${v.line} ${v.problem}`);
  assert.deepEqual(found, [
    "1 starts with a lowercase letter",
    "2 ends with a period",
    "3 has more than one sentence",
    "4 uses a contraction",
    "5 starts with a lowercase letter",
    "6 ends with a period",
    "7 starts with a lowercase letter",
    "7 uses a contraction",
    "8 starts with a lowercase letter",
    "8 ends with a period",
  ]);
});
