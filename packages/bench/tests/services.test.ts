import { describe, expect, it } from 'vitest';
import { laneKeys, laneOfKey, type ApplyResult } from '../src/apply-rate.js';
import { DEFAULT_SECTIONS, parseArgs } from '../src/args.js';
import { evaluate, Unit, type Figure } from '../src/figures.js';
import { controlFigures, SERVICE_SETUPS, servicesApplyFigures, type ControlWindow } from '../src/services-bench.js';

describe('services section options', () => {
  it('runs only when --only names it', () => {
    expect(DEFAULT_SECTIONS).not.toContain('services');
    expect([...parseArgs(['--only=raw,services'], '/r').only]).toEqual(['raw', 'services']);
  });
});

describe('lane keys', () => {
  it("watches each lane's own leases and checkpoints, and tells the lane of a key", () => {
    expect(laneKeys('default')).toEqual(['leases.*', 'checkpoints.*']);
    expect(laneKeys('counters')).toEqual(['leases.counters.*', 'checkpoints.counters.*']);
    expect(laneOfKey('checkpoints.17')).toBe('default');
    expect(laneOfKey('checkpoints.counters.17')).toBe('counters');
    expect(laneOfKey('leases.tallies.0')).toBe('tallies');
  });

  it('runs the two services as workers hosting disjoint types, each its own lane', () => {
    const { two, one } = SERVICE_SETUPS;
    expect(two.workers.map((w) => w.env.JETACTOR_ACTORS)).toEqual(['counter', 'tally']);
    expect(two.workers.map((w) => w.env.JETACTOR_SERVICE)).toEqual(two.loads.map((l) => l.lane));
    expect(one.workers[0]?.env.JETACTOR_ACTORS).toBeUndefined();
    expect(one.loads).toEqual([{ type: 'counter', lane: 'default' }]);
  });
});

describe('services figures', () => {
  const result = (rate: number, loads: Record<string, number>): ApplyResult => ({
    scenario: { keys: 1000, ops: 100 },
    rate,
    ms: 1000,
    loads: Object.entries(loads).map(([type, r]) => ({ type: type as 'counter' | 'tally', lane: 'x', rate: r, ms: 1000 })),
    startupMs: 0,
    stopMs: 0,
    rss: 0,
    peakRss: 0,
    cpu: { worker: 0.5 },
    verified: 100,
  });

  it('compares two services with one, per service and in total, beside the raw limit', () => {
    const raw: Figure = { id: 'raw.orderedReadAll', section: 'raw', name: 'read', value: 400, unit: Unit.PerSecond };
    const figures = servicesApplyFigures(1000, {
      one: result(100, { counter: 100 }),
      oneBoth: result(160, { counter: 80, tally: 80 }),
      two: result(120, { counter: 90, tally: 60 }),
    });
    const byId = new Map(evaluate([raw, ...figures]).map((f) => [f.id, f]));
    expect(byId.get('services.one.keys1000.counter')).toMatchObject({ value: 100, ratio: 0.25 });
    expect(byId.get('services.two.keys1000.counter')).toMatchObject({ value: 90, ratio: 0.9, also: { id: 'raw.orderedReadAll', ratio: 0.225 } });
    expect(byId.get('services.two.keys1000.tally')).toMatchObject({ value: 60, ratio: 0.6 });
    expect(byId.get('services.two.keys1000.total')).toMatchObject({ value: 120, ratio: 1.2, also: { id: 'services.oneBoth.keys1000.total', ratio: 0.75 } });
    expect(byId.get('services.oneBoth.keys1000.total')?.detail).toMatchObject({ counterRate: 80, tallyRate: 80 });
  });

  it('gives two services\' control writes and CPU as ratios of one service\'s', () => {
    const w = (writes: number, cores: number): ControlWindow => ({ writesPerSec: writes, byPrefix: { leases: writes }, workerCores: cores, serverCores: 0, otherCores: 0, renewalFailures: 0, fenced: 0 });
    const figures = controlFigures([
      { partitions: 32, services: 1, idle: w(33, 0.02), load: w(200, 0.3), loadRate: 1000 },
      { partitions: 32, services: 2, idle: w(66, 0.04), load: w(500, 0.45), loadRate: 1000 },
    ]);
    const byId = new Map(evaluate(figures).map((f) => [f.id, f]));
    expect(byId.get('services.ctl.p32.idle.s2')).toMatchObject({ ratio: 2, detail: { leasesPerSec: 66 } });
    expect(byId.get('services.ctl.p32.load.s2')?.ratio).toBe(2.5);
    expect(byId.get('services.cpu.p32.load.s2')?.ratio).toBeCloseTo(1.5);
    expect(byId.get('services.cpu.p32.idle.s1')).toMatchObject({ value: 20, unit: Unit.Ms });
    expect(byId.get('services.cpu.p32.idle.s1')?.ratio).toBeUndefined();
  });
});
