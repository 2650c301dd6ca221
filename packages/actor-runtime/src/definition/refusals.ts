/**
 * Running a handler, and telling an operation's deliberate refusal (an {@link ActorError} its
 * handler threw) from a failure.
 */
import { ActorError, ErrorCode, HandlerError } from '../protocol/index.js';

/** {@link ActorError}s an operation's handler threw itself: its deliberate refusals (see {@link isRefusal}). */
const refusals = new WeakSet<object>();

/** Error codes that stay dead letters even when a handler throws them: bad input, and what is no deliberate refusal. */
const NEVER_REFUSALS: ReadonlySet<string> = new Set([ErrorCode.InvalidInput, ErrorCode.HandlerError]);

/**
 * True for an error an operation's handler threw on purpose: an {@link ActorError} of its own
 * (`INSUFFICIENT_FUNDS`), not the runtime's (input validation, an unknown operation, a state
 * that cannot be stored) and not `INVALID_INPUT` or `HANDLER_ERROR`. Such an error is the
 * operation's outcome (answered, kept, counted), not a dead letter.
 */
export function isRefusal(err: unknown): boolean {
  return err instanceof ActorError && refusals.has(err) && !NEVER_REFUSALS.has(err.code);
}

/** Runs a handler; anything it throws but an {@link ActorError} becomes a {@link HandlerError}. */
export function guarded<T>(what: string, type: string, run: () => T, refusal = false): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof ActorError) {
      if (refusal) refusals.add(err);
      throw err;
    }
    throw new HandlerError(`${what} of '${type}' failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
