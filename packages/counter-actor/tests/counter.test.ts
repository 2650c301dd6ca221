import { describe, expect, it } from 'vitest';
import { ActorError, InvalidInputError, type OperationContext, type QueryContext } from '@jetactor/actor-runtime';
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

describe('counter input messages', () => {
  it.each([
    ['3', 'add: input must be an integer or {"value": <integer>}, got the string "3"'],
    [1.5, 'add: input must be an integer, got 1.5'],
    [[1], 'add: input must be an integer or {"value": <integer>}, got an array'],
    [{ value: '2' }, 'add: input.value must be an integer, got the string "2"'],
    [{ value: 1, extra: 2 }, 'add: unexpected property "extra" in input'],
    [Number.MAX_SAFE_INTEGER + 1, `add: input must be <= ${Number.MAX_SAFE_INTEGER}, got ${Number.MAX_SAFE_INTEGER + 1}`],
  ])('add %j: %s', (raw, message) => {
    expect(() => counter.parseInput('add', raw)).toThrow(new InvalidInputError(message));
  });

  it('reset and get name what they take', () => {
    expect(() => counter.parseInput('reset', 5)).toThrow('reset: input must be nothing, null or {}, got 5');
    expect(() => counter.parseInput('get', { a: 1 })).toThrow('get: unexpected property "a" in input');
  });
});

describe('counter query and description', () => {
  const qctx: QueryContext = { type: 'counter', key: 'k', query: 'get', seq: 3, exists: true };

  it('answers the query get from the state, and refuses input', () => {
    expect(counter.query(7, 'get', undefined, qctx)).toBe(7);
    expect(counter.query(7, 'get', {}, qctx)).toBe(7);
    expect(() => counter.query(7, 'get', 1, qctx)).toThrow(InvalidInputError);
  });

  it('describes add, reset, get and the query get with their JSON Schemas', () => {
    const safe = { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER };
    const none = { input: { description: 'nothing, null or {}', anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: false, properties: {} }] }, inputOptional: true };
    expect(counter.describe()).toEqual({
      type: 'counter',
      version: 1,
      operations: {
        add: {
          input: {
            description: 'an integer or {"value": <integer>}',
            anyOf: [safe, { type: 'object', additionalProperties: false, properties: { value: safe } }, { type: 'null' }],
          },
          inputOptional: true,
        },
        reset: none,
        get: none,
      },
      queries: { get: none },
    });
  });
});
