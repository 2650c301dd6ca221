import { describe, expect, it } from 'vitest';
import { ActorError, InvalidInputError, type OperationContext } from '@jetactor/actor-runtime';
import { counter, parseAddInput } from '../src/index.js';

const ctx = (op: string): OperationContext => ({ type: 'counter', key: 'k', op, seq: 1, time: new Date(0) });

describe('parseAddInput', () => {
  it.each([
    [undefined, 1],
    [null, 1],
    [3, 3],
    [-7, -7],
    [{ value: 2 }, 2],
    [{}, 1],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ])('accepts %j as %d', (raw, want) => {
    expect(parseAddInput(raw)).toBe(want);
  });

  it.each([[1.5], ['3'], [true], [[1]], [{ value: '2' }], [{ value: 1, extra: 2 }], [Number.MAX_SAFE_INTEGER + 2], [Infinity], [NaN]])(
    'rejects %j',
    (raw) => {
      expect(() => parseAddInput(raw)).toThrow(InvalidInputError);
    },
  );
});

describe('counter', () => {
  it('adds, resets and gets', () => {
    expect(counter.apply(0, 'add', 3, ctx('add'))).toEqual({ state: 3, result: 3 });
    expect(counter.apply(3, 'add', { value: 2 }, ctx('add'))).toEqual({ state: 5, result: 5 });
    expect(counter.apply(5, 'add', undefined, ctx('add'))).toEqual({ state: 6, result: 6 });
    expect(counter.apply(6, 'get', undefined, ctx('get'))).toEqual({ state: 6, result: 6 });
    expect(counter.apply(6, 'reset', undefined, ctx('reset'))).toEqual({ state: 0, result: 0 });
  });

  it('refuses a result outside the safe integer range and keeps the state', () => {
    const err = (() => {
      try {
        counter.apply(Number.MAX_SAFE_INTEGER, 'add', 1, ctx('add'));
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ActorError);
    expect((err as ActorError).code).toBe('RESULT_OUT_OF_RANGE');
  });

  it('refuses input for reset and get', () => {
    expect(() => counter.apply(1, 'reset', 5, ctx('reset'))).toThrow(InvalidInputError);
    expect(() => counter.apply(1, 'get', 'x', ctx('get'))).toThrow(InvalidInputError);
  });

  it('is deterministic', () => {
    const ops: Array<[string, unknown]> = [['add', 5], ['add', { value: -2 }], ['reset', undefined], ['add', 9]];
    const run = () => ops.reduce((s, [op, input]) => counter.apply(s, op, input, ctx(op)).state, 0);
    expect(run()).toBe(9);
    expect(run()).toBe(run());
  });
});
