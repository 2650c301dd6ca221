import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Unit, type EvaluatedFigure } from './figures.js';
import { formatMB, formatMs, formatRatio, formatRate } from './stats.js';

/** Facts about the run printed above the table and kept in the JSON. */
export interface RunInfo {
  startedAt: string;
  mode: 'quick' | 'full';
  node: string;
  natsServer: string;
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

/** Writes the results as JSON (creating the directory). */
export async function writeResults(path: string, info: RunInfo, figures: readonly EvaluatedFigure[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const json = JSON.stringify({ info, figures }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
  await writeFile(path, `${json}\n`);
}
