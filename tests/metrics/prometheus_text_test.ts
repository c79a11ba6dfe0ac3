import assert from "node:assert/strict";
import fc from "fast-check";
import { escapeLabelValue, writePrometheusText } from "../../lib/metrics/prometheus.ts";

const HOSTILE = [
  'quote " inside',
  "back\\slash",
  "line\nfeed",
  '\\"\n\\n',
  "",
  "non-ASCII: é 漢字 🦀",
  "} kvh_injected 1\n# TYPE x gauge",
];

/** Reads an escaped label value back as the Prometheus text parser does. */
function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, ch) => ch === "n" ? "\n" : ch);
}

Deno.test("escapeLabelValue() escapes backslash, quote and line feed, and nothing else", () => {
  assert.equal(escapeLabelValue('a"b'), 'a\\"b');
  assert.equal(escapeLabelValue("a\\b"), "a\\\\b");
  assert.equal(escapeLabelValue("a\nb"), "a\\nb");
  assert.equal(escapeLabelValue("é 漢字 🦀\t"), "é 漢字 🦀\t");
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (value) => {
      const escaped = escapeLabelValue(value);
      assert.ok(!escaped.includes("\n"));
      assert.ok(!/(^|[^\\])(\\\\)*"/.test(escaped), "an unescaped quote");
      assert.equal(unescape(escaped), value);
    }),
    { seed: 77, numRuns: 500 },
  );
});

Deno.test("writePrometheusText() keeps every hostile label value on its own sample line", () => {
  const text = writePrometheusText([{
    name: "kvh_quarantines_total",
    type: "counter",
    help: "Help with a backslash \\ and\na line feed.",
    samples: HOSTILE.map((reason, i) => ({ labels: { reason, other: "x" }, value: i })),
  }]);
  const lines = text.split("\n");
  assert.equal(lines.at(-1), "");
  assert.equal(lines.length, 2 + HOSTILE.length + 1);
  assert.equal(
    lines[0],
    "# HELP kvh_quarantines_total Help with a backslash \\\\ and\\na line feed.",
  );
  assert.equal(lines[1], "# TYPE kvh_quarantines_total counter");
  HOSTILE.forEach((reason, i) => {
    const match = /^kvh_quarantines_total\{reason="((?:[^"\\]|\\.)*)",other="x"\} (\d+)$/.exec(
      lines[2 + i]!,
    );
    assert.ok(match, lines[2 + i]);
    assert.equal(unescape(match[1]!), reason);
    assert.equal(Number(match[2]), i);
  });
});

Deno.test("writePrometheusText() writes NaN and infinities and refuses bad names", () => {
  const text = writePrometheusText([{
    name: "kvh_x",
    type: "gauge",
    help: "x",
    samples: [{ value: NaN }, { value: Infinity, labels: { a: "1" } }, {
      value: -Infinity,
      suffix: "_sum",
    }],
  }]);
  assert.equal(
    text,
    '# HELP kvh_x x\n# TYPE kvh_x gauge\nkvh_x NaN\nkvh_x{a="1"} +Inf\nkvh_x_sum -Inf\n',
  );
  assert.throws(
    () => writePrometheusText([{ name: "kvh x", type: "gauge", help: "", samples: [] }]),
    TypeError,
  );
  assert.throws(
    () =>
      writePrometheusText([{
        name: "kvh_x",
        type: "gauge",
        help: "",
        samples: [{ labels: { "a-b": "1" }, value: 1 }],
      }]),
    TypeError,
  );
});

const promtool = await Deno.stat("/usr/bin/promtool").then(() => "/usr/bin/promtool").catch(() =>
  undefined
);

Deno.test({
  name: "writePrometheusText() output with hostile label values passes promtool check metrics",
  ignore: promtool === undefined, // promtool comes with the Debian package prometheus (.ci/run)
  async fn() {
    const text = writePrometheusText([{
      name: "kvh_quarantines_total",
      type: "counter",
      help: "Buffers quarantined, by reason \\ with\nodd help.",
      samples: HOSTILE.map((reason, i) => ({ labels: { reason }, value: i })),
    }]);
    const child = new Deno.Command(promtool!, {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 0, output);
    assert.equal(output.trim(), "");
  },
});
