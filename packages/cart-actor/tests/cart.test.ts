import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ConfigError, InvalidInputError, type ActorError, type OperationContext, type QueryContext } from '@jetactor/actor-runtime';
import {
  CART_EMPTY,
  CART_FULL,
  CART_NOT_IDLE,
  DEFAULT_CART_IDLE_MS,
  MAX_CART_IDLE_MS,
  MAX_LINES,
  MAX_LINE_QTY,
  NOT_IN_CART,
  QUANTITY_LIMIT,
  cart,
  order,
  orderKeyOf,
  type CartState,
} from '../src/index.js';

const T0 = Date.UTC(2026, 0, 1);
const at = (ms: number) => new Date(T0 + ms);
const iso = (ms: number) => at(ms).toISOString();
const ctx = (op: string, ms = 0, extra: Partial<OperationContext> = {}): OperationContext => ({ type: 'cart', key: 'c1', op, seq: 7, time: at(ms), ...extra });
const qctx: QueryContext = { type: 'cart', key: 'c1', query: 'items', seq: 1, exists: true };
const IDLE = 1000;
const c = cart({ idleMs: IDLE });

const rearm = (afterMs = IDLE) => [{ id: 'idle', afterMs, op: 'expire' }];
const withItems = (items: CartState['items'], changedMs = 0): CartState => ({ items, changedAt: iso(changedMs) });

/** Matches a thrown ActorError of `code` (and `message`, when given). */
const failsWith = (code: string, message?: string): unknown => expect.objectContaining({ name: 'ActorError', code, ...(message === undefined ? {} : { message }) });

describe('cart', () => {
  it('starts empty, never changed', () => {
    expect(c.initialState()).toEqual({ items: [], changedAt: null });
  });

  it('adds a line, and adds to the line of a sku it holds, re-arming the idle timer each time', () => {
    const one = c.apply(c.initialState(), 'add', { sku: 'apple', qty: 2 }, ctx('add', 10));
    expect(one).toEqual({ state: withItems([{ sku: 'apple', qty: 2 }], 10), result: { items: [{ sku: 'apple', qty: 2 }] }, schedule: rearm() });
    const two = c.apply(structuredClone(one.state), 'add', { sku: 'pear', qty: 1 }, ctx('add', 20));
    const three = c.apply(structuredClone(two.state), 'add', { sku: 'apple', qty: 3 }, ctx('add', 30));
    expect(three).toEqual({
      state: withItems([{ sku: 'apple', qty: 5 }, { sku: 'pear', qty: 1 }], 30),
      result: { items: [{ sku: 'apple', qty: 5 }, { sku: 'pear', qty: 1 }] },
      schedule: rearm(),
    });
  });

  it('removes a line, re-arming the timer; removing the last line cancels it', () => {
    const state = withItems([{ sku: 'apple', qty: 5 }, { sku: 'pear', qty: 1 }]);
    const one = c.apply(structuredClone(state), 'remove', { sku: 'apple' }, ctx('remove', 50));
    expect(one).toEqual({ state: withItems([{ sku: 'pear', qty: 1 }], 50), result: { items: [{ sku: 'pear', qty: 1 }] }, schedule: rearm() });
    expect(c.apply(structuredClone(one.state), 'remove', { sku: 'pear' }, ctx('remove', 60))).toEqual({
      state: withItems([], 60),
      result: { items: [] },
      cancel: ['idle'],
    });
  });

  it('refuses to remove a sku it does not hold (NOT_IN_CART), the state unchanged', () => {
    const state = withItems([{ sku: 'apple', qty: 1 }]);
    expect(() => c.apply(state, 'remove', { sku: 'pear' }, ctx('remove', 5))).toThrow(failsWith(NOT_IN_CART, "the cart holds no 'pear'"));
    expect(state).toEqual(withItems([{ sku: 'apple', qty: 1 }]));
    expect(() => c.apply(c.initialState(), 'remove', { sku: 'pear' }, ctx('remove'))).toThrow(failsWith(NOT_IN_CART));
  });

  it(`holds at most ${MAX_LINE_QTY} of a sku (QUANTITY_LIMIT) and ${MAX_LINES} lines (CART_FULL)`, () => {
    const near = withItems([{ sku: 'a', qty: MAX_LINE_QTY - 1 }]);
    expect(c.apply(structuredClone(near), 'add', { sku: 'a', qty: 1 }, ctx('add')).state.items).toEqual([{ sku: 'a', qty: MAX_LINE_QTY }]);
    expect(() => c.apply(near, 'add', { sku: 'a', qty: 2 }, ctx('add'))).toThrow(failsWith(QUANTITY_LIMIT));
    expect(near.items).toEqual([{ sku: 'a', qty: MAX_LINE_QTY - 1 }]);

    const full = withItems(Array.from({ length: MAX_LINES }, (_, i) => ({ sku: `s${i}`, qty: 1 })));
    expect(() => c.apply(full, 'add', { sku: 'new', qty: 1 }, ctx('add'))).toThrow(failsWith(CART_FULL));
    expect(full.items).toHaveLength(MAX_LINES);
    // a sku it holds can still grow
    expect(c.apply(structuredClone(full), 'add', { sku: 's0', qty: 1 }, ctx('add')).state.items[0]).toEqual({ sku: 's0', qty: 2 });
  });

  it('checks out: sends place to the order <cartKey>-<seq>, empties the cart and cancels the idle timer', () => {
    const items = [{ sku: 'apple', qty: 5 }, { sku: 'pear', qty: 1 }];
    expect(c.apply(withItems(structuredClone(items)), 'checkout', undefined, ctx('checkout', 99, { seq: 42 }))).toEqual({
      state: withItems([], 99),
      result: { order: 'c1-42', items },
      send: [{ type: 'order', key: 'c1-42', op: 'place', input: { cart: 'c1', items } }],
      cancel: ['idle'],
    });
  });

  it('refuses to check out an empty cart (CART_EMPTY)', () => {
    expect(() => c.apply(c.initialState(), 'checkout', undefined, ctx('checkout'))).toThrow(failsWith(CART_EMPTY));
    expect(() => c.apply(withItems([], 5), 'checkout', {}, ctx('checkout'))).toThrow(failsWith(CART_EMPTY));
  });

  it('makes order keys that are valid actor keys, unique per cart and checkout, even for the longest cart keys', () => {
    expect(orderKeyOf('c1', 42)).toBe('c1-42');
    const long = 'k'.repeat(128);
    const key = orderKeyOf(long, 123456789);
    expect(key).toMatch(/^[A-Za-z0-9_=-]{1,128}$/);
    expect(key.endsWith('-123456789')).toBe(true);
    expect(orderKeyOf(`${'k'.repeat(127)}x`, 123456789)).not.toBe(key);
    expect(orderKeyOf(long, 123456790)).not.toBe(key);
    expect(orderKeyOf('k'.repeat(120), 1)).toBe(`${'k'.repeat(120)}-1`);
    const out = c.apply(withItems([{ sku: 'a', qty: 1 }]), 'checkout', undefined, ctx('checkout', 0, { key: long, seq: 5 }));
    expect(out.send?.[0]?.key).toBe(orderKeyOf(long, 5));
    expect(out.send?.[0]?.key?.length).toBeLessThanOrEqual(128);
  });

  describe('expire', () => {
    const state = () => withItems([{ sku: 'apple', qty: 1 }], 100);

    it('fired by the idle timer once the cart was idle long enough: clears it (the spent timer needs no cancel)', () => {
      expect(c.apply(state(), 'expire', undefined, ctx('expire', 100 + IDLE, { timer: 'idle' }))).toEqual({
        state: withItems([], 100 + IDLE),
        result: { expired: true },
      });
      expect(c.apply(state(), 'expire', undefined, ctx('expire', 100 + 5 * IDLE, { timer: 'idle' })).state.items).toEqual([]);
    });

    it('fired by the idle timer early (the idle time grew since it was set): keeps the cart and re-arms for the rest', () => {
      expect(c.apply(state(), 'expire', undefined, ctx('expire', 100 + 400, { timer: 'idle' }))).toEqual({
        state: state(),
        result: { expired: false },
        schedule: rearm(IDLE - 400),
      });
    });

    it('called by a client: clears an idle cart and cancels its timer; refuses a cart changed recently (CART_NOT_IDLE)', () => {
      expect(c.apply(state(), 'expire', undefined, ctx('expire', 100 + IDLE))).toEqual({
        state: withItems([], 100 + IDLE),
        result: { expired: true },
        cancel: ['idle'],
      });
      const s = state();
      expect(() => c.apply(s, 'expire', undefined, ctx('expire', 100 + IDLE - 1))).toThrow(failsWith(CART_NOT_IDLE, `the cart changed ${IDLE - 1} ms ago; it expires after ${IDLE} ms`));
      expect(s).toEqual(state());
      // another timer of the cart is not the idle timer
      expect(() => c.apply(state(), 'expire', undefined, ctx('expire', 100, { timer: 'other' }))).toThrow(failsWith(CART_NOT_IDLE));
    });

    it('on an empty cart does nothing, however it came', () => {
      for (const timer of [undefined, 'idle']) {
        const empty = withItems([], 0);
        expect(c.apply(empty, 'expire', undefined, ctx('expire', 0, timer ? { timer } : {}))).toEqual({ state: empty, result: { expired: false } });
      }
    });
  });

  it.each([
    [undefined, 'input is required'],
    [{}, 'input.sku is required'],
    [{ sku: 'a' }, 'input.qty is required'],
    [{ qty: 1 }, 'input.sku is required'],
    [{ sku: 'a', qty: 0 }, 'input.qty'],
    [{ sku: 'a', qty: -2 }, 'input.qty'],
    [{ sku: 'a', qty: 1.5 }, 'input.qty'],
    [{ sku: 'a', qty: '2' }, 'input.qty'],
    [{ sku: 'a', qty: MAX_LINE_QTY + 1 }, 'input.qty'],
    [{ sku: 'a', qty: Number.MAX_SAFE_INTEGER + 1 }, 'input.qty'],
    [{ sku: '', qty: 1 }, 'input.sku'],
    [{ sku: 'a b', qty: 1 }, 'input.sku'],
    [{ sku: 's'.repeat(65), qty: 1 }, 'input.sku'],
    [{ sku: 5, qty: 1 }, 'input.sku'],
    [{ sku: 'a', qty: 1, price: 3 }, 'price'],
    ['apple', 'input'],
  ])('add rejects the input %j, naming the field', (raw, field) => {
    expect(() => c.parseInput('add', raw)).toThrow(InvalidInputError);
    expect(() => c.apply(c.initialState(), 'add', raw, ctx('add'))).toThrow(field);
  });

  it.each([
    [undefined, 'input is required'],
    [{}, 'input.sku is required'],
    [{ sku: '' }, 'input.sku'],
    [{ sku: 'a', qty: 1 }, 'qty'],
    [{ sku: ['a'] }, 'input.sku'],
  ])('remove rejects the input %j, naming the field', (raw, field) => {
    expect(() => c.parseInput('remove', raw)).toThrow(InvalidInputError);
    expect(() => c.apply(withItems([{ sku: 'a', qty: 1 }]), 'remove', raw, ctx('remove'))).toThrow(field);
  });

  it.each(['checkout', 'expire'])('%s takes no input (nothing, null or {})', (op) => {
    for (const ok of [undefined, null, {}]) expect(() => c.parseInput(op, ok)).not.toThrow();
    for (const bad of [1, 'x', { sku: 'a' }, []]) expect(() => c.parseInput(op, bad)).toThrow(InvalidInputError);
  });

  it('answers the query items from the state', () => {
    expect(c.query(withItems([{ sku: 'a', qty: 2 }]), 'items', undefined, qctx)).toEqual({ items: [{ sku: 'a', qty: 2 }] });
    expect(c.query(c.initialState(), 'items', {}, qctx)).toEqual({ items: [] });
  });

  it('describes its operations and query with their input JSON Schemas', () => {
    const d = c.describe();
    expect(Object.keys(d.operations).sort()).toEqual(['add', 'checkout', 'expire', 'remove']);
    expect(d.operations.add?.input).toMatchObject({ type: 'object', required: ['sku', 'qty'], additionalProperties: false, properties: { qty: { type: 'integer', minimum: 1 } } });
    expect(d.operations.checkout).toMatchObject({ inputOptional: true });
    expect(Object.keys(d.queries)).toEqual(['items']);
  });

  it('depends only on state, input and ctx: the same call gives the same outcome', () => {
    const run = () => c.apply(withItems([{ sku: 'a', qty: 1 }]), 'add', { sku: 'b', qty: 2 }, ctx('add', 5));
    expect(run()).toEqual(run());
  });

  it('follows a model over random sequences: lines add up, the idle timer is armed exactly while the cart holds something', () => {
    const sku = fc.constantFrom('a', 'b', 'c', 'd');
    const step = fc.oneof(
      fc.record({ op: fc.constant('add'), input: fc.record({ sku, qty: fc.integer({ min: 1, max: 9 }) }) }),
      fc.record({ op: fc.constant('remove'), input: fc.record({ sku }) }),
      fc.record({ op: fc.constant('checkout'), input: fc.constant(undefined) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        let state = c.initialState();
        const model = new Map<string, number>();
        let armed = false;
        const placed: Array<Array<{ sku: string; qty: number }>> = [];
        steps.forEach(({ op, input }, i) => {
          const before = structuredClone(state);
          try {
            const out = c.apply(structuredClone(state), op, input, ctx(op, i * 10, { seq: i + 1 }));
            state = out.state;
            if (out.schedule) {
              expect(out.schedule).toEqual(rearm());
              armed = true;
            }
            if (out.cancel) {
              expect(out.cancel).toEqual(['idle']);
              armed = false;
            }
            for (const s of out.send ?? []) placed.push((s.input as { items: Array<{ sku: string; qty: number }> }).items);
            if (op === 'add') {
              const { sku: k, qty } = input as { sku: string; qty: number };
              model.set(k, (model.get(k) ?? 0) + qty);
            } else if (op === 'remove') {
              model.delete((input as { sku: string }).sku);
            } else {
              expect(placed.at(-1)).toEqual([...model].map(([k, qty]) => ({ sku: k, qty })));
              model.clear();
            }
            expect(state.changedAt).toBe(iso(i * 10));
          } catch (err) {
            const code = (err as ActorError).code;
            expect([NOT_IN_CART, CART_EMPTY]).toContain(code);
            if (code === NOT_IN_CART) expect(model.has((input as { sku: string }).sku)).toBe(false);
            else expect(model.size).toBe(0);
            expect(state).toEqual(before);
          }
          expect(state.items).toEqual([...model].map(([k, qty]) => ({ sku: k, qty })));
          expect(armed).toBe(state.items.length > 0);
        });
        for (const items of placed) expect(order.parseInput('place', { cart: 'c1', items })).toBeTruthy();
      }),
      { numRuns: 300 },
    );
  });
});

describe('cart(options)', () => {
  it('idles 30 minutes without options', () => {
    expect(DEFAULT_CART_IDLE_MS).toBe(1_800_000);
    for (const def of [cart(), cart({})]) {
      expect(def.apply(def.initialState(), 'add', { sku: 'a', qty: 1 }, ctx('add')).schedule).toEqual([{ id: 'idle', afterMs: DEFAULT_CART_IDLE_MS, op: 'expire' }]);
    }
  });

  it('takes a whole number of ms up to a year, and names idleMs for anything else', () => {
    expect(c.apply(c.initialState(), 'add', { sku: 'a', qty: 1 }, ctx('add')).schedule).toEqual(rearm(IDLE));
    expect(cart({ idleMs: MAX_CART_IDLE_MS }).type).toBe('cart');
    for (const bad of [0, -1, 1.5, Number.NaN, MAX_CART_IDLE_MS + 1]) {
      expect(() => cart({ idleMs: bad })).toThrow(ConfigError);
      expect(() => cart({ idleMs: bad })).toThrow('idleMs');
    }
  });
});
