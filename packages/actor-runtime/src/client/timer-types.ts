/** The shapes of the client's timer calls: what `schedule`, `timers` and `cancelTimer` take and answer. */
import type { CallResult } from './results.js';

/** When and how often a scheduled operation runs, and under which id. */
export interface ScheduleOptions {
  /** When it runs first: a Date, ms since the epoch or an ISO 8601 time. A time in the past runs at once. */
  at?: Date | number | string;
  /** When it runs first, in ms from now (the client turns it into `at`). Not with `at`. */
  delayMs?: number;
  /**
   * The timer's id among the actor's timers (`[A-Za-z0-9_=-]`, at most 64 characters); a timer
   * with this id is replaced. Default: derived from `idempotencyKey` (a retry gets the same id),
   * else random.
   */
  id?: string;
  /** Recurring: again every this many ms (100 ms to 10 years). Without `at`/`delayMs`, first one period from now. */
  every?: number;
  /** Recurring: at each match of this cron expression (5 or 6 fields, UTC; it must match within 10 years). Without `at`/`delayMs`, first at the next match. */
  cron?: string;
  /** De-duplicates retries, as for signals (the same key with another operation or input is refused). */
  idempotencyKey?: string;
}

/** A timer stored in the stream, to be set by the actor's worker. */
export interface ScheduleResult {
  /** The operation scheduled. */
  scheduled: string;
  type: string;
  key: string;
  /** The timer's id (to list or cancel it). */
  id: string;
  /** When it runs (first), ISO 8601. */
  at: string;
  /** Stream sequence of the message that sets the timer. */
  seq: number;
  /** True when the idempotency key was seen before: `seq`, `id` and `at` are the original's. */
  duplicate?: true;
}

/** One of an actor's timers, as listed. */
export interface TimerInfo {
  id: string;
  /** When it runs next, ISO 8601. */
  at: string;
  /** The operation it applies. */
  op: string;
  /** The actor it applies the operation to (the timer's own actor unless it targets another). */
  target: { type: string; key: string };
  /** The operation's input; absent for none. */
  input?: unknown;
  /** Recurring every this many ms. */
  every?: number;
  /** Recurring by this cron expression (UTC). */
  cron?: string;
}

/** An actor's timers, soonest first. */
export interface TimerList {
  type: string;
  key: string;
  timers: TimerInfo[];
}

/** Options of {@link TimerClient.cancelTimer}. */
export interface CancelTimerOptions {
  /** Wait until the worker has applied the cancel and answer whether there was such a timer. */
  wait?: boolean;
  /** With `wait`: how long to wait, in ms (the client's default timeout when unset). */
  timeoutMs?: number;
  /** De-duplicates retries, as for signals. */
  idempotencyKey?: string;
}

/** A cancel stored in the stream (not waited for). */
export interface CancelTimerSent {
  /** The id of the timer to cancel. */
  cancelled: string;
  type: string;
  key: string;
  seq: number;
  duplicate?: true;
}

/** A cancel applied: whether the actor had the timer. */
export interface CancelTimerOutcome extends CallResult {
  result: { cancelled: boolean; id: string };
}

/** The timer methods of an {@link ActorClient} (closures: they may be called detached). */
export interface TimerClient {
  /**
   * Publishes `op` (with `input`) to run later, as a timer of `type/key`; resolves once the
   * message is stored. Throws an {@link ActorError} with code `INVALID_TIMER` for a bad time,
   * period, cron expression or id (nothing is published), and what a signal throws.
   */
  schedule(this: void, type: string, key: string, op: string, input: unknown, opts: ScheduleOptions): Promise<ScheduleResult>;
  /** The actor's timers from its record, soonest first; none for an actor never written. With `minSeq`, first waits until the record includes that operation. */
  timers(this: void, type: string, key: string, opts?: { minSeq?: number; timeoutMs?: number }): Promise<TimerList>;
  /** Cancels the timer `id` of `type/key` (the `$cancel` operation); resolves once stored. */
  cancelTimer(this: void, type: string, key: string, id: string, opts?: CancelTimerOptions & { wait?: false }): Promise<CancelTimerSent>;
  /** Cancels the timer and waits until applied: `result.cancelled` is false when the actor had no such timer. */
  cancelTimer(this: void, type: string, key: string, id: string, opts: CancelTimerOptions & { wait: true }): Promise<CancelTimerOutcome>;
  /** Either of the above, by `opts.wait`. */
  cancelTimer(this: void, type: string, key: string, id: string, opts?: CancelTimerOptions): Promise<CancelTimerSent | CancelTimerOutcome>;
}
