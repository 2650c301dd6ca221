/** Where and how the CLI prints: plain text for people, JSON (`--json`) for scripts. */
export interface Output {
  /** True with `--json`. */
  readonly json: boolean;
  /** Prints one result: `value` as JSON with `--json`, else `text()`. */
  result(value: unknown, text: () => string): void;
  /** Prints a line to stdout as is. */
  line(text: string): void;
  /** Prints an error to stderr (JSON with `--json`). */
  error(code: string, message: string): void;
}

/** Creates an {@link Output} on the given streams. */
export function createOutput(json: boolean, stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): Output {
  return {
    json,
    result(value, text) {
      stdout.write(`${json ? JSON.stringify(value) : text()}\n`);
    },
    line(text) {
      stdout.write(`${text}\n`);
    },
    error(code, message) {
      stderr.write(json ? `${JSON.stringify({ error: { code, message } })}\n` : `jetactor: ${code}: ${message}\n`);
    },
  };
}

/** A value as compact JSON, shortened to `max` characters. */
export function show(value: unknown, max = 80): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Aligned columns under a header row; columns of numbers are right-aligned. */
export function table(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  // A column of numbers (or '-' for none) is right-aligned, header included.
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === '-'));
  return cells
    .map((r) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd())
    .join('\n');
}
