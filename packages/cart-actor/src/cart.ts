import { ActorError, ConfigError, MAX_KEY_LENGTH, NoInput, Type, defineActor, type Static } from '@jetactor/actor-runtime';
import { CartLine, MAX_LINES, MAX_LINE_QTY, Sku, type CartLineValue } from './items.js';

/** Code of the error result of checking out an empty cart. */
export const CART_EMPTY = 'CART_EMPTY';
/** Code of the error result of removing a sku the cart does not hold. */
export const NOT_IN_CART = 'NOT_IN_CART';
/** Code of the error result of adding a new sku to a cart that holds {@link MAX_LINES} already. */
export const CART_FULL = 'CART_FULL';
/** Code of the error result of an `add` that would take a line past {@link MAX_LINE_QTY}. */
export const QUANTITY_LIMIT = 'QUANTITY_LIMIT';
/** Code of the error result of an `expire` called (not fired by the idle timer) on a cart changed less than the idle time ago. */
export const CART_NOT_IDLE = 'CART_NOT_IDLE';

/** The id of the cart's idle timer, re-armed on every change. */
export const IDLE_TIMER = 'idle';
/** The idle time of `cart()` without one: 30 minutes (the default worker's when `CART_IDLE_MS` is not set). */
export const DEFAULT_CART_IDLE_MS = 1_800_000;
/** The longest idle time a cart may have: 365 days. */
export const MAX_CART_IDLE_MS = 365 * 24 * 3_600_000;

/** Options of {@link cart}. */
export interface CartOptions {
  /**
   * How long a cart may stay unchanged before it clears itself, in ms: a whole number from 1 to
   * {@link MAX_CART_IDLE_MS}. Default {@link DEFAULT_CART_IDLE_MS} (30 minutes). Give every worker
   * that hosts the cart the same value, or a replay on another worker arms its timer differently.
   */
  idleMs?: number;
}

/** The input of `add`: `{"sku": "apple", "qty": 2}` (adds to the sku's quantity). */
export const AddInput = CartLine;
/** The input of `remove`: `{"sku": "apple"}` (removes the whole line). */
export const RemoveInput = Type.Object({ sku: Sku }, { additionalProperties: false });

/** A cart's state: its lines in the order they were first added, and when it last changed. */
export interface CartState {
  items: CartLineValue[];
  /** Stream time (ISO 8601) of the last add, remove, checkout or expiry; null for a new cart. */
  changedAt: string | null;
}

/** What `add` and `remove` answer: the cart's lines after the change. */
export interface CartItemsResult {
  items: CartLineValue[];
}

/** What `checkout` answers: the order's key and the lines sent to it. */
export interface CheckoutResult {
  order: string;
  items: CartLineValue[];
}

/** FNV-1a (32 bit) of a string, as 8 hex digits: a deterministic short tag. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * The key of the order a checkout creates: `<cartKey>-<seq>` (the checkout's stream sequence,
 * so unique); when that is longer than a key may be, the cart key is cut and an FNV-1a tag of
 * the whole of it keeps the key unique: `<cartKey prefix>-<tag>-<seq>`.
 */
export function orderKeyOf(cartKey: string, seq: number): string {
  const plain = `${cartKey}-${seq}`;
  if (plain.length <= MAX_KEY_LENGTH) return plain;
  const suffix = `-${fnv1a(cartKey)}-${seq}`;
  return `${cartKey.slice(0, MAX_KEY_LENGTH - suffix.length)}${suffix}`;
}

/** The outcome parts of a change that leaves `items` in the cart: the idle timer re-armed, or cancelled when the cart is empty. */
function idleTimer(items: readonly CartLineValue[], idleMs: number) {
  return items.length > 0 ? { schedule: [{ id: IDLE_TIMER, afterMs: idleMs, op: 'expire' }] } : { cancel: [IDLE_TIMER] };
}

/** Milliseconds from the cart's last change to `now`; infinite when it never changed. */
function idleFor(state: CartState, now: Date): number {
  const at = state.changedAt === null ? Number.NaN : Date.parse(state.changedAt);
  return Number.isFinite(at) ? now.getTime() - at : Number.POSITIVE_INFINITY;
}

/**
 * The cart actor: `cart()` clears a cart after {@link DEFAULT_CART_IDLE_MS} without a change,
 * `cart({ idleMs })` after `idleMs` (a value out of range is a `ConfigError` naming `idleMs`).
 *
 * - `add {"sku","qty"}` adds `qty` to the sku's line (a new sku is a new line, at most
 *   {@link MAX_LINES}: `CART_FULL`; a line holds at most {@link MAX_LINE_QTY}: `QUANTITY_LIMIT`).
 * - `remove {"sku"}` removes the sku's line (`NOT_IN_CART` when there is none).
 * - `checkout` sends `place {"cart", "items"}` to the `order` actor `<cartKey>-<seq>` and
 *   empties the cart (`CART_EMPTY` when it is empty already).
 * - `expire` empties a cart unchanged for `idleMs`: every add and remove (re-)arms the timer
 *   `idle` (`afterMs: idleMs`, op `expire`), and checkout or a remove that empties the cart
 *   cancels it. An `expire` that fires from that timer early (the idle time grew since it was
 *   set) re-arms it for the rest; one called by a client on a cart changed too recently is the
 *   error `CART_NOT_IDLE`.
 *
 * Every error leaves the state unchanged. The query `items` answers the lines.
 */
export function cart(options: CartOptions = {}) {
  const idleMs = options.idleMs ?? DEFAULT_CART_IDLE_MS;
  if (!Number.isInteger(idleMs) || idleMs < 1 || idleMs > MAX_CART_IDLE_MS) {
    throw new ConfigError(`idleMs must be a whole number of milliseconds from 1 to ${MAX_CART_IDLE_MS}, got ${idleMs}`);
  }
  return defineActor({
    type: 'cart',
    initialState: (): CartState => ({ items: [], changedAt: null }),
    operations: {
      add: {
        input: AddInput,
        handler: (state, { sku, qty }, ctx) => {
          const line = state.items.find((l) => l.sku === sku);
          if (line) {
            if (line.qty + qty > MAX_LINE_QTY) {
              throw new ActorError(QUANTITY_LIMIT, `the cart holds ${line.qty} of '${sku}'; adding ${qty} would pass the limit of ${MAX_LINE_QTY}`);
            }
            line.qty += qty;
          } else {
            if (state.items.length >= MAX_LINES) throw new ActorError(CART_FULL, `the cart holds ${MAX_LINES} lines, the most it may; remove one to add '${sku}'`);
            state.items.push({ sku, qty });
          }
          state.changedAt = ctx.time.toISOString();
          return { state, result: { items: state.items } satisfies CartItemsResult, ...idleTimer(state.items, idleMs) };
        },
      },
      remove: {
        input: RemoveInput,
        handler: (state, { sku }, ctx) => {
          const at = state.items.findIndex((l) => l.sku === sku);
          if (at < 0) throw new ActorError(NOT_IN_CART, `the cart holds no '${sku}'`);
          state.items.splice(at, 1);
          state.changedAt = ctx.time.toISOString();
          return { state, result: { items: state.items } satisfies CartItemsResult, ...idleTimer(state.items, idleMs) };
        },
      },
      checkout: {
        input: NoInput,
        handler: (state, _input, ctx) => {
          if (state.items.length === 0) throw new ActorError(CART_EMPTY, 'the cart is empty: add an item before checking out');
          const order = orderKeyOf(ctx.key, ctx.seq);
          const items = state.items;
          return {
            state: { items: [], changedAt: ctx.time.toISOString() },
            result: { order, items } satisfies CheckoutResult,
            send: [{ type: 'order', key: order, op: 'place', input: { cart: ctx.key, items } }],
            cancel: [IDLE_TIMER],
          };
        },
      },
      expire: {
        input: NoInput,
        handler: (state, _input, ctx) => {
          const fromTimer = ctx.timer === IDLE_TIMER;
          if (state.items.length === 0) return { state, result: { expired: false } };
          const idle = idleFor(state, ctx.time);
          if (idle < idleMs) {
            if (!fromTimer) throw new ActorError(CART_NOT_IDLE, `the cart changed ${idle} ms ago; it expires after ${idleMs} ms`);
            return { state, result: { expired: false }, schedule: [{ id: IDLE_TIMER, afterMs: idleMs - idle, op: 'expire' }] };
          }
          return {
            state: { items: [], changedAt: ctx.time.toISOString() },
            result: { expired: true },
            // The timer that fired is spent; one called by a client leaves the timer to cancel.
            ...(fromTimer ? {} : { cancel: [IDLE_TIMER] }),
          };
        },
      },
    },
    queries: {
      items: { input: NoInput, handler: (state): CartItemsResult => ({ items: state.items }) },
    },
  });
}

/** The input of `add`, as a type. */
export type AddInput = Static<typeof AddInput>;
/** The input of `remove`, as a type. */
export type RemoveInput = Static<typeof RemoveInput>;
/** The cart's definition type, derived from the definition. */
export type Cart = ReturnType<typeof cart>;
