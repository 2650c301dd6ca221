/**
 * Type tests of the typed client: checked by the spec typecheck, never run. Each
 * `@ts-expect-error` line must be a compile error, or the typecheck fails.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { NoInput, Type, createTypedClient, defineActor, type ActorClient, type SignalResult, type TypedCallResult, type TypedSnapshot } from '../src/internal.js';

const tally = defineActor({
  type: 'tally',
  initialState: (): { counts: Record<string, number> } => ({ counts: {} }),
  operations: {
    bump: {
      input: Type.Object({ name: Type.String(), by: Type.Optional(Type.Integer()) }),
      handler: (s, { name, by }) => {
        const n = (s.counts[name] ?? 0) + (by ?? 1);
        return { state: { counts: { ...s.counts, [name]: n } }, result: n };
      },
    },
    clear: { input: NoInput, handler: () => ({ state: { counts: {} }, result: true as const }) },
    note: (s, text) => ({ state: s, result: String(text) }),
  },
  queries: {
    count: { input: Type.String(), handler: (s, name) => s.counts[name] ?? 0 },
    names: (s) => Object.keys(s.counts),
  },
});

declare const client: ActorClient;
const t = createTypedClient(client).actor(tally);

describe('typed client types', () => {
  it('types call results from the handlers', () => {
    expectTypeOf(t.call('k1', 'bump', { name: 'a' })).toEqualTypeOf<Promise<number>>();
    expectTypeOf(t.call('k1', 'clear')).toEqualTypeOf<Promise<true>>();
    expectTypeOf(t.call('k1', 'note', 'anything', { timeoutMs: 100 })).toEqualTypeOf<Promise<string>>();
    expectTypeOf(t.callWithSeq('k1', 'bump', { name: 'a', by: 2 })).toEqualTypeOf<Promise<TypedCallResult<number>>>();
  });

  it('types signals, reads and queries', () => {
    expectTypeOf(t.signal('k1', 'bump', { name: 'a' }, { idempotencyKey: 'x' })).toEqualTypeOf<Promise<SignalResult>>();
    expectTypeOf(t.read('k1')).toEqualTypeOf<Promise<TypedSnapshot<{ counts: Record<string, number> }>>>();
    expectTypeOf(t.query('k1', 'count', 'a')).toEqualTypeOf<Promise<number>>();
    expectTypeOf(t.query('k1', 'names', undefined, { minSeq: 3 })).toEqualTypeOf<Promise<string[]>>();
  });

  it('refuses unknown operations and queries, and wrong inputs', () => {
    // @ts-expect-error no operation 'bmp'
    void t.call('k1', 'bmp', { name: 'a' });
    // @ts-expect-error bump takes { name: string }, not a number
    void t.call('k1', 'bump', 3);
    // @ts-expect-error bump's input is required
    void t.signal('k1', 'bump');
    // @ts-expect-error by must be a number
    void t.callWithSeq('k1', 'bump', { name: 'a', by: '2' });
    // @ts-expect-error clear takes no input
    void t.call('k1', 'clear', 5);
    // @ts-expect-error 'count' is a query, not an operation
    void t.call('k1', 'count', 'a');
    // @ts-expect-error no query 'bump'
    void t.query('k1', 'bump', { name: 'a' });
    // @ts-expect-error count takes a string
    void t.query('k1', 'count', 1);
  });
});
