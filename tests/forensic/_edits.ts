/** One text edit of a line, as the tamper properties of the verify tests generate them. */
export interface LineEdit {
  /** Index of the line. */
  line: number;
  /** Where, modulo the span `within` gives. */
  at: number;
  /** Inserted text. */
  text: string;
  /** Characters removed after it. */
  cut: number;
}

/**
 * Applies edits in order to a copy of `lines`.
 *
 * @param lines The lines.
 * @param edits The edits.
 * @param within How many positions of a line an edit may land on.
 * @returns The edited lines.
 */
export function applyEdits(
  lines: readonly string[],
  edits: readonly LineEdit[],
  within: (line: string) => number = (line) => line.length + 1,
): string[] {
  const out = [...lines];
  for (const { line, at, text, cut } of edits) {
    const original = out[line]!;
    const i = at % within(original);
    out[line] = original.slice(0, i) + text + original.slice(i + cut);
  }
  return out;
}
