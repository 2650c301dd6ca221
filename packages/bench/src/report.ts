import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Unit, type EvaluatedFigure } from './figures.js';
import { formatInt, formatMB, formatMs, formatRatio, formatRate } from './stats.js';

/** Facts about the run printed above the table and kept in the JSON. */
export interface RunInfo {
  startedAt: string;
  mode: 'quick' | 'full';
  node: string;
  natsServer: string;
  /** The nats-server binary of the run. */
  natsServerBin: string;
  cpus: string;
  memoryGB: number;
  partitions: number;
  /** Priority every process of the run had (`--nice`), or null. */
  nice: number | null;
  loadAvgStart: number[];
  loadAvgEnd?: number[];
  durationS?: number;
  errors: Array<{ section: string; message: string }>;
}

/** A figure's value in its unit. */
export function formatValue(value: number, unit: Unit): string {
  if (unit === Unit.PerSecond) return formatRate(value);
  if (unit === Unit.Ms) return formatMs(value);
  if (unit === Unit.Count) return formatInt(value);
  return formatMB(value);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function ratioText(f: EvaluatedFigure): string {
  return [
    f.ratio !== undefined ? formatRatio(f.ratio) : '',
    f.naiveRatio !== undefined ? `${formatRatio(f.naiveRatio)} naive` : '',
    f.also ? `${formatRatio(f.also.ratio)} of ${f.also.id}` : '',
  ]
    .filter(Boolean)
    .join(', ');
}

/** The results table: one row per figure with its limit, ratio and target. */
export function renderTable(figures: readonly EvaluatedFigure[]): string {
  const rows: string[][] = [['measure', 'value', 'limit (same run)', 'ratio', 'target', 'met']];
  let section = '';
  const sectionRows = new Set<number>();
  for (const f of figures) {
    if (f.section !== section) {
      section = f.section;
      sectionRows.add(rows.length);
      rows.push([section, '', '', '', '', '']);
    }
    const limit = f.limit ? `${formatValue(f.limit.value, f.unit)} (${f.limit.id})` : '';
    const ratios = ratioText(f);
    rows.push([`  ${f.name}`, formatValue(f.value, f.unit), limit, ratios, f.targetText ?? '', f.met === undefined ? '' : f.met ? 'yes' : 'NO']);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.filter((_, i) => !sectionRows.has(i)).map((r) => r[c]!.length)));
  return rows
    .map((r, i) => (sectionRows.has(i) ? r[0]! : r.map((cell, c) => pad(cell, widths[c]!)).join('  ').trimEnd()))
    .join('\n');
}

/** The table as Markdown (for the README). */
export function renderMarkdown(figures: readonly EvaluatedFigure[]): string {
  const lines = ['| measure | value | limit (same run) | ratio | target | met |', '|---|---:|---|---:|---|---|'];
  let section = '';
  for (const f of figures) {
    if (f.section !== section) {
      section = f.section;
      lines.push(`| **${section}** | | | | | |`);
    }
    const limit = f.limit ? `${formatValue(f.limit.value, f.unit)} (${f.limit.id})` : '';
    const ratios = ratioText(f);
    lines.push(`| ${f.name} | ${formatValue(f.value, f.unit)} | ${limit} | ${ratios} | ${f.targetText ?? ''} | ${f.met === undefined ? '' : f.met ? 'yes' : '**no**'} |`);
  }
  return lines.join('\n');
}

/** A column of {@link renderRows}: the row field it shows, its heading and how its values print. */
export interface RowColumn {
  key: string;
  title: string;
  format?: (v: number) => string;
}

/** Rows of values (e.g. a soak's samples) as a plain table, numbers right-aligned; a missing value prints as `-`. */
export function renderRows(columns: readonly RowColumn[], rows: ReadonlyArray<Record<string, number | string>>): string {
  const cells = rows.map((r) =>
    columns.map((c) => {
      const v = r[c.key];
      if (v === undefined) return '-';
      if (typeof v === 'string') return v;
      return c.format ? c.format(v) : formatInt(v);
    }),
  );
  const all = [columns.map((c) => c.title), ...cells];
  const widths = columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => (i === 0 ? pad(cell, widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}

/** One run's results as written to the JSON file. */
export interface RunResults {
  info: RunInfo;
  figures: readonly EvaluatedFigure[];
}

/**
 * Writes the results as JSON (creating the directory): `{ info, figures }` for a run on one
 * nats-server, `{ runs: [{ info, figures }, ...] }` for a run on several.
 */
export async function writeResults(path: string, results: RunResults | readonly RunResults[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const payload = Array.isArray(results) ? { runs: results } : results;
  const json = JSON.stringify(payload, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
  await writeFile(path, `${json}\n`);
}

/** One row of a side-by-side table: a measure and its value in each column. */
export interface ComparisonRow {
  name: string;
  unit: Unit;
  /** One per column; NaN where a column lacks the figure. */
  values: number[];
}

/** Rates are better higher; latencies, costs and memory lower. */
const betterHigher = (unit: Unit) => unit === Unit.PerSecond;

/** `0.52x (better)`: the ratio of a value to the first column's, and which way it goes. */
function comparisonCell(value: number, base: number, unit: Unit): string {
  if (!Number.isFinite(value) || !Number.isFinite(base) || base === 0) return '';
  const r = value / base;
  const better = betterHigher(unit) ? r > 1 : r < 1;
  return `${formatRatio(r)}${r === 1 ? '' : better ? ' better' : ' worse'}`;
}

/**
 * A side-by-side table: the measure, the first column's value, then each other column's
 * value and its ratio to the first (e.g. nats-server 2.15.1 / 2.10.27, jetactor / Restate).
 */
export function renderComparison(columns: readonly string[], rows: readonly ComparisonRow[], markdown = false): string {
  const header = ['measure', columns[0] ?? ''];
  for (const c of columns.slice(1)) header.push(c, `ratio to ${columns[0] ?? ''}`);
  const body = rows.map((r) => {
    const base = r.values[0] ?? Number.NaN;
    const cells = [r.name, formatValue(base, r.unit)];
    for (const v of r.values.slice(1)) cells.push(formatValue(v, r.unit), comparisonCell(v, base, r.unit));
    return cells;
  });
  if (markdown) {
    const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
    return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...body.map(line)].join('\n');
  }
  const all = [header, ...body];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all.map((r) => r.map((cell, c) => pad(cell, widths[c] ?? 0)).join('  ').trimEnd()).join('\n');
}
