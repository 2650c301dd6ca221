/** The bounds of an operation's sends and timers, and the errors that refuse what passes them. */
import { ActorError, ErrorCode } from '../protocol/index.js';

/** Most sends one operation may return. */
export const MAX_SENDS_PER_OPERATION = 100;
/** Most timers one actor may hold. */
export const MAX_TIMERS_PER_ACTOR = 1000;
/** Shortest period of a recurring timer, ms. */
export const MIN_TIMER_PERIOD_MS = 100;
/** Latest time a timer may be set for: the largest valid JavaScript date. */
export const MAX_TIME_MS = 8.64e15;
/**
 * How far apart two runs of a recurring timer may be: 10 years. A cron expression that matches
 * no time within it (`0 0 31 2 *`, a day no month has) is `INVALID_TIMER`; 10 years, not 5,
 * so that 29 February (8 years apart around 2100) is still a schedule. `every` is bounded by
 * it too. Finding the next match costs at most this horizon's months, never an unbounded search.
 */
export const TIMER_HORIZON_MS = 10 * 365.25 * 86_400_000;
export const HORIZON_YEARS = 10;
/** Largest year croner knows (OCPS: 1-9999). */
export const LAST_CRON_YEAR = 9999;

export function invalidSend(message: string): ActorError {
  return new ActorError(ErrorCode.InvalidSend, message);
}

export function invalidTimer(message: string): ActorError {
  return new ActorError(ErrorCode.InvalidTimer, message);
}
