import fc from 'fast-check';
import { Cron } from 'croner';
import { describe, expect, it, vi } from 'vitest';
import { timersOfRecord } from '../src/client/timers.js';
import { nextOccurrence, parseFire, timerOfRequest, timersAfter } from '../src/effects/effects.js';
import { MAX_SENDS_PER_OPERATION, MAX_TIME_MS, MAX_TIMERS_PER_ACTOR, TIMER_HORIZON_MS } from '../src/effects/effect-limits.js';
import { fireMsgId, sendMsgId } from '../src/processing/msg-ids.js';
import { sendsOf } from '../src/processing/sends.js';
import type { StoredTimer } from '../src/store/records.js';

const origin = { type: 'cart', key: 'c1', seq: 42, time: Date.UTC(2026, 0, 1, 12, 0, 0) };
const env = { salt: 'SALT', stream: 7, subjectPrefix: 'actors', maxStateBytes: 1000 };

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe('sends', () => {
  it('defaults to the own type and key, and names each with a deterministic msg id', () => {
    expect(sendsOf([{ op: 'ping' }, { type: 'order', key: 'o1', op: 'place', input: { a: 1 } }], origin, env)).toEqual([
      { id: sendMsgId('SALT', 7, 42, 0), subject: 'actors.cart.c1.ping', seq: 42 },
      { id: sendMsgId('SALT', 7, 42, 1), subject: 'actors.order.o1.place', input: '{"a":1}', seq: 42 },
    ]);
    expect(sendsOf(undefined, origin, env)).toEqual([]);
  });

  it('a send or firing msg id is an HMAC of the salt: deterministic, short, and without the salt', () => {
    const salt = 'Zq3xW9-_k2Lm';
    const send = sendMsgId(salt, 7, 42, 1);
    // Was `$s.<salt>.7.42.1`: anyone who could subscribe to the operations read the salt.
    expect(send).toMatch(/^\$s\.[A-Za-z0-9_-]{22}\.7\.42\.1$/);
    expect(send).not.toContain(salt);
    expect(sendMsgId(salt, 7, 42, 1)).toBe(send);
    expect(new Set([sendMsgId(salt, 7, 42, 0), sendMsgId(salt, 7, 43, 1), sendMsgId(salt, 8, 42, 1), sendMsgId('other', 7, 42, 1)]).has(send)).toBe(false);
    const timer = { id: 'ping', n: 3, at: 1_765_000_000_000 };
    const fire = fireMsgId(salt, 7, 'cart.c1', timer);
    expect(fire).toMatch(/^\$f\.[A-Za-z0-9_-]{22}$/);
    expect(fire).not.toContain(salt);
    expect(fireMsgId(salt, 7, 'cart.c1', { ...timer })).toBe(fire);
    expect(fireMsgId('other', 7, 'cart.c1', timer)).not.toBe(fire);
    expect(fireMsgId(salt, 7, 'cart.c2', timer)).not.toBe(fire);
  });

  it.each([
    ['not an array', {}],
    ['a key with a dot', [{ key: 'a.b', op: 'x' }]],
    ['a wildcard type', [{ type: '*', op: 'x' }]],
    ['no op', [{ key: 'k' }]],
    ['a reserved op', [{ op: '$fire' }]],
    ['a null entry', [null]],
    ['a BigInt input', [{ op: 'x', input: 1n }]],
    ['an input over the limit', [{ op: 'x', input: 'x'.repeat(2000) }]],
    ['too many', Array.from({ length: MAX_SENDS_PER_OPERATION + 1 }, () => ({ op: 'x' }))],
  ])('refuses %s with INVALID_SEND', (_what, raw) => {
    expect(code(() => sendsOf(raw, origin, env))).toBe('INVALID_SEND');
  });
});

describe('timers', () => {
  it('sets afterMs from the operation time, replaces by id and cancels', () => {
    const a = timersAfter([], [{ id: 'idle', op: 'expire', afterMs: 1000 }], undefined, origin, 1000) as StoredTimer[];
    expect(a).toEqual([{ id: 'idle', at: origin.time + 1000, n: 42, op: 'expire', type: 'cart', key: 'c1' }]);
    const b = timersAfter(a, [{ id: 'idle', op: 'expire', at: '2026-01-02T00:00:00Z' }], undefined, { ...origin, seq: 43 }, 1000) as StoredTimer[];
    expect(b).toEqual([{ id: 'idle', at: Date.UTC(2026, 0, 2), n: 43, op: 'expire', type: 'cart', key: 'c1' }]);
    expect(timersAfter(b, undefined, ['idle', 'other'], origin, 1000)).toEqual([]);
    expect(timersAfter(b, undefined, undefined, origin, 1000)).toBeUndefined();
  });

  it('first times of recurring timers: every from now, cron at its next match (UTC)', () => {
    const [e] = timersAfter([], [{ id: 'e', op: 'tick', every: 500 }], undefined, origin, 1000) as StoredTimer[];
    expect(e?.at).toBe(origin.time + 500);
    const [c] = timersAfter([], [{ id: 'c', op: 'tick', cron: '30 * * * *' }], undefined, origin, 1000) as StoredTimer[];
    expect(c?.at).toBe(Date.UTC(2026, 0, 1, 12, 30));
  });

  it.each([
    ['a bad id', [{ id: 'a.b', op: 'x', afterMs: 1 }]],
    ['no time', [{ id: 'a', op: 'x' }]],
    ['at and afterMs', [{ id: 'a', op: 'x', at: 1, afterMs: 1 }]],
    ['every and cron', [{ id: 'a', op: 'x', every: 1000, cron: '* * * * *' }]],
    ['a short period', [{ id: 'a', op: 'x', every: 10 }]],
    ['a bad cron', [{ id: 'a', op: 'x', cron: 'every day' }]],
    ['a negative delay', [{ id: 'a', op: 'x', afterMs: -1 }]],
    ['an unparseable time', [{ id: 'a', op: 'x', at: 'tomorrow' }]],
    ['a time past the last date', [{ id: 'a', op: 'x', at: 9e15 }]],
    ['a reserved op', [{ id: 'a', op: '$delete', afterMs: 1 }]],
    ['not an array', { id: 'a' }],
  ])('refuses %s with INVALID_TIMER', (_what, raw) => {
    expect(code(() => timersAfter([], raw, undefined, origin, 1000))).toBe('INVALID_TIMER');
  });

  it('bounds the timers of one actor', () => {
    const many = Array.from({ length: MAX_TIMERS_PER_ACTOR }, (_, i) => ({ id: `t${i}`, op: 'x', afterMs: i }));
    const full = timersAfter([], many, undefined, origin, 1000) as StoredTimer[];
    expect(full).toHaveLength(MAX_TIMERS_PER_ACTOR);
    expect(code(() => timersAfter(full, [{ id: 'one-more', op: 'x', afterMs: 1 }], undefined, origin, 1000))).toBe('INVALID_TIMER');
  });

  it('reads timer headers; the default id is t<seq>', () => {
    expect(timerOfRequest({ delayMs: '250' }, 'add', '3', origin)).toEqual({ id: 't42', at: origin.time + 250, n: 42, op: 'add', type: 'cart', key: 'c1', input: '3' });
    expect(timerOfRequest({ at: '2026-01-01T12:00:05.000Z', id: 'x', everyMs: '1000' }, 'add', undefined, origin)).toMatchObject({ id: 'x', at: origin.time + 5000, every: 1000 });
    expect(code(() => timerOfRequest({ delayMs: 'soon' }, 'add', undefined, origin))).toBe('INVALID_TIMER');
  });

  it('a recurring timer moves strictly past both its time and the firing, skipping missed occurrences', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e12 }), fc.integer({ min: 100, max: 1e7 }), fc.integer({ min: 0, max: 1e9 }), (at, every, late) => {
        const t: StoredTimer = { id: 'e', at, n: 1, op: 'x', type: 't', key: 'k', every };
        const next = nextOccurrence(t, at + late) as number;
        expect(next).toBeGreaterThan(at + late);
        expect(next - (at + late)).toBeLessThanOrEqual(every);
        expect((next - at) % every).toBe(0);
      }),
    );
    expect(nextOccurrence({ id: 'o', at: 5, n: 1, op: 'x', type: 't', key: 'k' }, 10)).toBeUndefined();
    expect(nextOccurrence({ id: 'c', at: Date.UTC(2026, 0, 1, 12, 30), n: 1, op: 'x', type: 't', key: 'k', cron: '30 * * * *' }, Date.UTC(2026, 0, 1, 15, 0))).toBe(Date.UTC(2026, 0, 1, 15, 30));
  });

  it('parses only well-formed fire payloads; one id per occurrence', () => {
    expect(parseFire({ id: 'a', n: 1, at: 2 })).toEqual({ id: 'a', n: 1, at: 2 });
    for (const junk of [null, 'x', 3, { id: 1, n: 1, at: 2 }, { id: 'a', n: '1', at: 2 }, { id: 'a', n: 1 }]) expect(parseFire(junk)).toBeNull();
    expect(fireMsgId('S', 7, 'cart.c1', { id: 'a', n: 1, at: 2 })).not.toBe(fireMsgId('S', 7, 'cart.c1', { id: 'a', n: 1, at: 3 }));
  });

  it('a cron expression that matches nothing within 10 years is INVALID_TIMER, found with a bounded search', () => {
    // Croner searched such a day month by month up to the year 3000 and overflowed the stack.
    for (const cron of ['0 0 31 2,4,6,9,11 *', '0 0 30 2 *', '0 0 29 2 +MON']) {
      expect(code(() => timerOfRequest({ cron }, 'add', undefined, origin))).toBe('INVALID_TIMER');
      expect(code(() => timerOfRequest({ cron, at: '2030-01-01T00:00:00Z' }, 'add', undefined, origin))).toBe('INVALID_TIMER');
    }
    // A day no month has is known at once: no search at all, whatever the expression's other fields.
    const searches = vi.spyOn(Cron.prototype, 'nextRun');
    for (let i = 0; i < 100; i++) expect(code(() => timerOfRequest({ cron: `${i % 60} ${i % 24} 31 2,4,6,9,11 *` }, 'add', undefined, origin))).toBe('INVALID_TIMER');
    expect(searches).not.toHaveBeenCalled();
    searches.mockRestore();
    // A leap day is 8 years apart around 2100: inside the horizon.
    const leap: StoredTimer = { id: 'l', at: Date.UTC(2096, 1, 29), n: 1, op: 'x', type: 't', key: 'k', cron: '0 0 29 2 *' };
    expect(nextOccurrence(leap, leap.at)).toBe(Date.UTC(2104, 1, 29));
    expect(timerOfRequest({ cron: '@daily' }, 'add', undefined, origin).at).toBe(Date.UTC(2026, 0, 2));
    expect(timerOfRequest({ cron: '*/10 * * * * *' }, 'add', undefined, origin).at).toBe(origin.time + 10_000);
    // Past the last year croner knows, a cron timer ends instead of failing its firing.
    expect(nextOccurrence({ ...leap, at: Date.UTC(9999, 11, 31), cron: '0 0 * * *' }, Date.UTC(9999, 11, 31))).toBeUndefined();
  });

  it('every computed time stays a valid date: periods up to 10 years, a step past the last date ends the timer', () => {
    expect(code(() => timerOfRequest({ at: '1', everyMs: String(MAX_TIME_MS) }, 'add', undefined, origin))).toBe('INVALID_TIMER');
    expect(code(() => timerOfRequest({ at: '1', everyMs: String(TIMER_HORIZON_MS + 1) }, 'add', undefined, origin))).toBe('INVALID_TIMER');
    expect(timerOfRequest({ at: '1', everyMs: String(TIMER_HORIZON_MS) }, 'add', undefined, origin).every).toBe(TIMER_HORIZON_MS);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TIME_MS }), fc.integer({ min: 100, max: MAX_TIME_MS }), fc.integer({ min: 0, max: MAX_TIME_MS }), (at, every, firedAt) => {
        const next = nextOccurrence({ id: 'e', at, n: 1, op: 'x', type: 't', key: 'k', every }, firedAt);
        if (next !== undefined) expect(next).toBeLessThanOrEqual(MAX_TIME_MS);
      }),
    );
    // A record written before the bound (at=1&every=8.64e15 stepped past the last date) still lists.
    const stored = { state: 0, seq: 1, timers: [{ id: 'x', at: 1 + MAX_TIME_MS, n: 1, op: 'add', type: 'counter', key: 'k', every: MAX_TIME_MS }] };
    expect(timersOfRecord(new TextEncoder().encode(JSON.stringify(stored)))[0]?.at).toBe(new Date(MAX_TIME_MS).toISOString());
  });
});
