/**
 * Schema building blocks for actor authors. `Type` is TypeBox's builder, re-exported so an
 * actor package needs no TypeBox dependency of its own and every schema comes from the
 * version the runtime validates with.
 */
import { Type } from '@sinclair/typebox';

export { Type };
export type { Static, TSchema } from '@sinclair/typebox';

/**
 * The input of an operation or query that takes none: nothing (an empty payload), `null` or
 * `{}`. Anything else is an `InvalidInputError` (`reset: input must be nothing, null or {}, got 5`).
 */
export const NoInput = Type.Optional(
  // Typed as exactly what it accepts: TypeBox types an empty object schema as `{}`, which TypeScript reads as "any non-null value".
  Type.Unsafe<null | Record<string, never>>(Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })], { description: 'nothing, null or {}' })),
);
