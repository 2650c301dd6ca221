import { describe, expect, it } from 'vitest';
import { HandlerError, InvalidInputError, UnknownOperationError, defineActor, type OperationContext } from '../src/internal.js';

const ctx: OperationContext = { type: 't', key: 'k', op: 'o', seq: 1, time: new Date(0) };

const list = defineActor({
  type: 'list',
  initialState: (): string[] => [],
  operations: {
    push: {
      input: (raw: unknown) => {
        if (typeof raw !== 'string') throw new InvalidInputError('push takes a string');
        return raw;
      },
      handler: (state: string[], item: string) => ({ state: [...state, item], result: state.length + 1 }),
    },
    boom: () => {
      throw new Error('kaput');
    },
  },
});

describe('defineActor', () => {
  it('applies typed operations', () => {
    expect(list.apply(['a'], 'push', 'b', ctx)).toEqual({ state: ['a', 'b'], result: 2 });
  });
  it('validates input', () => {
    expect(() => list.apply([], 'push', 3, ctx)).toThrow(InvalidInputError);
    expect(() => list.parseInput('push', 3)).toThrow(InvalidInputError);
  });
  it('rejects unknown operations', () => {
    expect(() => list.apply([], 'pop', undefined, ctx)).toThrow(UnknownOperationError);
    expect(list.hasOperation('$delete')).toBe(true);
    expect(list.hasOperation('pop')).toBe(false);
  });
  it('wraps handler failures', () => {
    expect(() => list.apply([], 'boom', undefined, ctx)).toThrow(HandlerError);
  });
  it('refuses reserved and invalid names', () => {
    expect(() => defineActor({ type: 'a.b', initialState: () => 0, operations: {} })).toThrow();
    expect(() => defineActor({ type: 'x', initialState: () => 0, operations: { $x: (s: number) => ({ state: s, result: 0 }) } })).toThrow(/reserved/);
  });
});
