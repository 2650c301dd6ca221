/**
 * What one key's batch costs in the fold: O(operations + the key's timers and sends), not
 * their product. Counted as work (characters JSON.stringify produces), not time: before, each
 * operation stringified every timer and pending send of its key (and copied the outbox), so
 * 5,000 transfers from one account took 4 s and 5,000 adds on a key with 1,000 timers 2.6 s.
 * Timings are in the bench (`npm run bench -- --only=fold`).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defineActor } from '../src/internal.js';
import { foldKey } from '../src/processing/fold.js';
import type { FoldEnv } from '../src/processing/key-fold.js';
import type { TimerRequest } from '../src/effects/effects.js';
import type { DecodedOp } from '../src/processing/decode.js';
import { sendMsgId } from '../src/processing/msg-ids.js';
import type { CachedRecord } from '../src/processing/record-cache.js';
import type { StoredTimer } from '../src/store/records.js';

const account = defineActor({
  type: 'account',
  initialState: () => ({ balance: 1_000_000 }),
  operations: {
    add: (s, n) => ({ state: { balance: s.balance + (n as number) }, result: null }),
    transfer: (s, n) => ({ state: { balance: s.balance - (n as number) }, result: null, send: [{ key: 'other', op: 'add', input: n }] }),
    tick: (s) => ({ state: s, result: null }),
  },
});

const env: FoldEnv = { actors: new Map([['account', account]]), maxStateBytes: 1_000_000, salt: 'SALT', stream: 1, partitions: 32, subjectPrefix: 'actors' };
const T0 = Date.UTC(2026, 11, 6);
const OPS = 5000;

function ops(op: string, input: unknown, timer?: TimerRequest, count = OPS): DecodedOp[] {
  const data = new TextEncoder().encode(JSON.stringify(input));
  return Array.from({ length: count }, (_, i) => ({
    valid: true,
    seq: 10 + i,
    type: 'account',
    key: 'a1',
    op,
    subject: `3.actors.account.a1.${op}`,
    data,
    time: T0 + i,
    reply: undefined,
    hasMsgId: false,
    ...(timer ? { timer } : {}),
  }));
}

/** A record holding `n` timers far in the future. */
function withTimers(n: number): CachedRecord {
  const timers: StoredTimer[] = Array.from({ length: n }, (_, i) => ({ id: `timer-${i}`, at: Date.UTC(2099, 0, 1) + i, n: 5, op: 'tick', type: 'account', key: 'a1' }));
  return { json: '{"balance":1000000}', seq: 5, revision: 3, partition: 3, timers };
}

/** Characters JSON.stringify produced while `fn` ran. */
function stringified(fn: () => void): number {
  const original = JSON.stringify.bind(JSON);
  let chars = 0;
  vi.spyOn(JSON, 'stringify').mockImplementation((...args: Parameters<typeof JSON.stringify>) => {
    const out = original(...args);
    chars += out?.length ?? 0;
    return out;
  });
  fn();
  vi.restoreAllMocks();
  return chars;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the fold of one key', () => {
  it('5,000 adds on a key with 1,000 timers measure the timers once, not per operation', () => {
    const base = withTimers(1000);
    const timersJson = JSON.stringify(base.timers).length;
    let f = foldKey(base, [], env);
    const chars = stringified(() => {
      f = foldKey(base, ops('add', 1), env);
    });
    expect(f.failures).toBeUndefined();
    expect(f.rec.json).toBe(`{"balance":${1_000_000 + OPS}}`);
    expect(f.rec.timers).toBe(base.timers); // untouched: the committed list, not a copy
    // Before: ~5,000 x the timers' JSON (400 M characters).
    expect(chars).toBeLessThan(2 * timersJson + OPS * 100);
  });

  it('5,000 transfers from one account keep 5,000 sends, each stringified a bounded number of times', () => {
    let f = foldKey(withTimers(0), [], env);
    const chars = stringified(() => {
      f = foldKey({ json: '{"balance":1000000}', seq: 5, revision: 3, partition: 3 }, ops('transfer', 1), env);
    });
    expect(f.failures).toBeUndefined();
    expect(f.rec.outbox).toHaveLength(OPS);
    expect(f.rec.outbox?.[OPS - 1]).toMatchObject({ id: sendMsgId('SALT', 1, 10 + OPS - 1, 0), subject: 'actors.account.other.add', input: '1' });
    const outboxJson = JSON.stringify(f.rec.outbox).length;
    // Before: the whole outbox per operation (quadratic: ~750 M characters).
    expect(chars).toBeLessThan(3 * outboxJson + OPS * 100);
  });

  it('5,000 timer requests replacing one timer on a key with 999 others cost each request its own timer', () => {
    const base = withTimers(999);
    const timersJson = JSON.stringify(base.timers).length;
    let f = foldKey(base, [], env);
    const chars = stringified(() => {
      f = foldKey(base, ops('add', 1, { id: 'later', at: '2098-01-01T00:00:00Z' }), env);
    });
    expect(f.failures).toBeUndefined();
    expect(f.rec.timers).toHaveLength(1000);
    expect(f.rec.timers?.find((t) => t.id === 'later')).toMatchObject({ n: 10 + OPS - 1, op: 'add', input: '1' });
    expect(base.timers).toHaveLength(999); // the committed record is not changed in place
    expect(chars).toBeLessThan(2 * timersJson + OPS * 300);
  });

  it('an operation that does not fit leaves the timers and sends as they were', () => {
    const small: FoldEnv = { ...env, maxStateBytes: 2000 };
    const base = withTimers(20); // ~1,400 bytes of timers
    const many = { json: '{"balance":1000000}', seq: 5, revision: 3, partition: 3, ...(base.timers ? { timers: base.timers } : {}) };
    const f = foldKey(many, [...ops('transfer', 1).slice(0, 30), ...ops('add', 1, { id: 'late', at: '2098-01-01T00:00:00Z' }).slice(40, 41)], small);
    // The transfers fit until the record is full; those past it and the timer request fail, and leave nothing behind.
    const failed = f.failures?.length ?? 0;
    expect(failed).toBeGreaterThan(0);
    expect((f.rec.outbox?.length ?? 0) + failed).toBe(31);
    expect(f.rec.timers).toHaveLength(20);
    expect(f.failures?.every((x) => x.error.code === 'STATE_TOO_LARGE')).toBe(true);
    const bytes = Buffer.byteLength(JSON.stringify(f.rec.timers)) + Buffer.byteLength(JSON.stringify(f.rec.outbox)) + Buffer.byteLength(f.rec.json ?? '');
    expect(bytes).toBeLessThanOrEqual(2000);
  });

  it('a timer request whose input nests too deeply to be written back is INVALID_INPUT, and the next operation applies', () => {
    // JSON.parse reads 200,000 levels; JSON.stringify overflows the stack on them (was HANDLER_ERROR, found by the NATS fuzz).
    const deep = new TextEncoder().encode(`${'['.repeat(200_000)}${']'.repeat(200_000)}`);
    const [request] = ops('add', 1, { id: 'deep', at: '2098-01-01T00:00:00Z' }, 1);
    const [next] = ops('add', 7, undefined, 2).slice(1);
    const f = foldKey(withTimers(0), [{ ...(request as DecodedOp), data: deep }, next as DecodedOp], env);
    expect(f.failures?.map((x) => [x.error.code, x.error.message])).toEqual([['INVALID_INPUT', 'input is nested too deeply to be kept with a timer']]);
    expect(f.rec.timers ?? []).toHaveLength(0);
    expect(JSON.parse(f.rec.json ?? 'null')).toEqual({ balance: 1_000_007 });
  });
});

/** Sets and cancels timers by the ids it is given; `pad` characters of state make it fail the size bound at will. */
const planner = defineActor({
  type: 'planner',
  initialState: () => ({ pad: '' }),
  operations: {
    plan: (_s, input) => {
      const { set, cancel, pad } = input as { set: number[]; cancel: number[]; pad: number };
      return { state: { pad: 'x'.repeat(pad) }, result: null, schedule: set.map((i) => ({ id: `t${i}`, op: 'plan', at: Date.UTC(2090, 0, 1) + i })), cancel: cancel.map((i) => `t${i}`) };
    },
  },
});

describe('the fold of one key (property)', () => {
  it('keeps the timers a list model keeps: cancel then schedule by id, and a failed operation changes nothing', () => {
    const max = 1500;
    const small: FoldEnv = { ...env, actors: new Map([['planner', planner]]), maxStateBytes: max };
    const step = fc.record({ set: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 6 }), cancel: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 4 }), pad: fc.integer({ min: 0, max: 600 }) });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 25 }), (steps) => {
        const batch: DecodedOp[] = steps.map((input, i) => ({ ...(ops('plan', input, undefined, 1)[0] as DecodedOp), type: 'planner', subject: '3.actors.planner.a1.plan', seq: 10 + i }));
        const f = foldKey({ json: null, seq: 5, revision: 0, partition: 3 }, batch, small);
        // The model: the record's timers as a plain list, each step applied whole or not at all.
        let model: StoredTimer[] = [];
        let failed = 0;
        steps.forEach((input, i) => {
          const gone = new Set(input.cancel.map((n) => `t${n}`));
          const next = new Map(model.filter((t) => !gone.has(t.id)).map((t) => [t.id, t]));
          for (const n of input.set) next.set(`t${n}`, { id: `t${n}`, at: Date.UTC(2090, 0, 1) + n, n: 10 + i, op: 'plan', type: 'planner', key: 'a1' });
          const list = [...next.values()];
          const bytes = JSON.stringify({ pad: 'x'.repeat(input.pad) }).length + (list.length > 0 ? JSON.stringify(list).length : 0);
          if (bytes > max) failed++;
          else model = list;
        });
        const byId = (a: StoredTimer, b: StoredTimer) => (a.id < b.id ? -1 : 1);
        expect([...(f.rec.timers ?? [])].sort(byId)).toEqual([...model].sort(byId));
        expect(f.failures?.length ?? 0).toBe(failed);
      }),
      { numRuns: 100 },
    );
  });
});

