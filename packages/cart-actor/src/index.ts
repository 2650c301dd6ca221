/**
 * @packageDocumentation
 * The cart actor (add, remove, checkout; it clears itself after an idle time without a
 * change) and the order actor a checkout sends its lines to. Both are hosted by the default
 * worker; host them yourself with `runWorker({ actors: [cart({ idleMs: 600_000 }), order] })`.
 */
export {
  AddInput,
  CART_EMPTY,
  CART_FULL,
  CART_NOT_IDLE,
  DEFAULT_CART_IDLE_MS,
  IDLE_TIMER,
  MAX_CART_IDLE_MS,
  NOT_IN_CART,
  QUANTITY_LIMIT,
  RemoveInput,
  cart,
  orderKeyOf,
} from './cart.js';
export type { Cart, CartItemsResult, CartOptions, CartState, CheckoutResult } from './cart.js';
export { CartLine, MAX_LINES, MAX_LINE_QTY, Sku } from './items.js';
export type { CartLineValue } from './items.js';
export { DUPLICATE_SKU, NO_ORDER, ORDER_CANCELLED, ORDER_EXISTS, PlaceInput, order } from './order.js';
export type { Order, OrderState, OrderStatus } from './order.js';
