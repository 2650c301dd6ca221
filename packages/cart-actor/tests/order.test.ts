import { describe, expect, it } from 'vitest';
import { InvalidInputError, type OperationContext, type QueryContext } from '@jetactor/actor-runtime';
import { DUPLICATE_SKU, MAX_LINES, NO_ORDER, ORDER_CANCELLED, ORDER_EXISTS, cart, order, type OrderState } from '../src/index.js';

const ctx = (op: string, ms = 0, key = 'c1-42'): OperationContext => ({ type: 'order', key, op, seq: 50, time: new Date(Date.UTC(2026, 0, 1) + ms) });
const iso = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const qctx: QueryContext = { type: 'order', key: 'c1-42', query: 'status', seq: 1, exists: true };
const items = [{ sku: 'apple', qty: 5 }, { sku: 'pear', qty: 1 }];
const placed = (): OrderState => ({ status: 'placed', cart: 'c1', items: structuredClone(items), placedAt: iso(0), cancelledAt: null });

/** Matches a thrown ActorError of `code` (and `message`, when given). */
const failsWith = (code: string, message?: string): unknown => expect.objectContaining({ name: 'ActorError', code, ...(message === undefined ? {} : { message }) });

describe('order', () => {
  it('starts as never placed', () => {
    expect(order.initialState()).toEqual({ status: 'none', cart: null, items: [], placedAt: null, cancelledAt: null });
  });

  it('is placed with the items a checkout sends, keeping them and the cart', () => {
    const checkout = cart({ idleMs: 1000 }).apply({ items: structuredClone(items), changedAt: null }, 'checkout', undefined, {
      type: 'cart',
      key: 'c1',
      op: 'checkout',
      seq: 42,
      time: new Date(0),
    });
    const send = checkout.send?.[0];
    expect(send?.type).toBe('order');
    expect(send?.key).toBe('c1-42');
    const out = order.apply(order.initialState(), send!.op, send!.input, ctx(send!.op, 0, send!.key));
    expect(out).toEqual({ state: placed(), result: { status: 'placed' } });
    expect(out.send).toBeUndefined();
    expect(out.schedule).toBeUndefined();
  });

  it('is placed once (ORDER_EXISTS), and refuses one sku on two lines (DUPLICATE_SKU)', () => {
    const state = placed();
    expect(() => order.apply(state, 'place', { cart: 'c1', items }, ctx('place'))).toThrow(failsWith(ORDER_EXISTS));
    expect(state).toEqual(placed());
    expect(() => order.apply(order.initialState(), 'place', { cart: 'c1', items: [...items, { sku: 'apple', qty: 1 }] }, ctx('place'))).toThrow(failsWith(DUPLICATE_SKU, "sku 'apple' is on more than one line"));
  });

  it('is cancelled once it is placed; not before (NO_ORDER), not twice (ORDER_CANCELLED)', () => {
    const out = order.apply(placed(), 'cancel', undefined, ctx('cancel', 500));
    expect(out).toEqual({ state: { ...placed(), status: 'cancelled', cancelledAt: iso(500) }, result: { status: 'cancelled' } });
    expect(() => order.apply(out.state, 'cancel', undefined, ctx('cancel'))).toThrow(failsWith(ORDER_CANCELLED));
    expect(() => order.apply(out.state, 'place', { cart: 'c1', items }, ctx('place'))).toThrow(failsWith(ORDER_EXISTS));
    expect(() => order.apply(order.initialState(), 'cancel', undefined, ctx('cancel'))).toThrow(failsWith(NO_ORDER));
  });

  it.each([
    [undefined, 'input is required'],
    [{ items }, 'input.cart is required'],
    [{ cart: 'c1' }, 'input.items is required'],
    [{ cart: 'c1', items: [] }, 'input.items'],
    [{ cart: 'c.1', items }, 'input.cart'],
    [{ cart: 'c1', items: [{ sku: 'a' }] }, 'qty'],
    [{ cart: 'c1', items: [{ sku: 'a', qty: 0 }] }, 'qty'],
    [{ cart: 'c1', items: [{ sku: 'a', qty: 1, x: 1 }] }, 'x'],
    [{ cart: 'c1', items: Array.from({ length: MAX_LINES + 1 }, (_, i) => ({ sku: `s${i}`, qty: 1 })) }, 'input.items'],
    [{ cart: 'c1', items, note: 'x' }, 'note'],
  ])('place rejects the input %j, naming the field', (raw, field) => {
    expect(() => order.parseInput('place', raw)).toThrow(InvalidInputError);
    expect(() => order.apply(order.initialState(), 'place', raw, ctx('place'))).toThrow(field);
  });

  it('answers the query status with its items', () => {
    expect(order.query(placed(), 'status', undefined, qctx)).toEqual({ status: 'placed', items });
    expect(order.query(order.initialState(), 'status', undefined, qctx)).toEqual({ status: 'none', items: [] });
  });

  it('describes its operations', () => {
    const d = order.describe();
    expect(Object.keys(d.operations).sort()).toEqual(['cancel', 'place']);
    expect(d.operations.place?.input).toMatchObject({ required: ['cart', 'items'], properties: { items: { type: 'array', minItems: 1, maxItems: MAX_LINES } } });
  });
});
