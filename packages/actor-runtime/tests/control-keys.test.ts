import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildControlKey, controlKeys, parseControlKey, parseUnitKey, type ControlKey } from '../src/protocol/index.js';

const token = fc.stringMatching(/^[A-Za-z0-9_=-]{1,20}$/);
const lane = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,15}$/).filter((l) => l !== 'default');
const partition = fc.integer({ min: 0, max: 100_000 });

/** Every kind of control key, with the values that name it. */
const anyKey: fc.Arbitrary<ControlKey> = fc.oneof(
  token.map((id) => ({ kind: 'member', id }) as const),
  fc.record({ partition, lane: fc.option(lane, { nil: undefined }) }).map(({ partition: p, lane: l }) => (l === undefined ? { kind: 'lease' as const, partition: p } : { kind: 'lease' as const, partition: p, lane: l })),
  fc.record({ partition, lane: fc.option(lane, { nil: undefined }) }).map(({ partition: p, lane: l }) => (l === undefined ? { kind: 'checkpoint' as const, partition: p } : { kind: 'checkpoint' as const, partition: p, lane: l })),
  lane.map((id) => ({ kind: 'lane', id }) as const),
  token.map((type) => ({ kind: 'type', type }) as const),
  fc.record({ partition, type: token, key: token }).map((x) => ({ kind: 'unsent', partition: x.partition, stateKey: `${x.type}.${x.key}` }) as const),
  token.map((capture) => ({ kind: 'bindingPosition', capture: `ACTORS_BIND_${capture}` }) as const),
  fc.constantFrom<ControlKey>({ kind: 'bindingsLock' }, { kind: 'retention' }, { kind: 'salt' }),
);

describe('control keys', () => {
  it('parse(build(x)) is x for every kind', () => {
    fc.assert(
      fc.property(anyKey, (k) => {
        expect(parseControlKey(buildControlKey(k))).toEqual(k);
      }),
      { numRuns: 2000 },
    );
  });

  it('are the keys of the wire contract', () => {
    expect(controlKeys.member('w1')).toBe('members.w1');
    expect(controlKeys.lease(3)).toBe('leases.3');
    expect(controlKeys.lease(3, 'default')).toBe('leases.3');
    expect(controlKeys.lease(3, 'billing')).toBe('leases.billing.3');
    expect(controlKeys.checkpoint(7, 'billing')).toBe('checkpoints.billing.7');
    expect(controlKeys.lane('billing')).toBe('lanes.billing');
    expect(controlKeys.type('counter')).toBe('types.counter');
    expect(controlKeys.unsent(2, 'counter.k1')).toBe('unsent.2.counter.k1');
    expect(controlKeys.bindingPosition('ACTORS_BIND_x')).toBe('bindings.pos.ACTORS_BIND_x');
    expect([controlKeys.bindingsLock, controlKeys.retention, controlKeys.salt]).toEqual(['bindings.lock', 'retention', 'salt']);
  });

  it('parses no key of another shape', () => {
    for (const k of ['leases.', 'leases.x', 'checkpoints.a.b', 'unsent.x.counter.k', 'unsent.3', 'members.', 'other', 'bindings.pos.']) expect(parseControlKey(k), k).toBeNull();
    expect(parseUnitKey('leases.', 'leases.default.4')).toEqual({ partition: 4 });
  });
});
