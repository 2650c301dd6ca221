/**
 * The pure parts of the soak section (soak.ts): which series it samples, how a series is
 * judged flat or growing, when the stream is filled, and how its tables print. No I/O here,
 * so tests/soak.test.ts covers it without a server.
 */
import { Unit, type EvaluatedFigure, type Figure, type Target } from './figures.js';
import { formatValue, renderRows, type RowColumn } from './report.js';
import { formatMs } from './stats.js';

/** Section heading of the soak's figures. */
export const SOAK_SECTION = 'Soak (mixed traffic; worker, gateway and nats-server as processes)';

/** One sample of the soak: numbers by field (see {@link SAMPLE_COLUMNS}), and the phase as text. */
export type SoakSample = Record<string, number | string>;

/** How far a series may move from the middle third of the run to the last third and still be flat. */
export interface Tolerance {
  /** Relative: 0.15 = the last third's mean within 15% of the middle third's. */
  rel?: number;
  /** Absolute: 2 = at most 2 more (or fewer, for a series that must not fall). */
  abs?: number;
  /** Which way is a leak or a stall: `up` (memory, consumers, latency) or `down` (operations applied). */
  bad: 'up' | 'down';
}

/** A sampled series with a verdict. */
export interface SeriesSpec {
  key: string;
  name: string;
  unit: Unit;
  tolerance: Tolerance;
}

/** The series the soak judges, with their tolerances. */
export const SOAK_SERIES: readonly SeriesSpec[] = [
  { key: 'workerRss', name: 'worker RSS', unit: Unit.Bytes, tolerance: { rel: 0.15, bad: 'up' } },
  { key: 'gatewayRss', name: 'gateway RSS', unit: Unit.Bytes, tolerance: { rel: 0.15, bad: 'up' } },
  { key: 'serverRss', name: 'nats-server RSS', unit: Unit.Bytes, tolerance: { rel: 0.15, bad: 'up' } },
  { key: 'consumers', name: 'server consumers, all streams', unit: Unit.Count, tolerance: { abs: 2, bad: 'up' } },
  { key: 'consumersActors', name: 'consumers on ACTORS', unit: Unit.Count, tolerance: { abs: 2, bad: 'up' } },
  { key: 'consumersState', name: 'consumers on KV_actors', unit: Unit.Count, tolerance: { abs: 2, bad: 'up' } },
  { key: 'consumersDlq', name: 'consumers on ACTORS_DLQ', unit: Unit.Count, tolerance: { abs: 2, bad: 'up' } },
  { key: 'sseStreams', name: 'SSE streams open in the gateway', unit: Unit.Count, tolerance: { abs: 2, bad: 'up' } },
  { key: 'timerHeap', name: 'timer heap entries (worker)', unit: Unit.Count, tolerance: { rel: 0.1, bad: 'up' } },
  { key: 'streamBytes', name: 'operations stream bytes', unit: Unit.Bytes, tolerance: { rel: 0.25, bad: 'up' } },
  { key: 'callP99', name: 'call p99 (?wait=true)', unit: Unit.Ms, tolerance: { rel: 0.5, bad: 'up' } },
  { key: 'appliedPerSecond', name: 'operations applied', unit: Unit.PerSecond, tolerance: { rel: 0.15, bad: 'down' } },
];

/** Means of the finite values of the middle and the last third of `values` (NaN for a third with none). */
export function thirdMeans(values: readonly number[]): { middle: number; last: number } {
  const n = values.length;
  const mean = (from: number, to: number) => {
    let sum = 0;
    let count = 0;
    for (let i = from; i < to; i++) {
      const v = values[i] as number;
      if (Number.isFinite(v)) {
        sum += v;
        count++;
      }
    }
    return count ? sum / count : Number.NaN;
  };
  return { middle: mean(Math.floor(n / 3), Math.floor((2 * n) / 3)), last: mean(Math.floor((2 * n) / 3), n) };
}

/** The figure target that says "flat": the last third's mean against the middle third's. */
export function toleranceTarget(t: Tolerance): Target {
  if (t.bad === 'down') return t.rel !== undefined ? { minRatio: 1 - t.rel } : {};
  return t.rel !== undefined ? { maxRatio: 1 + t.rel } : { maxAbove: t.abs ?? 0 };
}

/** How a tolerance reads in the verdict table. */
export function toleranceText(t: Tolerance): string {
  const sign = t.bad === 'up' ? '+' : '-';
  return t.rel !== undefined ? `${sign}${Math.round(t.rel * 100)}%` : `${sign}${t.abs ?? 0}`;
}

/**
 * Two figures per series that has data in both thirds: `soak.<key>.middle` (the middle
 * third's mean) and `soak.<key>` (the last third's, its limit the middle one, its target the
 * tolerance), so the run's table says whether each is flat. A series with no data in a third
 * (e.g. a metric the worker does not export) gives none.
 */
export function seriesFigures(samples: readonly SoakSample[], specs: readonly SeriesSpec[] = SOAK_SERIES): Figure[] {
  const out: Figure[] = [];
  for (const s of specs) {
    const { middle, last } = thirdMeans(samples.map((r) => (typeof r[s.key] === 'number' ? (r[s.key] as number) : Number.NaN)));
    if (!Number.isFinite(middle) || !Number.isFinite(last)) continue;
    out.push({ id: `soak.${s.key}.middle`, section: SOAK_SECTION, name: `${s.name}, middle third (mean)`, value: middle, unit: s.unit });
    // A series that must not fall cannot fall from 0 (say, nothing applied while the stream was full).
    const nothingToFall = s.tolerance.bad === 'down' && middle <= 0;
    out.push({
      id: `soak.${s.key}`,
      section: SOAK_SECTION,
      name: `${s.name}, last third (mean; flat within ${toleranceText(s.tolerance)} of the middle third${nothingToFall ? ', which is 0' : ''})`,
      value: last,
      unit: s.unit,
      limitId: `soak.${s.key}.middle`,
      ...(nothingToFall ? {} : { target: toleranceTarget(s.tolerance) }),
    });
  }
  return out;
}

/** One row of the verdict table. */
export interface Verdict {
  series: string;
  middle: string;
  last: string;
  change: string;
  tolerance: string;
  verdict: 'flat' | 'GROWING' | 'FALLING' | 'n/a';
}

/** The verdict of every series from the evaluated figures of a run (`n/a`: not measured in both thirds). */
export function verdicts(figures: readonly EvaluatedFigure[], specs: readonly SeriesSpec[] = SOAK_SERIES): Verdict[] {
  const byId = new Map(figures.map((f) => [f.id, f]));
  return specs.map((s) => {
    const f = byId.get(`soak.${s.key}`);
    const tolerance = toleranceText(s.tolerance);
    if (!f?.limit) return { series: s.name, middle: '-', last: '-', change: '-', tolerance, verdict: 'n/a' };
    const diff = f.value - f.limit.value;
    const change = s.tolerance.rel !== undefined ? (f.limit.value !== 0 ? `${diff >= 0 ? '+' : ''}${((diff / f.limit.value) * 100).toFixed(1)}%` : 'n/a') : `${diff >= 0 ? '+' : ''}${diff.toFixed(1)}`;
    // No target: a series that must not fall, from 0 in the middle third.
    const verdict = f.met !== false ? 'flat' : s.tolerance.bad === 'up' ? 'GROWING' : 'FALLING';
    return { series: s.name, middle: formatValue(f.limit.value, s.unit), last: formatValue(f.value, s.unit), change, tolerance, verdict };
  });
}

/**
 * When the stream is filled (ms from the start): the first time at 2 minutes (or a twelfth of
 * a shorter run), then every `periodMs`, all within the first third of the run. The middle and
 * last thirds, which the verdicts compare, then run with one worker process: a restart would
 * reset its memory and timer heap and hide a leak.
 */
export function fillTimes(runMs: number, periodMs = 7 * 60_000): number[] {
  const out: number[] = [];
  for (let t = Math.min(120_000, Math.floor(runMs / 12)); t < runMs / 3; t += periodMs) out.push(t);
  return out;
}

/** The sum of every sample of a Prometheus series in a text page (`name` and `name{...}`), or NaN when there is none. */
export function promValue(page: string, name: string): number {
  let sum = 0;
  let seen = false;
  for (const line of page.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) {
      sum += v;
      seen = true;
    }
  }
  return seen ? sum : Number.NaN;
}

const mb = (v: number) => (Number.isFinite(v) ? (v / 1e6).toFixed(1) : 'n/a');

/** Columns of the per-sample table (the JSON has every field). */
export const SAMPLE_COLUMNS: readonly RowColumn[] = [
  { key: 'minute', title: 'min', format: (v) => v.toFixed(v % 1 === 0 ? 0 : 2) },
  { key: 'phase', title: 'phase' },
  { key: 'workerRss', title: 'worker MB', format: mb },
  { key: 'gatewayRss', title: 'gw MB', format: mb },
  { key: 'serverRss', title: 'nats MB', format: mb },
  { key: 'consumers', title: 'consumers' },
  { key: 'consumersActors', title: 'ACTORS' },
  { key: 'consumersState', title: 'KV_actors' },
  { key: 'consumersDlq', title: 'DLQ' },
  { key: 'consumersMost', title: 'most consumers' },
  { key: 'sseStreams', title: 'sse' },
  { key: 'timerHeap', title: 'heap' },
  { key: 'callP50', title: 'call p50', format: formatMs },
  { key: 'callP99', title: 'call p99', format: formatMs },
  { key: 'calls', title: 'calls' },
  { key: 'appliedPerSecond', title: 'applied/s' },
  { key: 'accepted', title: 'accepted' },
  { key: 'refused', title: 'refused' },
  { key: 'failed', title: 'other' },
  { key: 'streamBytes', title: 'stream MB', format: mb },
  { key: 'workerLines', title: 'log lines' },
  { key: 'benchLoopP99', title: 'bench lag p99', format: formatMs },
];

/** Columns of the fill-and-drain table. */
export const CYCLE_COLUMNS: readonly RowColumn[] = [
  { key: 'cycle', title: 'fill' },
  { key: 'atMinute', title: 'at min', format: (v) => v.toFixed(1) },
  { key: 'stopMs', title: 'worker stop', format: formatMs },
  { key: 'filled', title: 'adds stored' },
  { key: 'fillMs', title: 'fill', format: formatMs },
  { key: 'streamMB', title: 'stream MB', format: (v) => v.toFixed(1) },
  { key: 'restartMs', title: 'restart', format: formatMs },
  { key: 'acceptedAfterMs', title: 'accepted after', format: formatMs },
  { key: 'drainedAfterMs', title: 'drained after', format: formatMs },
  { key: 'result', title: 'result' },
];

/** The soak's tables: per sample, per fill, and the verdict of each series; undefined when the run has no soak. */
export function renderSoak(figures: readonly EvaluatedFigure[]): string | undefined {
  const samples = figures.find((f) => f.id === 'soak.applied')?.samples;
  if (!samples) return undefined;
  const parts = [`Soak samples:\n${renderRows(SAMPLE_COLUMNS, samples)}`];
  const cycles = figures.find((f) => f.id === 'soak.drainMs')?.samples;
  if (cycles?.length) parts.push(`Stream filled and drained:\n${renderRows(CYCLE_COLUMNS, cycles)}`);
  const rows = verdicts(figures).map((v) => ({ ...v }));
  parts.push(
    `Soak verdicts (last third's mean against the middle third's):\n${renderRows(
      [
        { key: 'series', title: 'series' },
        { key: 'middle', title: 'middle third' },
        { key: 'last', title: 'last third' },
        { key: 'change', title: 'change' },
        { key: 'tolerance', title: 'tolerance' },
        { key: 'verdict', title: 'verdict' },
      ],
      rows,
    )}`,
  );
  const failures = figures.find((f) => f.id === 'soak.notDrained')?.detail?.failures;
  if (typeof failures === 'string' && failures) parts.push(`Soak failures:\n${failures}`);
  return parts.join('\n\n');
}
