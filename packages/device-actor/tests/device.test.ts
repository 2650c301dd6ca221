import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ConfigError, InvalidInputError, type OperationContext, type QueryContext } from '@jetactor/actor-runtime';
import {
  DEFAULT_DEVICE_OFFLINE_MS,
  EMA_ALPHA,
  MAX_DEVICE_OFFLINE_MS,
  device,
  type DeviceState,
} from '../src/index.js';

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(T0 + ms).toISOString();
const ctx = (op: string, ms = 0, extra: Partial<OperationContext> = {}): OperationContext => ({ type: 'device', key: 'd1', op, seq: 3, time: new Date(T0 + ms), ...extra });
const qctx: QueryContext = { type: 'device', key: 'd1', query: 'status', seq: 1, exists: true };
const OFFLINE = 1000;
const d = device({ offlineMs: OFFLINE });
const arm = (afterMs = OFFLINE) => [{ id: 'offline', afterMs, op: 'offline' }];
const online = (lastAtMs = 0): DeviceState => ({ status: 'online', count: 2, last: 20, avg: 10, lastAt: iso(lastAtMs) });

describe('device', () => {
  it('starts offline, never heard from', () => {
    expect(d.initialState()).toEqual({ status: 'offline', count: 0, last: null, avg: null, lastAt: null });
  });

  it('is bound to devices.<id>.telemetry, each message a reading of device <id>', () => {
    expect(d.subscribe).toEqual([{ subject: 'devices.*.telemetry', key: 1, op: 'reading' }]);
    expect(d.describe().subscribe).toEqual([{ subject: 'devices.*.telemetry', key: 1, op: 'reading' }]);
  });

  it('keeps the first reading as last and average, counts it, goes online and arms the offline timer', () => {
    expect(d.apply(d.initialState(), 'reading', { t: 21.5 }, ctx('reading', 5))).toEqual({
      state: { status: 'online', count: 1, last: 21.5, avg: 21.5, lastAt: iso(5) },
      result: { count: 1, avg: 21.5 },
      schedule: arm(),
    });
  });

  it(`moves the average exponentially (alpha ${EMA_ALPHA}) and re-arms the timer on every reading`, () => {
    const out = d.apply(online(), 'reading', { t: 20 }, ctx('reading', 700));
    expect(out.state).toEqual({ status: 'online', count: 3, last: 20, avg: 0.9 * 10 + 0.1 * 20, lastAt: iso(700) });
    expect(out.schedule).toEqual(arm());
    const back = d.apply({ ...online(), status: 'offline' }, 'reading', { t: -4 }, ctx('reading', 9000));
    expect(back.state.status).toBe('online');
    expect(back.state.avg).toBeCloseTo(8.6, 12);
  });

  it('keeps the average finite and between the readings at the ends of the number range', () => {
    let state = d.initialState();
    for (const [i, t] of [Number.MAX_VALUE, -Number.MAX_VALUE, Number.MAX_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE].entries()) {
      state = d.apply(state, 'reading', { t }, ctx('reading', i)).state;
      expect(Number.isFinite(state.avg)).toBe(true);
    }
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
  });

  describe('offline', () => {
    it('fired by the offline timer after a silence of the offline time: goes offline (the spent timer needs no cancel)', () => {
      expect(d.apply(online(100), 'offline', undefined, ctx('offline', 100 + OFFLINE, { timer: 'offline' }))).toEqual({
        state: { ...online(100), status: 'offline' },
        result: { status: 'offline' },
      });
    });

    it('fired by the timer early (the offline time grew since it was set): stays online and re-arms for the rest', () => {
      expect(d.apply(online(100), 'offline', undefined, ctx('offline', 100 + 250, { timer: 'offline' }))).toEqual({
        state: online(100),
        result: { status: 'online' },
        schedule: arm(OFFLINE - 250),
      });
    });

    it('called by anyone else: goes offline at once and cancels the timer', () => {
      for (const extra of [{}, { timer: 'other' }]) {
        expect(d.apply(online(100), 'offline', undefined, ctx('offline', 101, extra))).toEqual({
          state: { ...online(100), status: 'offline' },
          result: { status: 'offline' },
          cancel: ['offline'],
        });
      }
    });

    it('on a device never heard from stays offline', () => {
      expect(d.apply(d.initialState(), 'offline', undefined, ctx('offline', 0, { timer: 'offline' })).state).toEqual(d.initialState());
    });
  });

  it.each([
    [undefined, 'input is required'],
    [null, 'input'],
    [21.5, 'input'],
    [{}, 'input.t is required'],
    [{ t: '21.5' }, 'input.t'],
    [{ t: null }, 'input.t'],
    [{ t: Number.NaN }, 'input.t'],
    [{ t: Number.POSITIVE_INFINITY }, 'input.t'],
    [{ t: Number.NEGATIVE_INFINITY }, 'input.t'],
    [{ t: [1] }, 'input.t'],
    [{ t: 1, h: 40 }, 'h'],
  ])('reading rejects the input %j, naming the field', (raw, field) => {
    expect(() => d.parseInput('reading', raw)).toThrow(InvalidInputError);
    expect(() => d.apply(d.initialState(), 'reading', raw, ctx('reading'))).toThrow(field);
  });

  it('offline takes no input', () => {
    expect(() => d.parseInput('offline', undefined)).not.toThrow();
    expect(() => d.parseInput('offline', { t: 1 })).toThrow(InvalidInputError);
  });

  it('answers the query status with its state', () => {
    expect(d.query(online(), 'status', undefined, qctx)).toEqual(online());
  });

  it('describes its operations, query and binding', () => {
    const desc = d.describe();
    expect(Object.keys(desc.operations).sort()).toEqual(['offline', 'reading']);
    expect(desc.operations.reading?.input).toMatchObject({ type: 'object', required: ['t'], properties: { t: { type: 'number' } } });
    expect(Object.keys(desc.queries)).toEqual(['status']);
  });

  it('over random readings: counts every one, keeps the last, the average within the readings, the timer armed each time', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 }), { minLength: 1, maxLength: 50 }), (ts) => {
        let state = d.initialState();
        ts.forEach((t, i) => {
          const out = d.apply(state, 'reading', { t }, ctx('reading', i * 10));
          expect(out.schedule).toEqual(arm());
          state = out.state;
        });
        expect(state.count).toBe(ts.length);
        expect(state.last).toBe(ts.at(-1));
        expect(state.status).toBe('online');
        expect(state.lastAt).toBe(iso((ts.length - 1) * 10));
        const lo = Math.min(...ts);
        const hi = Math.max(...ts);
        expect(state.avg).toBeGreaterThanOrEqual(lo - Math.abs(lo) * 1e-9);
        expect(state.avg).toBeLessThanOrEqual(hi + Math.abs(hi) * 1e-9);
      }),
      { numRuns: 200 },
    );
  });
});

describe('device(options)', () => {
  it('goes offline after 60 s without options', () => {
    expect(DEFAULT_DEVICE_OFFLINE_MS).toBe(60_000);
    for (const def of [device(), device({})]) {
      expect(def.apply(def.initialState(), 'reading', { t: 1 }, ctx('reading')).schedule).toEqual([{ id: 'offline', afterMs: DEFAULT_DEVICE_OFFLINE_MS, op: 'offline' }]);
    }
  });

  it('takes a whole number of ms up to a year, and names offlineMs for anything else', () => {
    expect(d.apply(d.initialState(), 'reading', { t: 1 }, ctx('reading')).schedule).toEqual(arm(OFFLINE));
    expect(device({ offlineMs: MAX_DEVICE_OFFLINE_MS }).type).toBe('device');
    for (const bad of [0, -5, 2.5, Number.NaN, MAX_DEVICE_OFFLINE_MS + 1]) {
      expect(() => device({ offlineMs: bad })).toThrow(ConfigError);
      expect(() => device({ offlineMs: bad })).toThrow('offlineMs');
    }
  });
});
