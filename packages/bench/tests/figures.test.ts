import { describe, expect, it } from 'vitest';
import { evaluate, Unit, type Figure } from '../src/figures.js';
import { renderMarkdown, renderTable } from '../src/report.js';
import { percentile, summarize } from '../src/stats.js';

describe('stats', () => {
  it('takes nearest-rank percentiles', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarizes unsorted samples without changing them', () => {
    const samples = [5, 1, 3, 2, 4];
    const s = summarize(samples);
    expect(s).toMatchObject({ count: 5, p50: 3, max: 5, mean: 3 });
    expect(samples).toEqual([5, 1, 3, 2, 4]);
  });
});

describe('evaluate', () => {
  const figures: Figure[] = [
    { id: 'raw.read', section: 'raw', name: 'read', value: 200, unit: Unit.PerSecond },
    { id: 'raw.naive', section: 'raw', name: 'naive', value: 10, unit: Unit.PerSecond },
    { id: 'apply', section: 'apply', name: 'apply', value: 120, unit: Unit.PerSecond, limitId: 'raw.read', target: { minRatio: 0.5, minNaiveRatio: 10 } },
    { id: 'slow', section: 'apply', name: 'slow', value: 90, unit: Unit.PerSecond, limitId: 'raw.read', target: { minRatio: 0.5 } },
    { id: 'p99', section: 'latency', name: 'p99', value: 25, unit: Unit.Ms, target: { max: 20 } },
  ];

  it('works out ratios to the limit and to the naive actor, and whether targets are met', () => {
    const byId = new Map(evaluate(figures).map((f) => [f.id, f]));
    expect(byId.get('apply')).toMatchObject({ ratio: 0.6, naiveRatio: 12, met: true });
    expect(byId.get('slow')).toMatchObject({ ratio: 0.45, met: false });
    expect(byId.get('p99')).toMatchObject({ met: false, targetText: '<= 20 ms' });
    expect(byId.get('raw.read')?.met).toBeUndefined();
  });

  it('renders every figure in the table and the Markdown', () => {
    const evaluated = evaluate(figures);
    const table = renderTable(evaluated);
    const md = renderMarkdown(evaluated);
    for (const f of figures) {
      expect(table).toContain(f.name);
      expect(md).toContain(`| ${f.name} |`);
    }
    expect(table).toMatch(/slow\s+90\/s\s+200\/s \(raw\.read\)\s+0\.45x\s+>= 0\.5x\s+NO/);
  });
});
