import { ActorError, ActorKeySchema, NoInput, Type, defineActor, type Static } from '@jetactor/actor-runtime';
import { CartLine, MAX_LINES, type CartLineValue } from './items.js';

/** Code of the error result of placing an order that was placed already. */
export const ORDER_EXISTS = 'ORDER_EXISTS';
/** Code of the error result of cancelling an order that was never placed. */
export const NO_ORDER = 'NO_ORDER';
/** Code of the error result of cancelling an order that is cancelled already. */
export const ORDER_CANCELLED = 'ORDER_CANCELLED';
/** Code of the error result of placing an order that names one sku on two lines. */
export const DUPLICATE_SKU = 'DUPLICATE_SKU';

/** The input of `place` (what a cart's checkout sends): `{"cart": "c1", "items": [{"sku": "apple", "qty": 2}]}`. */
export const PlaceInput = Type.Object(
  {
    cart: ActorKeySchema({ description: 'the key of the cart checked out' }),
    items: Type.Array(CartLine, { minItems: 1, maxItems: MAX_LINES }),
  },
  { additionalProperties: false },
);

/** Where an order is: `none` (never placed), `placed`, `cancelled`. */
export type OrderStatus = 'none' | 'placed' | 'cancelled';

/** An order's state. */
export interface OrderState {
  status: OrderStatus;
  /** The cart it was checked out of; null before it is placed. */
  cart: string | null;
  items: CartLineValue[];
  /** Stream time (ISO 8601) of `place`; null before. */
  placedAt: string | null;
  /** Stream time (ISO 8601) of `cancel`; null unless cancelled. */
  cancelledAt: string | null;
}

/**
 * The order actor a cart checks out into (key `<cartKey>-<seq>`): `place {"cart","items"}`
 * keeps the lines and makes it `placed` (once: `ORDER_EXISTS`; one sku on two lines is
 * `DUPLICATE_SKU`), `cancel` makes a placed order `cancelled` (`NO_ORDER` before it is placed,
 * `ORDER_CANCELLED` when it is already). The query `status` answers status and items.
 */
export const order = defineActor({
  type: 'order',
  initialState: (): OrderState => ({ status: 'none', cart: null, items: [], placedAt: null, cancelledAt: null }),
  operations: {
    place: {
      input: PlaceInput,
      handler: (state, { cart, items }, ctx) => {
        if (state.status !== 'none') throw new ActorError(ORDER_EXISTS, `order '${ctx.key}' was placed already (it is ${state.status})`);
        const seen = new Set<string>();
        for (const { sku } of items) {
          if (seen.has(sku)) throw new ActorError(DUPLICATE_SKU, `sku '${sku}' is on more than one line`);
          seen.add(sku);
        }
        const next: OrderState = { status: 'placed', cart, items, placedAt: ctx.time.toISOString(), cancelledAt: null };
        return { state: next, result: { status: next.status } };
      },
    },
    cancel: {
      input: NoInput,
      handler: (state, _input, ctx) => {
        if (state.status === 'none') throw new ActorError(NO_ORDER, `order '${ctx.key}' was never placed`);
        if (state.status === 'cancelled') throw new ActorError(ORDER_CANCELLED, `order '${ctx.key}' is cancelled already`);
        const next: OrderState = { ...state, status: 'cancelled', cancelledAt: ctx.time.toISOString() };
        return { state: next, result: { status: next.status } };
      },
    },
  },
  queries: {
    status: { input: NoInput, handler: (state) => ({ status: state.status, items: state.items }) },
  },
});

/** The input of `place`, as a type. */
export type PlaceInput = Static<typeof PlaceInput>;
/** The order's definition type, derived from the definition. */
export type Order = typeof order;
