/**
 * What an operation does besides its state, in pure form: the sends it returns, the timers it
 * sets or cancels, a timer set by message headers, and the next time of a recurring timer.
 * Everything here is checked before the operation's outcome is taken: a bad send or timer
 * fails the operation (state unchanged), it never reaches the record.
 */
import { type ActorError, validateName, validateTimerId } from '../protocol/index.js';
import type { StoredTimer } from '../store/records.js';
import { nextCron } from './cron.js';
import { invalidTimer, MAX_TIME_MS, MAX_TIMERS_PER_ACTOR, MIN_TIMER_PERIOD_MS, TIMER_HORIZON_MS } from './effect-limits.js';

/** The latest time a timer may be set for (the client checks it too, client/timers.ts). */
export { MAX_TIME_MS } from './effect-limits.js';

/** The raw values of a message's timer headers (validated by the fold). */
export interface TimerRequest {
  id?: string;
  at?: string;
  delayMs?: string;
  everyMs?: string;
  cron?: string;
}

/** Who an effect belongs to: the operation's actor, seq and stream time. */
export interface EffectOrigin {
  type: string;
  key: string;
  seq: number;
  /** Stream time of the operation, ms. */
  time: number;
}

/** A target's type and key (defaults: the origin's), validated as names; `what` labels errors. */
export function target(raw: { type?: unknown; key?: unknown; op?: unknown }, origin: EffectOrigin, fail: (m: string) => ActorError, what: string): { type: string; key: string; op: string } {
  const type = raw.type === undefined ? origin.type : raw.type;
  const key = raw.key === undefined ? origin.key : raw.key;
  const op = raw.op;
  try {
    validateName('type', type as string);
    validateName('key', key as string);
    validateName('op', op as string);
  } catch (err) {
    throw fail(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if ((op as string).startsWith('$')) throw fail(`${what}: operation '${String(op)}' is reserved`);
  return { type: type as string, key: key as string, op: op as string };
}

/** An input as JSON text (undefined for none), or the given error. */
export function inputJson(input: unknown, fail: (m: string) => ActorError, what: string, maxBytes: number): string | undefined {
  if (input === undefined) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(input);
  } catch (err) {
    throw fail(`${what}: the input is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (json === undefined) throw fail(`${what}: the input is not JSON (${typeof input})`);
  if (json.length * 3 > maxBytes && Buffer.byteLength(json) > maxBytes) throw fail(`${what}: the input is larger than ${maxBytes} bytes as JSON`);
  return json;
}
/** A time given as ms since the epoch, an ISO 8601 string or a Date. */
function timeOf(raw: unknown, what: string): number {
  let ms: number;
  if (raw instanceof Date) ms = raw.getTime();
  else if (typeof raw === 'number') ms = raw;
  else if (typeof raw === 'string' && /^\d{1,16}$/.test(raw)) ms = Number(raw);
  else if (typeof raw === 'string' && raw.length <= 64 && /^\d{4}-\d{2}-\d{2}T/.test(raw)) ms = Date.parse(raw);
  else throw invalidTimer(`${what} must be ms since the epoch or an ISO 8601 time, got ${JSON.stringify(String(raw).slice(0, 80))}`);
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIME_MS) throw invalidTimer(`${what} is not a valid time: ${JSON.stringify(String(raw).slice(0, 80))}`);
  return Math.floor(ms);
}

function periodOf(raw: unknown, what: string): number {
  const n = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < MIN_TIMER_PERIOD_MS || n > TIMER_HORIZON_MS) {
    throw invalidTimer(`${what} must be an integer number of ms from ${MIN_TIMER_PERIOD_MS} to ${TIMER_HORIZON_MS} (10 years), got ${JSON.stringify(String(raw).slice(0, 80))}`);
  }
  return n;
}

function delayOf(raw: unknown, what: string): number {
  const n = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > MAX_TIME_MS) {
    throw invalidTimer(`${what} must be a number of ms >= 0, got ${JSON.stringify(String(raw).slice(0, 80))}`);
  }
  return Math.floor(n);
}

/** The fields every way of setting a timer has, checked: first time and recurrence. */
function schedule(fields: { at?: unknown; afterMs?: unknown; every?: unknown; cron?: unknown }, time: number, what: string): Pick<StoredTimer, 'at' | 'every' | 'cron'> {
  if (fields.at !== undefined && fields.afterMs !== undefined) throw invalidTimer(`${what}: give at or afterMs, not both`);
  if (fields.every !== undefined && fields.cron !== undefined) throw invalidTimer(`${what}: give every or cron, not both`);
  const every = fields.every === undefined ? undefined : periodOf(fields.every, `${what}: every`);
  // A cron expression must match within the horizon whatever the first time is.
  const cronNext = fields.cron === undefined ? undefined : nextCron(fields.cron, time);
  const cron = cronNext === undefined ? undefined : (fields.cron as string);
  let at: number;
  if (fields.at !== undefined) at = timeOf(fields.at, `${what}: at`);
  else if (fields.afterMs !== undefined) at = time + delayOf(fields.afterMs, `${what}: afterMs`);
  else if (every !== undefined) at = time + every;
  else if (cronNext !== undefined) at = cronNext;
  else throw invalidTimer(`${what}: give at, afterMs, every or cron`);
  if (at > MAX_TIME_MS) throw invalidTimer(`${what}: the time is past the largest valid date`);
  return { at, ...(every !== undefined ? { every } : {}), ...(cron !== undefined ? { cron } : {}) };
}

/** An `INVALID_TIMER` error when an actor would hold more than {@link MAX_TIMERS_PER_ACTOR} timers. */
export function checkTimerCount(count: number): void {
  if (count > MAX_TIMERS_PER_ACTOR) throw invalidTimer(`an actor may hold at most ${MAX_TIMERS_PER_ACTOR} timers`);
}

/** The ids of an outcome's `cancel`, checked; none when it has none. */
export function cancelledIds(rawCancel: unknown): string[] {
  if (rawCancel === undefined) return [];
  if (!Array.isArray(rawCancel)) throw invalidTimer('cancel must be an array of timer ids');
  for (const id of rawCancel as unknown[]) validateTimerId(id);
  return rawCancel as string[];
}

/** The timers of an outcome's `schedule`, checked; none when it has none. A later one of an id replaces an earlier. */
export function scheduledTimers(rawSchedule: unknown, origin: EffectOrigin, maxBytes: number): StoredTimer[] {
  if (rawSchedule === undefined) return [];
  if (!Array.isArray(rawSchedule)) throw invalidTimer('schedule must be an array of { id, op, afterMs | at, ... }');
  return (rawSchedule as unknown[]).map((s, i): StoredTimer => {
    if (typeof s !== 'object' || s === null) throw invalidTimer(`schedule[${i}] must be an object { id, op, afterMs | at, ... }`);
    const spec = s as Record<string, unknown>;
    try {
      validateTimerId(spec.id);
    } catch (err) {
      throw invalidTimer(`schedule[${i}]: ${err instanceof Error ? err.message : String(err)}`);
    }
    const t = target(spec, origin, invalidTimer, `schedule[${i}]`);
    const input = inputJson(spec.input, invalidTimer, `schedule[${i}]`, maxBytes);
    return { id: spec.id, ...schedule(spec, origin.time, `schedule[${i}]`), n: origin.seq, op: t.op, type: t.type, key: t.key, ...(input !== undefined ? { input } : {}) };
  });
}

/**
 * An outcome's `cancel` then `schedule` applied to a list of timers (by id, bounded), as the
 * fold applies them to a record; undefined when neither is given.
 */
export function timersAfter(current: readonly StoredTimer[], rawSchedule: unknown, rawCancel: unknown, origin: EffectOrigin, maxBytes: number): StoredTimer[] | undefined {
  if (rawSchedule === undefined && rawCancel === undefined) return undefined;
  const gone = new Set(cancelledIds(rawCancel));
  const next = new Map(current.filter((t) => !gone.has(t.id)).map((t) => [t.id, t]));
  for (const t of scheduledTimers(rawSchedule, origin, maxBytes)) next.set(t.id, t);
  checkTimerCount(next.size);
  return [...next.values()];
}

/** The timer a message's headers set on its own actor (`op` and input are the message's). */
export function timerOfRequest(req: TimerRequest, op: string, inputText: string | undefined, origin: EffectOrigin): StoredTimer {
  const id = req.id ?? `t${origin.seq}`;
  validateTimerId(id);
  if (op.startsWith('$')) throw invalidTimer(`operation '${op}' cannot be scheduled`);
  const when = schedule({ at: req.at, afterMs: req.delayMs, every: req.everyMs, cron: req.cron }, origin.time, 'timer headers');
  return { id, ...when, n: origin.seq, op, type: origin.type, key: origin.key, ...(inputText !== undefined ? { input: inputText } : {}) };
}

/**
 * The next occurrence of a recurring timer that fired at `firedAt` (ms, its stream time):
 * strictly after both its due time and the firing, so occurrences missed while nothing ran
 * fire once, not once each. Undefined for a one-shot timer.
 */
export function nextOccurrence(t: StoredTimer, firedAt: number): number | undefined {
  const after = Math.max(t.at, firedAt);
  let next: number | undefined;
  if (t.every !== undefined) next = t.at + t.every * (Math.floor((after - t.at) / t.every) + 1);
  else if (t.cron !== undefined) {
    try {
      next = nextCron(t.cron, after);
    } catch {
      return undefined; // a cron that matches nothing within the horizon ends
    }
  }
  // A timer whose next time would pass the largest valid date ends (a record written before
  // `every` was bounded may hold one that long).
  return next !== undefined && Number.isFinite(next) && next <= MAX_TIME_MS ? next : undefined;
}

/** The payload of a timer firing: which timer (id, n) at which time. */
export interface FirePayload {
  id: string;
  n: number;
  at: number;
}

/** Parses a `$fire` payload; null for anything else (a forged or junk message is ignored). */
export function parseFire(input: unknown): FirePayload | null {
  if (typeof input !== 'object' || input === null) return null;
  const { id, n, at } = input as Record<string, unknown>;
  if (typeof id !== 'string' || typeof n !== 'number' || typeof at !== 'number') return null;
  return { id, n, at };
}
