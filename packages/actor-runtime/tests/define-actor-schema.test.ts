/**
 * `defineActor` without a server: input schemas (TypeBox and Standard Schema) accept and
 * reject with messages that name what is wrong, the parser and bare forms keep working,
 * queries, and the serializable `describe()`.
 */
import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import {
  ActorError,
  ConfigError,
  ErrorCode,
  HandlerError,
  InvalidInputError,
  defineActor,
  type OperationContext,
  type QueryContext,
  type StandardSchemaV1,
} from '../src/internal.js';

const ctx: OperationContext = { type: 'cart', key: 'k', op: 'o', seq: 1, time: new Date(0) };
const qctx: QueryContext = { type: 'cart', key: 'k', query: 'q', seq: 1, exists: true };

const Item = Type.Object(
  { sku: Type.String({ minLength: 1, maxLength: 8 }), qty: Type.Integer({ minimum: 1, maximum: 99 }), tags: Type.Optional(Type.Array(Type.String(), { maxItems: 2 })) },
  { additionalProperties: false },
);

/** A Standard Schema (as zod or valibot would give) of a positive number, with a JSON Schema. */
const positive: StandardSchemaV1<number> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (v) => (typeof v === 'number' && v > 0 ? { value: v } : { issues: [{ message: 'expected a positive number', path: [{ key: 'amount' }] }] }),
    jsonSchema: { input: () => ({ type: 'number', exclusiveMinimum: 0 }) },
  },
};

const cart = defineActor({
  type: 'cart',
  initialState: () => ({ items: [] as Array<{ sku: string; qty: number }>, credit: 0 }),
  operations: {
    add: { input: Item, handler: (s, item) => ({ state: { ...s, items: [...s.items, { sku: item.sku, qty: item.qty }] }, result: s.items.length + 1 }) },
    remove: { input: Type.Optional(Type.String()), handler: (s, sku) => ({ state: { ...s, items: s.items.filter((i) => sku !== undefined && i.sku !== sku) }, result: null }) },
    mode: { input: Type.Union([Type.Literal('fast'), Type.Literal('slow')]), handler: (s, m) => ({ state: s, result: m }) },
    credit: { input: positive, handler: (s, n) => ({ state: { ...s, credit: s.credit + n }, result: s.credit + n }) },
    parsed: {
      input: (raw: unknown): number => {
        if (typeof raw !== 'number') throw new InvalidInputError('parsed takes a number');
        return raw;
      },
      handler: (s, n) => ({ state: s, result: n * 2 }),
    },
    echo: (s, input) => ({ state: s, result: input }),
    fail: () => {
      throw new Error('kaput');
    },
    refuse: () => {
      throw new ActorError('OUT_OF_STOCK', 'no more');
    },
  },
  queries: {
    count: (s) => s.items.length,
    has: { input: Type.String(), handler: (s, sku, c) => ({ has: s.items.some((i) => i.sku === sku), seq: c.seq }) },
    boom: () => {
      throw new Error('query bug');
    },
  },
});

const empty = cart.initialState();

function errorOf(fn: () => unknown): ActorError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ActorError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('TypeBox input schemas', () => {
  it('accept valid input and hand it to the handler', () => {
    expect(cart.apply(empty, 'add', { sku: 'a1', qty: 2 }, ctx)).toEqual({ state: { items: [{ sku: 'a1', qty: 2 }], credit: 0 }, result: 1 });
    expect(cart.parseInput('add', { sku: 'a1', qty: 2, tags: ['x'] })).toEqual({ sku: 'a1', qty: 2, tags: ['x'] });
    expect(cart.apply(empty, 'mode', 'slow', ctx).result).toBe('slow');
  });

  it.each([
    [{ sku: 'a1' }, 'add: input.qty is required'],
    [{ sku: 'a1', qty: 1.5 }, 'add: input.qty must be an integer, got 1.5'],
    [{ sku: 'a1', qty: 100 }, 'add: input.qty must be <= 99, got 100'],
    [{ sku: '', qty: 1 }, 'add: input.sku must be at least 1 characters long, got the string ""'],
    [{ sku: 'a1', qty: 1, colour: 'red' }, 'add: unexpected property "colour" in input'],
    [{ sku: 'a1', qty: 1, tags: ['x', 'y', 'z'] }, 'add: input.tags must have at most 2 items'],
    [{ sku: 'a1', qty: 1, tags: ['x', 3] }, 'add: input.tags[1] must be a string, got 3'],
    ['a1', 'add: input must be an object, got the string "a1"'],
    [[1], 'add: input must be an object, got an array'],
    [null, 'add: input must be an object, got null'],
    [undefined, 'add: input is required'],
  ])('reject %j: %s', (raw, message) => {
    const err = errorOf(() => cart.apply(empty, 'add', raw, ctx));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.code).toBe(ErrorCode.InvalidInput);
    expect(err.message).toBe(message);
  });

  it('names the alternatives of a union', () => {
    expect(errorOf(() => cart.parseInput('mode', 'medium')).message).toBe('mode: input must be "fast" or "slow", got the string "medium"');
    expect(errorOf(() => cart.parseInput('mode', 3)).message).toBe('mode: input must be "fast" or "slow", got 3');
  });

  it('let an optional input be left out, and only then', () => {
    expect(cart.parseInput('remove', undefined)).toBeUndefined();
    expect(cart.parseInput('remove', 'a1')).toBe('a1');
    expect(errorOf(() => cart.parseInput('remove', null)).message).toBe('remove: input must be a string, got null');
  });
});

describe('Standard Schema inputs', () => {
  it('validate with the schema and pass its output on', () => {
    expect(cart.apply(empty, 'credit', 5, ctx)).toEqual({ state: { items: [], credit: 5 }, result: 5 });
  });

  it("reject with the schema's first issue and its path", () => {
    const err = errorOf(() => cart.parseInput('credit', -1));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toBe('credit: input.amount: expected a positive number');
  });

  it('refuse a schema that validates asynchronously, at the first input', () => {
    const lazy = defineActor({
      type: 'lazy',
      initialState: () => 0,
      operations: {
        op: { input: { '~standard': { version: 1, vendor: 'async', validate: (v: unknown) => Promise.resolve({ value: v }) } } satisfies StandardSchemaV1, handler: (s) => ({ state: s, result: 1 }) },
      },
    });
    expect(() => lazy.parseInput('op', 1)).toThrow(ConfigError);
    expect(() => lazy.parseInput('op', 1)).toThrow(/validates asynchronously/);
  });
});

describe('parser and bare forms', () => {
  it('run the parser, whose error stands', () => {
    expect(cart.apply(empty, 'parsed', 4, ctx).result).toBe(8);
    expect(errorOf(() => cart.apply(empty, 'parsed', 'x', ctx)).message).toBe('parsed takes a number');
  });

  it('hand a bare handler the raw input', () => {
    expect(cart.apply(empty, 'echo', { any: ['thing'] }, ctx).result).toEqual({ any: ['thing'] });
    expect(cart.apply(empty, 'echo', undefined, ctx).result).toBeUndefined();
  });

  it('wrap a thrown error as HANDLER_ERROR and keep an ActorError as it is', () => {
    const failed = errorOf(() => cart.apply(empty, 'fail', undefined, ctx));
    expect(failed).toBeInstanceOf(HandlerError);
    expect(failed.message).toBe("handler 'fail' of 'cart' failed: kaput");
    const refused = errorOf(() => cart.apply(empty, 'refuse', undefined, ctx));
    expect([refused.code, refused.message]).toEqual(['OUT_OF_STOCK', 'no more']);
  });

  it('refuse an entry or input source of no known kind at definition', () => {
    expect(() => defineActor({ type: 'x', initialState: () => 0, operations: { op: 3 as never } })).toThrow(/must be a handler function or \{ input, handler \}/);
    expect(() =>
      defineActor({ type: 'x', initialState: () => 0, operations: { op: { input: { type: 'string' } as never, handler: (s: number) => ({ state: s, result: 0 }) } } }),
    ).toThrow("op: input must be a TypeBox schema, a Standard Schema or a parser function");
    expect(() => defineActor({ type: 'query', initialState: () => 0, operations: {} })).toThrow(/not 'call', 'query'/);
    expect(() => defineActor({ type: 'x', initialState: () => 0, operations: {}, queries: { $q: () => 0 } })).toThrow(/query '\$q' is reserved/);
  });
});

describe('queries', () => {
  const state = { items: [{ sku: 'a1', qty: 1 }], credit: 0 };

  it('answer from the state, with their context', () => {
    expect(cart.query(state, 'count', undefined, qctx)).toBe(1);
    expect(cart.query(state, 'has', 'a1', { ...qctx, seq: 7 })).toEqual({ has: true, seq: 7 });
    expect(cart.hasQuery('count')).toBe(true);
    expect(cart.hasQuery('add')).toBe(false);
    expect(cart.queryNames).toEqual(['count', 'has', 'boom']);
  });

  it('validate their input', () => {
    const err = errorOf(() => cart.query(state, 'has', 5, qctx));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toBe('query has: input must be a string, got 5');
  });

  it('fail as UNKNOWN_OPERATION for an unknown name, and as HANDLER_ERROR when they throw', () => {
    const unknown = errorOf(() => cart.query(state, 'nope', undefined, qctx));
    expect([unknown.code, unknown.message]).toEqual([ErrorCode.UnknownOperation, "actor 'cart' has no query 'nope'"]);
    const boom = errorOf(() => cart.query(state, 'boom', undefined, qctx));
    expect([boom.code, boom.message]).toEqual([ErrorCode.HandlerError, "query 'boom' of 'cart' failed: query bug"]);
  });
});

describe('describe()', () => {
  it('lists every operation and query with its input JSON Schema, as plain JSON', () => {
    const d = cart.describe();
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    expect(d).toEqual({
      type: 'cart',
      version: 1,
      operations: {
        add: {
          input: {
            type: 'object',
            additionalProperties: false,
            required: ['sku', 'qty'],
            properties: {
              sku: { type: 'string', minLength: 1, maxLength: 8 },
              qty: { type: 'integer', minimum: 1, maximum: 99 },
              tags: { type: 'array', items: { type: 'string' }, maxItems: 2 },
            },
          },
        },
        remove: { input: { type: 'string' }, inputOptional: true },
        mode: { input: { anyOf: [{ const: 'fast', type: 'string' }, { const: 'slow', type: 'string' }] } },
        credit: { input: { type: 'number', exclusiveMinimum: 0 } },
        parsed: {},
        echo: {},
        fail: {},
        refuse: {},
      },
      queries: { count: {}, has: { input: { type: 'string' } }, boom: {} },
    });
  });

  it('gives a fresh copy each time', () => {
    const first = cart.describe();
    first.operations.add = {};
    expect(cart.describe().operations.add?.input).toBeDefined();
  });
});
