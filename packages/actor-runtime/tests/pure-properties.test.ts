/**
 * Property tests of the runtime's pure parts, no server: the fold, the assignment and the
 * reconcile plan. fast-check shrinks any counterexample to a small one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignPartitions, type AnyActorDefinition } from '../src/index.js';
import type { Seen } from '../src/ownership/control-view.js';
import { planReconcile, type HeldView } from '../src/ownership/reconcile.js';
import type { DecodedOp } from '../src/processing/decode.js';
import { foldKey } from '../src/processing/fold.js';
import type { FoldEnv } from '../src/processing/key-fold.js';
import type { CachedRecord } from '../src/processing/record-cache.js';
import { pushList } from './support/hostile-actors.js';
import { testCounter } from './support/test-counter.js';

const enc = new TextEncoder();
const env: FoldEnv = { actors: new Map<string, AnyActorDefinition>([[testCounter.type, testCounter], [pushList.type, pushList]]), maxStateBytes: 1 << 20, salt: 's', stream: 1, partitions: 32, subjectPrefix: 'actors' };

type Step = { op: 'add'; n: number } | { op: 'reset' } | { op: 'get' } | { op: '$delete' } | { op: 'explode' } | { op: 'add'; bad: string };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -1000, max: 1000 }).map((n): Step => ({ op: 'add', n })) },
  { weight: 1, arbitrary: fc.constant<Step>({ op: 'reset' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ op: 'get' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ op: '$delete' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ op: 'explode' }) },
  { weight: 1, arbitrary: fc.constantFrom<Step>({ op: 'add', bad: 'not json' }, { op: 'add', bad: '"three"' }) },
);

function opsOf(steps: readonly Step[], firstSeq = 1): DecodedOp[] {
  return steps.map((s, i) => {
    const data = 'bad' in s ? enc.encode(s.bad) : s.op === 'add' ? enc.encode(String(s.n)) : new Uint8Array(0);
    return { valid: true, seq: firstSeq + i, type: 'counter', key: 'k', op: s.op, subject: `0.actors.counter.k.${s.op}`, data, time: 0, reply: `_INBOX.r.${i}`, hasMsgId: false };
  });
}

/** The counter's state after `steps`, one at a time by the obvious rules. */
function model(steps: readonly Step[]): { value: number | null; written: boolean; results: Array<number | null | 'error'> } {
  let value: number | null = null; // null: never written or deleted
  // A record exists once an outcome differed from the initial state (0) since the last delete.
  let written = false;
  const results: Array<number | null | 'error'> = [];
  for (const s of steps) {
    if ('bad' in s || s.op === 'explode') results.push('error');
    else if (s.op === 'add') {
      value = (value ?? 0) + s.n;
      written ||= value !== 0;
      results.push(value);
    } else if (s.op === 'reset') {
      value = 0;
      results.push(0);
    } else if (s.op === 'get') results.push(value ?? 0);
    else {
      value = null;
      written = false;
      results.push(null);
    }
  }
  return { value, written, results };
}

const fresh = (): CachedRecord => ({ json: null, seq: 0, revision: 0, partition: 0 });
const stateOf = (rec: CachedRecord): number => (rec.json === null ? 0 : (JSON.parse(rec.json) as number));

/** Every reply of a fold, by seq: the result, or 'error'. */
function answers(folds: ReturnType<typeof foldKey>[]): Map<number, unknown> {
  const out = new Map<number, unknown>();
  for (const f of folds) {
    for (const r of f.replies ?? []) {
      const body = JSON.parse(r.body) as { result?: unknown; seq: number };
      out.set(body.seq, body.result);
    }
    for (const x of f.failures ?? []) out.set(x.op.seq, 'error');
  }
  return out;
}

describe('fold (property)', () => {
  it('folding any sequence at once equals applying it one operation at a time, and equals the model', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const ops = opsOf(steps);
        const all = foldKey(fresh(), ops, env);
        let rec = fresh();
        const singles = ops.map((op) => {
          const f = foldKey(rec, [op], env);
          rec = f.rec;
          return f;
        });
        expect(all.rec.json).toBe(rec.json);
        expect(stateOf(all.rec)).toBe(stateOf(rec));
        const m = model(steps);
        expect(stateOf(all.rec)).toBe(m.value ?? 0);
        // Reads and outcomes equal to the initial state write nothing.
        expect(all.rec.json === null).toBe(!m.written);
        const expected = new Map(m.results.map((r, i) => [i + 1, r]));
        expect(answers([all])).toEqual(expected);
        expect(answers(singles)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('replaying any prefix again after a crash applies nothing twice', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), fc.nat(), (steps, cut) => {
        const ops = opsOf(steps);
        const k = cut % (ops.length + 1);
        // Committed up to k; the checkpoint may lag anywhere behind, so the replay starts earlier.
        const committed = foldKey(fresh(), ops.slice(0, k), env).rec;
        const replayFrom = k === 0 ? 0 : cut % k;
        const replayed = foldKey(committed, ops.slice(replayFrom), env);
        const straight = foldKey(fresh(), ops, env);
        expect(replayed.rec.json).toBe(straight.rec.json);
        expect(stateOf(replayed.rec)).toBe(model(steps).value ?? 0);
      }),
      { numRuns: 300 },
    );
  });

  it('a handler that mutates its state in place changes nothing the cache or a retry can see', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 20 }), (ns) => {
        const base: CachedRecord = { json: JSON.stringify({ items: [1] }), seq: 0, revision: 1, partition: 0 };
        const ops: DecodedOp[] = ns.map((n, i) => ({ valid: true, seq: i + 1, type: 'pushlist', key: 'k', op: i % 5 === 4 ? 'pushThenThrow' : 'push', subject: '', data: enc.encode(String(n)), time: 0, reply: undefined, hasMsgId: false }));
        const f = foldKey(base, ops, env);
        expect(base.json).toBe(JSON.stringify({ items: [1] })); // the committed record is untouched
        const pushed = ns.filter((_, i) => i % 5 !== 4);
        expect(JSON.parse(f.rec.json ?? 'null')).toEqual({ items: [1, ...pushed] });
      }),
      { numRuns: 200 },
    );
  });
});

const memberIds = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/), { minLength: 1, maxLength: 8 });

describe('assignment and reconcile (property)', () => {
  it('gives every partition to exactly one live member, floor or ceil of P/W each', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 128 }), memberIds, (partitions, members) => {
        const a = assignPartitions(partitions, members);
        const all = [...a.values()].flat().sort((x, y) => x - y);
        expect(all).toEqual(Array.from({ length: partitions }, (_, i) => i));
        for (const ps of a.values()) {
          expect(ps.length).toBeGreaterThanOrEqual(Math.floor(partitions / members.length));
          expect(ps.length).toBeLessThanOrEqual(Math.ceil(partitions / members.length));
        }
      }),
    );
  });

  it('moves few partitions when one member joins or leaves', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 128 }), memberIds, fc.stringMatching(/^z[a-z0-9]{0,5}$/), (partitions, members, joiner) => {
        fc.pre(!members.includes(joiner));
        const before = owners(assignPartitions(partitions, members));
        const after = owners(assignPartitions(partitions, [...members, joiner]));
        let moved = 0;
        for (let p = 0; p < partitions; p++) if (before.get(p) !== after.get(p)) moved++;
        // The newcomer's share must move; bounded-load rendezvous moves at most about twice that
        // (a partition displaced from a full member can displace another). Worst seen over
        // 30,000 runs: 2 x share + 4 (36 partitions, 8 members joined by a ninth: 12 moved); the
        // former bound of 2 x share + 2 failed about once in a few hundred CI runs.
        const share = Math.floor(partitions / (members.length + 1));
        expect(moved).toBeGreaterThanOrEqual(share);
        expect(moved).toBeLessThanOrEqual(2 * Math.ceil(partitions / (members.length + 1)) + 4);
      }),
    );
  });

  it('plans no acquisition of a partition whose lease another member holds unexpired, and acquires free or expired ones', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 32 }), memberIds, fc.array(fc.tuple(fc.nat(31), fc.boolean(), fc.boolean()), { maxLength: 32 }), (partitions, members, leaseSpecs) => {
        const self = members[0] as string;
        const now = 1_000_000;
        const leases = new Map<number, Seen>();
        for (const [p, expired, mine] of leaseSpecs) {
          if (p >= partitions) continue;
          leases.set(p, { revision: p + 1, created: expired ? now - 10_000 : now - 100, value: { owner: mine ? self : 'other', epoch: 1 } });
        }
        const want = new Set(assignPartitions(partitions, members).get(self) ?? []);
        const plan = planReconcile({ want, held: new Map<number, HeldView>(), acquiring: new Set(), leases, selfId: self, leaseTtlMs: 5000, now: 0, serverNow: now, leaving: false });
        for (const a of plan.acquire) {
          expect(want.has(a.partition)).toBe(true);
          const l = leases.get(a.partition);
          const mayTake = !l || now - l.created > 5000 || (l.value as { owner: string }).owner === self;
          expect(mayTake).toBe(true);
          expect(a.observedRev).toBe(l?.revision ?? 0);
        }
        const planned = new Set(plan.acquire.map((a) => a.partition));
        for (const p of want) {
          const l = leases.get(p);
          if (!l || now - l.created > 5000) expect(planned.has(p)).toBe(true);
        }
        // Leaving: nothing is acquired, everything held is released.
        const held = new Map<number, HeldView>([...want].map((p) => [p, { releasing: false, hasProcessor: true, restartAt: 0, validUntil: 1 }]));
        const leaving = planReconcile({ want: new Set(), held, acquiring: new Set(), leases, selfId: self, leaseTtlMs: 5000, now: 0, serverNow: now, leaving: true });
        expect(leaving.acquire).toEqual([]);
        expect(new Set(leaving.release)).toEqual(want);
      }),
    );
  });
});

function owners(m: Map<string, number[]>): Map<number, string> {
  const o = new Map<number, string>();
  for (const [id, ps] of m) for (const p of ps) o.set(p, id);
  return o;
}

describe('fold: a record size bound that counts what the record already holds', () => {
  it('refuses a plain operation whose state would not fit beside the timers the record holds', () => {
    const small: FoldEnv = { ...env, maxStateBytes: 400 };
    const timers = [{ id: 't', at: 1, n: 1, op: 'push', type: 'pushlist', key: 'k', input: JSON.stringify('x'.repeat(250)) }];
    const base: CachedRecord = { json: '{"items":[]}', seq: 1, revision: 1, partition: 0, timers };
    const push = (seq: number, n: number): DecodedOp => ({ valid: true, seq, type: 'pushlist', key: 'k', op: 'push', subject: '0.actors.pushlist.k.push', data: enc.encode(String(n)), time: 0, reply: undefined, hasMsgId: false });
    // The first pushes fit beside the timer; once the state grows past what is left, the
    // operation fails with STATE_TOO_LARGE and the state stays as it was.
    const f = foldKey(base, Array.from({ length: 40 }, (_, i) => push(i + 2, 1000 + i)), small);
    expect(f.failures?.length ?? 0).toBeGreaterThan(0);
    expect(f.failures?.every((x) => x.error.code === 'STATE_TOO_LARGE')).toBe(true);
    const items = (JSON.parse(f.rec.json as string) as { items: number[] }).items;
    expect(items.length + (f.failures?.length ?? 0)).toBe(40);
    expect((f.rec.json as string).length + JSON.stringify(timers).length).toBeLessThanOrEqual(400);
  });
});
