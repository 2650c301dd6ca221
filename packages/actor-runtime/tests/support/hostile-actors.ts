import { ActorError, defineActor } from '../../src/internal.js';

/** An actor whose state is an object with an array, and whose handlers change it in place. */
export const pushList = defineActor({
  type: 'pushlist',
  initialState: (): { items: number[] } => ({ items: [] }),
  operations: {
    // Mutates its input state and returns the same reference: the write must not be lost.
    push: (s: { items: number[] }, n: unknown) => {
      s.items.push(Number(n));
      return { state: s, result: s.items.length };
    },
    // Mutates in place, then throws: the committed state must not show the change.
    pushThenThrow: (s: { items: number[] }) => {
      s.items.push(-1);
      throw new Error('changed my mind');
    },
    get: (s: { items: number[] }) => ({ state: s, result: s }),
  },
});

/** An actor whose handlers return what cannot be stored, or junk. */
export const hostile = defineActor({
  type: 'hostile',
  initialState: (): Record<string, unknown> => ({ n: 0 }),
  operations: {
    inc: (s: Record<string, unknown>) => ({ state: { ...s, n: Number(s.n) + 1 }, result: Number(s.n) + 1 }),
    bigint: () => ({ state: { n: BigInt(1) }, result: 1 }),
    cycle: () => {
      const o: Record<string, unknown> = { n: 1 };
      o.self = o;
      return { state: o, result: 1 };
    },
    huge: (s: Record<string, unknown>, size: unknown) => ({ state: { ...s, blob: 'x'.repeat(Number(size)) }, result: 1 }),
    badResult: (s: Record<string, unknown>) => ({ state: s, result: BigInt(2) }),
    fnState: () => ({ state: (() => 1) as unknown as Record<string, unknown>, result: 1 }),
    junk: () => 42 as unknown as { state: Record<string, unknown>; result: unknown },
    noState: () => ({ result: 1 }) as unknown as { state: Record<string, unknown>; result: unknown },
    // Values JSON turns into something else: the cache must hold what KV holds.
    odd: (s: Record<string, unknown>) => ({
      state: { ...s, at: new Date(0), map: new Map([[1, 2]]), gone: undefined, nan: Number.NaN },
      result: null,
    }),
    // Reports what a handler sees of the state, to prove it is the stored JSON.
    inspect: (s: Record<string, unknown>) => ({
      state: s,
      result: { at: typeof s.at, map: JSON.stringify(s.map), hasGone: 'gone' in s, nan: s.nan },
    }),
    get: (s: Record<string, unknown>) => ({ state: s, result: s }),
    // Errors that must not become a header or a reply that cannot be sent.
    badCode: () => {
      throw new ActorError('BAD\r\nCODE', 'a code with a newline');
    },
    hugeError: () => {
      throw new Error('x'.repeat(2 * 1024 * 1024));
    },
  },
});
