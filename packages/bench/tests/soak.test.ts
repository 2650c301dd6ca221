import { describe, expect, it } from 'vitest';
import { DEFAULT_SECTIONS, parseArgs } from '../src/args.js';
import { evaluate, Unit } from '../src/figures.js';
import { fillTimes, promValue, renderSoak, seriesFigures, thirdMeans, verdicts, type SeriesSpec, type SoakSample } from '../src/soak-series.js';

const ROOT = '/repo';

describe('soak options', () => {
  it('is not part of the default run and lasts 60 minutes unless --minutes says otherwise', () => {
    expect(DEFAULT_SECTIONS).not.toContain('soak');
    expect(parseArgs([], ROOT).only.has('soak')).toBe(false);
    const args = parseArgs(['--only=soak'], ROOT);
    expect([...args.only]).toEqual(['soak']);
    expect(args.minutes).toBe(60);
    expect(args.sampleSeconds).toBe(60);
    expect(parseArgs(['--only=soak', '--minutes=3'], ROOT).minutes).toBe(3);
    expect(parseArgs(['--only=soak,timers', '--minutes=5', '--sample-seconds=10'], ROOT)).toMatchObject({ minutes: 5, sampleSeconds: 10 });
  });

  it('refuses a bad --minutes with a message that names it', () => {
    for (const bad of ['0', '-5', '1.5', 'abc', '', '10081', '1e2']) {
      expect(() => parseArgs(['--only=soak', `--minutes=${bad}`], ROOT)).toThrow(`--minutes takes the soak's length in whole minutes, 1 to 10080, got '${bad}'`);
    }
    expect(() => parseArgs(['--only=soak', '--sample-seconds=0'], ROOT)).toThrow(/--sample-seconds takes whole seconds/);
  });

  it('refuses soak options without the soak, and a soak too short for three samples', () => {
    expect(() => parseArgs(['--minutes=5'], ROOT)).toThrow('--minutes is an option of the soak section, which runs only when asked for: add --only=soak');
    expect(() => parseArgs(['--only=timers', '--sample-seconds=5'], ROOT)).toThrow(/--sample-seconds is an option of the soak section/);
    expect(() => parseArgs(['--only=soak', '--minutes=2', '--sample-seconds=60'], ROOT)).toThrow(/at least three samples/);
    expect(parseArgs(['--only=soak', '--minutes=3'], ROOT).minutes).toBe(3);
  });
});

describe('soak verdicts', () => {
  it('takes the means of the middle and last thirds, leaving out missing values', () => {
    expect(thirdMeans([1, 2, 3, 4, 5, 6, 7, 8, 9])).toEqual({ middle: 5, last: 8 });
    expect(thirdMeans([10, 20, 30])).toEqual({ middle: 20, last: 30 });
    expect(thirdMeans([0, 0, 0, 4, 6, Number.NaN, 9, Number.NaN, 11])).toEqual({ middle: 5, last: 10 });
    expect(thirdMeans([])).toEqual({ middle: Number.NaN, last: Number.NaN });
  });

  const specs: SeriesSpec[] = [
    { key: 'rss', name: 'worker RSS', unit: Unit.Bytes, tolerance: { rel: 0.15, bad: 'up' } },
    { key: 'consumers', name: 'consumers', unit: Unit.Count, tolerance: { abs: 2, bad: 'up' } },
    { key: 'applied', name: 'applied', unit: Unit.PerSecond, tolerance: { rel: 0.15, bad: 'down' } },
    { key: 'heap', name: 'timer heap', unit: Unit.Count, tolerance: { rel: 0.1, bad: 'up' } },
  ];
  const run = (rows: Array<Partial<Record<string, number>>>) => verdicts(evaluate(seriesFigures(rows as SoakSample[], specs)), specs);

  it('calls a series flat within its tolerance and GROWING or FALLING past it', () => {
    // Middle thirds: rss 100, consumers 10, applied 300, heap 1000.
    const rows = [
      { rss: 50, consumers: 5, applied: 100, heap: 10 },
      { rss: 100, consumers: 10, applied: 300, heap: 1000 },
      { rss: 114, consumers: 12, applied: 256, heap: 1100 },
    ];
    expect(run(rows).map((v) => v.verdict)).toEqual(['flat', 'flat', 'flat', 'flat']);
    const worse = [
      { rss: 50, consumers: 5, applied: 100, heap: 10 },
      { rss: 100, consumers: 10, applied: 300, heap: 1000 },
      { rss: 116, consumers: 13, applied: 254, heap: 1101 },
    ];
    expect(run(worse).map((v) => v.verdict)).toEqual(['GROWING', 'GROWING', 'FALLING', 'GROWING']);
    expect(run(worse)[1]).toMatchObject({ middle: '10', last: '13', change: '+3.0', tolerance: '+2' });
    expect(run(worse)[0]).toMatchObject({ change: '+16.0%', tolerance: '+15%' });
  });

  it('never calls a series FALLING from 0', () => {
    const v = run([{ applied: 300 }, { applied: 0 }, { applied: 100 }]);
    expect(v[2]).toMatchObject({ series: 'applied', verdict: 'flat' });
    expect(run([{ applied: 300 }, { applied: 300 }, { applied: 0 }])[2]).toMatchObject({ verdict: 'FALLING' });
  });

  it('says n/a for a series missing in a third, and a fall of memory is flat', () => {
    const rows = [{ rss: 300 }, { rss: 200 }, { rss: 100, heap: 5 }];
    const v = run(rows);
    expect(v[0]).toMatchObject({ series: 'worker RSS', verdict: 'flat', change: '-50.0%' });
    expect(v[3]).toMatchObject({ series: 'timer heap', verdict: 'n/a' });
    expect(seriesFigures(rows as SoakSample[], specs).map((f) => f.id)).toEqual(['soak.rss.middle', 'soak.rss']);
  });

  it('prints the samples, the fills and the verdicts', () => {
    const samples: SoakSample[] = [1, 2, 3].map((minute) => ({ minute, phase: 'steady', workerRss: 100e6, consumers: 7, appliedPerSecond: 300 }));
    const figures = evaluate([
      { id: 'soak.applied', section: 's', name: 'applied', value: 300, unit: Unit.PerSecond, samples },
      ...seriesFigures(samples),
      { id: 'soak.drainMs', section: 's', name: 'drain', value: 1000, unit: Unit.Ms, samples: [{ cycle: 1, atMinute: 2, result: 'drained' }] },
    ]);
    const text = renderSoak(figures) ?? '';
    expect(text).toContain('Soak samples:');
    expect(text).toMatch(/worker RSS\s+100 MB\s+100 MB\s+\+0\.0%\s+\+15%\s+flat/);
    expect(text).toMatch(/timer heap entries \(worker\)\s+-\s+-\s+-\s+\+10%\s+n\/a/);
    expect(text).toContain('Stream filled and drained:');
    expect(renderSoak(evaluate([]))).toBeUndefined();
  });
});

describe('soak helpers', () => {
  it('fills the stream in the first third of the run only', () => {
    expect(fillTimes(60 * 60_000)).toEqual([120_000, 540_000, 960_000]);
    expect(fillTimes(3 * 60_000)).toEqual([15_000]);
    for (const t of fillTimes(10 * 60_000)) expect(t).toBeLessThan(200_000);
  });

  it('sums a Prometheus series over its labels', () => {
    const page = [
      '# HELP jetactor_worker_operations_applied_total Operations applied',
      'jetactor_worker_operations_applied_total{type="counter",op="add"} 10',
      'jetactor_worker_operations_applied_total{type="account",op="transfer"} 5',
      'jetactor_worker_operations_applied_total_extra 99',
      'jetactor_worker_timer_heap_entries 42',
    ].join('\n');
    expect(promValue(page, 'jetactor_worker_operations_applied_total')).toBe(15);
    expect(promValue(page, 'jetactor_worker_timer_heap_entries')).toBe(42);
    expect(promValue(page, 'jetactor_worker_missing')).toBeNaN();
  });
});
