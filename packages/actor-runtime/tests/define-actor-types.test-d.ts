/**
 * Type tests of `defineActor`: checked by the spec typecheck (`tsc -p tsconfig.spec.json`),
 * never run. Each `@ts-expect-error` line must be a compile error, or the typecheck fails.
 */
import { Type } from '@sinclair/typebox';
import { describe, expectTypeOf, it } from 'vitest';
import { defineActor, type ActorDefinition, type OperationContext, type QueryContext, type StandardSchemaV1, type StateOf } from '../src/internal.js';

/** A Standard Schema of a string that is trimmed (input and output types differ in width). */
const trimmed: StandardSchemaV1<string | number, string> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (v: unknown) => ({ value: String(v).trim() }),
  },
};

const shop = defineActor({
  type: 'shop',
  initialState: () => ({ items: [] as string[], total: 0 }),
  operations: {
    add: {
      input: Type.Object({ item: Type.String(), price: Type.Integer() }),
      handler: (s, input, ctx) => {
        expectTypeOf(input).toEqualTypeOf<{ item: string; price: number }>();
        expectTypeOf(ctx).toEqualTypeOf<OperationContext>();
        return { state: { items: [...s.items, input.item], total: s.total + input.price }, result: s.total + input.price };
      },
    },
    discount: {
      input: Type.Optional(Type.Integer()),
      handler: (s, pct) => {
        expectTypeOf(pct).toEqualTypeOf<number | undefined>();
        return { state: { ...s, total: s.total - Math.floor((s.total * (pct ?? 10)) / 100) }, result: 'ok' as const };
      },
    },
    note: {
      input: trimmed,
      handler: (s, text) => {
        expectTypeOf(text).toEqualTypeOf<string>();
        return { state: s, result: text.length };
      },
    },
    parsed: {
      input: (raw: unknown): Date => new Date(String(raw)),
      handler: (s, when) => {
        expectTypeOf(when).toEqualTypeOf<Date>();
        return { state: s, result: when.toISOString() };
      },
    },
    bare: (s, input) => {
      expectTypeOf(s).toEqualTypeOf<{ items: string[]; total: number }>();
      expectTypeOf(input).toEqualTypeOf<unknown>();
      return { state: s, result: [s.total] };
    },
    clear: () => ({ state: { items: [], total: 0 }, result: null }),
  },
  queries: {
    total: (s, _input, ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<QueryContext>();
      return s.total;
    },
    has: { input: Type.String(), handler: (s, item) => s.items.includes(item) },
  },
});

type Shop = typeof shop;
type Ops = NonNullable<Shop['~types']>['operations'];
type Queries = NonNullable<Shop['~types']>['queries'];

describe('defineActor types', () => {
  it('infers the state', () => {
    expectTypeOf<StateOf<Shop>>().toEqualTypeOf<{ items: string[]; total: number }>();
    expectTypeOf(shop).toExtend<ActorDefinition<{ items: string[]; total: number }>>();
  });

  it('infers what callers send and get for each operation', () => {
    expectTypeOf<Ops['add']>().toEqualTypeOf<{ input: { item: string; price: number }; result: number }>();
    expectTypeOf<Ops['discount']>().toEqualTypeOf<{ input: number | undefined; result: 'ok' }>();
    expectTypeOf<Ops['note']>().toEqualTypeOf<{ input: string | number; result: number }>();
    expectTypeOf<Ops['parsed']>().toEqualTypeOf<{ input: unknown; result: string }>();
    expectTypeOf<Ops['bare']>().toEqualTypeOf<{ input: unknown; result: number[] }>();
    expectTypeOf<Ops['clear']>().toEqualTypeOf<{ input: unknown; result: null }>();
    expectTypeOf<keyof Ops>().toEqualTypeOf<'add' | 'discount' | 'note' | 'parsed' | 'bare' | 'clear'>();
  });

  it('infers queries', () => {
    expectTypeOf<Queries['total']>().toEqualTypeOf<{ input: unknown; result: number }>();
    expectTypeOf<Queries['has']>().toEqualTypeOf<{ input: string; result: boolean }>();
  });

  it('has no queries when none are given', () => {
    const plain = defineActor({ type: 'plain', initialState: () => 0, operations: { inc: (n) => ({ state: n + 1, result: n + 1 }) } });
    expectTypeOf(plain).toExtend<ActorDefinition<number>>();
    expectTypeOf<keyof NonNullable<(typeof plain)['~types']>['queries']>().toEqualTypeOf<never>();
  });

  it('refuses handlers that do not fit their schema or state', () => {
    defineActor({
      type: 'bad',
      initialState: () => 0,
      operations: {
        // @ts-expect-error the schema says string, the handler wants a number
        wrongInput: { input: Type.String(), handler: (s, n: number) => ({ state: s + n, result: 1 }) },
      },
    });
    defineActor({
      type: 'bad',
      initialState: () => 0,
      operations: {
        // @ts-expect-error a bare handler's input is unknown, not a number
        bareTyped: (s, n: number) => ({ state: s + n, result: 1 }),
      },
    });
    defineActor({
      type: 'bad',
      initialState: () => 0,
      operations: {
        // @ts-expect-error the state is a number, not a string
        wrongState: { input: Type.String(), handler: (_s, t) => ({ state: t, result: 1 }) },
      },
    });
    defineActor({
      type: 'bad',
      initialState: () => 0,
      operations: {
        // @ts-expect-error a handler returns { state, result }
        noOutcome: (s) => s + 1,
      },
    });
  });
});
