import { describe, expect, it } from 'vitest';
import { parseArgs } from '../src/args.js';
import { evaluate, Unit, type Figure } from '../src/figures.js';
import { peerComparison } from '../src/peers.js';
import { renderComparison } from '../src/report.js';
import { comparisonRows, type SuiteRun } from '../src/suite.js';

describe('args', () => {
  it('runs every section but peers by default; --peers adds it', () => {
    expect([...parseArgs([], '/r').only]).not.toContain('peers');
    expect([...parseArgs(['--peers'], '/r').only]).toContain('peers');
    expect([...parseArgs(['--only=durability', '--peers'], '/r').only].sort()).toEqual(['durability', 'peers']);
  });

  it('takes --nats-server once per server, and sends --servers to npm run bench', () => {
    expect(parseArgs(['--nats-server', '/a/nats-server', '--nats-server=/b/nats-server'], '/r').servers).toEqual(['/a/nats-server', '/b/nats-server']);
    expect(() => parseArgs(['--nats-server'], '/r')).toThrow(/path/);
    expect(() => parseArgs(['--servers=2.10,testing'], '/r')).toThrow(/npm run bench/);
  });
});

describe('maxRatio targets', () => {
  it('is met when the value is at most the ratio of its limit', () => {
    const figures: Figure[] = [
      { id: 'peer', section: 's', name: 'peer p99', value: 80, unit: Unit.Ms },
      { id: 'ours', section: 's', name: 'our p99', value: 20, unit: Unit.Ms, limitId: 'peer', target: { maxRatio: 1 } },
      { id: 'slow', section: 's', name: 'slow p99', value: 90, unit: Unit.Ms, limitId: 'peer', target: { maxRatio: 1 } },
    ];
    const byId = new Map(evaluate(figures).map((f) => [f.id, f]));
    expect(byId.get('ours')).toMatchObject({ ratio: 0.25, met: true, targetText: '<= 1x' });
    expect(byId.get('slow')?.met).toBe(false);
  });
});

describe('side-by-side tables', () => {
  const run = (version: string, values: Record<string, number>): SuiteRun => ({
    info: { startedAt: '', mode: 'quick', node: '', natsServer: version, natsServerBin: '', cpus: '', memoryGB: 0, partitions: 32, nice: null, loadAvgStart: [], errors: [] },
    figures: evaluate(Object.entries(values).map(([id, value]) => ({ id, section: 's', name: id, value, unit: id.endsWith('P99') ? Unit.Ms : Unit.PerSecond }))),
  });

  it('compares the figures every run has, with ratios to the first', () => {
    const rows = comparisonRows([run('2.10.27', { 'a.rate': 100, 'b.callP99': 10, 'only.first': 1 }), run('2.15.1', { 'a.rate': 150, 'b.callP99': 20 })]);
    expect(rows.map((r) => r.name)).toEqual(['a.rate', 'b.callP99']);
    const table = renderComparison(['2.10.27', '2.15.1'], rows);
    expect(table).toMatch(/a\.rate\s+100\/s\s+150\/s\s+1\.50x better/);
    expect(table).toMatch(/b\.callP99\s+10 ms\s+20 ms\s+2\.00x worse/);
    expect(renderComparison(['2.10.27', '2.15.1'], rows, true)).toContain('| a.rate | 100/s | 150/s | 1.50x better |');
  });

  it('lays the peers figures out as one row per measure, a column per system', () => {
    const f = (system: string, prefix: string, metric: string, value: number, unit: Figure['unit']): Figure => ({
      id: `${prefix}.${metric}`,
      section: 'peers',
      name: `${system}: ${metric} at 1,000/s`,
      value,
      unit,
      detail: { system },
    });
    const peers = peerComparison([
      f('Restate 1.7.12', 'peers.restate', 'callP99', 80, Unit.Ms),
      f('Restate 1.7.12', 'peers.restate', 'callRate', 1000, Unit.PerSecond),
      f('jetactor', 'peers.jetactor', 'callP99', 8, Unit.Ms),
      f('jetactor', 'peers.jetactor', 'callRate', 3000, Unit.PerSecond),
    ]);
    expect(peers?.columns).toEqual(['Restate 1.7.12', 'jetactor']);
    expect(peers?.rows).toEqual([
      { name: 'callP99 at 1,000/s', unit: Unit.Ms, values: [80, 8] },
      { name: 'callRate at 1,000/s', unit: Unit.PerSecond, values: [1000, 3000] },
    ]);
    expect(peerComparison([])).toBeUndefined();
  });
});

describe('servers side by side', () => {
  it("leaves out Restate's figures and rows that repeat an earlier one", () => {
    const info = { startedAt: '', mode: 'quick' as const, node: '', natsServer: 'x', natsServerBin: '', cpus: '', memoryGB: 0, partitions: 32, nice: null, loadAvgStart: [], errors: [] };
    const figs = (v: number): SuiteRun => ({
      info,
      figures: evaluate([
        { id: 'durability.default.callRate', section: 's', name: 'calls', value: v, unit: Unit.PerSecond },
        { id: 'peers.restate.callRate', section: 's', name: 'Restate calls', value: 1000, unit: Unit.PerSecond },
        { id: 'peers.jetactor.callRate', section: 's', name: 'jetactor calls', value: v, unit: Unit.PerSecond },
      ]),
    });
    expect(comparisonRows([figs(5000), figs(4000)]).map((r) => r.name)).toEqual(['calls']);
  });
});
