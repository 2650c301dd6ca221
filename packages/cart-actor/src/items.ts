import { Type, type Static } from '@jetactor/actor-runtime';

/** Most lines (distinct skus) a cart or an order holds. */
export const MAX_LINES = 100;
/** Most of one sku a cart line or an order line holds. */
export const MAX_LINE_QTY = 1_000_000;

/** A sku: 1 to 64 letters, digits, `_`, `-`, `.` or `:`. */
export const Sku = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$', description: 'a sku' });

/** One line of a cart or an order: `{"sku": "apple", "qty": 2}`. */
export const CartLine = Type.Object({ sku: Sku, qty: Type.Integer({ minimum: 1, maximum: MAX_LINE_QTY }) }, { additionalProperties: false });

/** One line of a cart or an order, as a type. */
export type CartLineValue = Static<typeof CartLine>;
