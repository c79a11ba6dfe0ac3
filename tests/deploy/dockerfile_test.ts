/**
 * No Docker engine runs here, so the images are checked by reading their Dockerfiles: pinned
 * bases, a non-root user, no secrets, kvh as the entry point, a forensics volume for a
 * read-only root, and every path they copy present in the build context.
 */
import assert from "node:assert/strict";
import { compileTaskFlags, ROOT } from "../cli/_kvh.ts";
import { compileGraph, localPath } from "./_graph.ts";

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions with continuation lines joined; comments and blank lines dropped. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = "";
  let start = 0;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) return;
    if (pending === "") start = index + 1;
    if (line.startsWith("#")) return;
    pending += (pending === "" ? "" : " ") + line.replace(/\\$/, "").trim();
    if (line.endsWith("\\")) return;
    const match = /^([A-Za-z]+)\s+(.*)$/.exec(pending);
    assert.ok(match, `line ${start}: not an instruction: ${pending}`);
    instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!, line: start });
    pending = "";
  });
  assert.equal(pending, "", "the file ends inside a continued instruction");
  return instructions;
}

function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const [image, as, name] = instruction.args.split(/\s+/);
      assert.ok(as === undefined || as.toUpperCase() === "AS", instruction.args);
      stages.push({ image: image!, name, instructions: [] });
    } else {
      assert.ok(stages.length > 0, `line ${instruction.line}: ${instruction.keyword} before FROM`);
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

/** COPY's flags and paths; the last path is the destination. */
function copyParts(args: string): { from?: string; sources: string[]; destination: string } {
  const words = args.startsWith("[") ? JSON.parse(args) as string[] : args.split(/\s+/);
  const flags = words.filter((word) => word.startsWith("--"));
  const paths = words.filter((word) => !word.startsWith("--"));
  const from = flags.find((flag) => flag.startsWith("--from="))?.slice("--from=".length);
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
}

/** Patterns of .dockerignore, in order (`!` re-includes). */
function ignored(path: string): boolean {
  const rules = Deno.readTextFileSync(`${ROOT}.dockerignore`).split("\n")
    .map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("#"));
  let excluded = false;
  for (const rule of rules) {
    const negated = rule.startsWith("!");
    const pattern = (negated ? rule.slice(1) : rule).replace(/\/$/, "");
    const regex = new RegExp(
      "^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*") + "(/|$)",
    );
    if (regex.test(path)) excluded = !negated;
  }
  return excluded;
}

const VERSION: string = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).version;

for (const file of ["Dockerfile", "Dockerfile.cuda"]) {
  const text = Deno.readTextFileSync(`${ROOT}${file}`);
  const stages = stagesOf(parseDockerfile(text));
  const final = stages.at(-1)!;
  const names = new Set(stages.map((stage) => stage.name).filter((name) => name !== undefined));

  Deno.test(`${file}: every base image is pinned to a version tag`, () => {
    for (const stage of stages) {
      if (names.has(stage.image)) continue;
      const tag = /^[^@]+:([^:/@]+)$/.exec(stage.image)?.[1];
      assert.ok(tag !== undefined || /@sha256:[0-9a-f]{64}$/.test(stage.image), stage.image);
      if (tag !== undefined) {
        assert.notEqual(tag, "latest", stage.image);
        assert.match(tag, /\d+\.\d+/, `${stage.image}: the tag names no version`);
      }
    }
  });

  Deno.test(`${file}: the image runs kvh as a non-root user`, () => {
    const users = final.instructions.filter((i) => i.keyword === "USER");
    assert.equal(users.length, 1, "the final stage sets USER once");
    const [user, group] = users[0]!.args.split(":");
    assert.match(user!, /^[1-9]\d*$/, "a numeric uid, so runAsNonRoot can check it");
    assert.ok(group === undefined || /^[1-9]\d*$/.test(group), users[0]!.args);
    const keywords = final.instructions.map((i) => i.keyword);
    assert.ok(keywords.indexOf("USER") < keywords.indexOf("ENTRYPOINT"));

    const entrypoint = final.instructions.find((i) => i.keyword === "ENTRYPOINT");
    assert.ok(entrypoint, "no ENTRYPOINT");
    const argv = JSON.parse(entrypoint.args) as string[]; // exec form: signals reach kvh
    assert.equal(argv.length, 1);
    const binary = argv[0]!;
    // The binary comes from the compile task's output, copied into the entry point's folder.
    const output = compileTaskFlags().find((_, i, flags) => flags[i - 1] === "--output")!;
    const copy = final.instructions.filter((i) => i.keyword === "COPY").map((i) =>
      copyParts(i.args)
    )
      .find((parts) =>
        parts.from !== undefined &&
        parts.sources.some((source) => source.endsWith(`/${output.split("/")[0]}/`)) &&
        binary === `${parts.destination}${output.split("/").at(-1)}`
      );
    assert.ok(copy, `${binary} is not the compiled ${output}`);
  });

  Deno.test(`${file}: forensics/ is a volume under the working directory, owned by the user`, () => {
    const workdir = final.instructions.filter((i) => i.keyword === "WORKDIR").at(-1)?.args;
    assert.ok(workdir, "no WORKDIR");
    const volume = final.instructions.find((i) => i.keyword === "VOLUME");
    assert.ok(volume, "no VOLUME");
    assert.deepEqual(JSON.parse(volume.args), [`${workdir}/forensics`]);
    const uid = final.instructions.find((i) => i.keyword === "USER")!.args.split(":")[0];
    const owned = final.instructions.filter((i) => i.keyword === "COPY")
      .some((i) =>
        i.args.includes(`--chown=${uid}:`) && copyParts(i.args).destination === `${workdir}/`
      );
    assert.ok(owned, `the working directory is not given to uid ${uid}`);
    // Deno's cache must not be on the read-only root.
    assert.ok(
      final.instructions.some((i) => i.keyword === "ENV" && /\bDENO_DIR=\/tmp\//.test(i.args)),
    );
  });

  Deno.test(`${file}: no secrets in the image`, () => {
    assert.doesNotMatch(text, /PRIVATE KEY|FORENSIC_HMAC_SECRET|registry\.example\.com/);
    for (const stage of stages) {
      for (const instruction of stage.instructions) {
        if (instruction.keyword === "ENV" || instruction.keyword === "ARG") {
          assert.doesNotMatch(
            instruction.args,
            /(SECRET|TOKEN|PASSWORD|KEY)\w*=/i,
            instruction.args,
          );
        }
        if (instruction.keyword === "COPY") {
          for (const source of copyParts(instruction.args).sources) {
            assert.doesNotMatch(source, /\.(key|pem|pub)$|secret|token|\.env$/i, source);
          }
        }
      }
    }
  });

  Deno.test(`${file}: every path it copies exists in the build context`, () => {
    for (const stage of stages) {
      for (const instruction of stage.instructions.filter((i) => i.keyword === "COPY")) {
        const { from, sources } = copyParts(instruction.args);
        if (from !== undefined) {
          assert.ok(names.has(from), `line ${instruction.line}: no stage ${from}`);
          continue;
        }
        for (const source of sources) {
          const path = source.replace(/\/$/, "");
          assert.ok(Deno.statSync(`${ROOT}${path}`), `line ${instruction.line}: ${source}`);
          assert.ok(!ignored(path), `line ${instruction.line}: .dockerignore drops ${source}`);
        }
      }
    }
  });

  Deno.test(`${file}: the README builds it as kvh:${VERSION}`, () => {
    const readme = Deno.readTextFileSync(`${ROOT}README.md`);
    const tag = file === "Dockerfile" ? `kvh:${VERSION}` : `kvh:${VERSION}-cuda`;
    const command = file === "Dockerfile"
      ? `docker build -t ${tag} .`
      : `docker build -f ${file} -t ${tag} .`;
    assert.ok(readme.includes(command), `README lacks: ${command}`);
    assert.ok(text.includes(command), `${file}'s header lacks: ${command}`);
  });
}

Deno.test("the build context holds every module of kvh's graph", async () => {
  const local = (await compileGraph()).map((module) => localPath(module.specifier))
    .filter((path) => path !== undefined);
  assert.ok(local.length > 10);
  for (const path of local) assert.ok(!ignored(path), `.dockerignore drops ${path}`);
  for (const file of ["Dockerfile", "Dockerfile.cuda"]) {
    const copied = parseDockerfile(Deno.readTextFileSync(`${ROOT}${file}`))
      .filter((i) => i.keyword === "COPY" && !i.args.includes("--from="))
      .flatMap((i) => copyParts(i.args).sources);
    for (const path of local) {
      assert.ok(
        copied.some((source) => source.endsWith("/") ? path.startsWith(source) : path === source),
        `${file} does not copy ${path}`,
      );
    }
  }
});
