/**
 * What an operation does besides its state, in pure form: the sends it returns, the timers it
 * sets or cancels, a timer set by message headers, and the next time of a recurring timer.
 * Everything here is checked before the operation's outcome is taken: a bad send or timer
 * fails the operation (state unchanged), it never reaches the record.
 */
import { Cron, CronPattern } from 'croner';
import { ActorError, ErrorCode, validateName, validateTimerId } from '../protocol/index.js';
import { saltedMac } from '../store/provision.js';
import type { StoredSend, StoredTimer } from '../store/records.js';
import type { TimerRequest } from './decode.js';

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
const HORIZON_YEARS = 10;
/** Largest year croner knows (OCPS: 1-9999). */
const LAST_CRON_YEAR = 9999;

/** Who an effect belongs to: the operation's actor, seq and stream time. */
export interface EffectOrigin {
  type: string;
  key: string;
  seq: number;
  /** Stream time of the operation, ms. */
  time: number;
}

function invalidSend(message: string): ActorError {
  return new ActorError(ErrorCode.InvalidSend, message);
}

function invalidTimer(message: string): ActorError {
  return new ActorError(ErrorCode.InvalidTimer, message);
}

/** A target's type and key (defaults: the origin's), validated as names; `what` labels errors. */
function target(raw: { type?: unknown; key?: unknown; op?: unknown }, origin: EffectOrigin, fail: (m: string) => ActorError, what: string): { type: string; key: string; op: string } {
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
function inputJson(input: unknown, fail: (m: string) => ActorError, what: string, maxBytes: number): string | undefined {
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

/** Characters of the HMAC in the runtime's msg ids of sends and timer firings (132 bits). */
const MSG_ID_MAC_CHARS = 22;

/**
 * The `Nats-Msg-Id` of send `i` of the operation at stream seq `seq`: `$s.<mac>.<stream>.<seq>.<i>`,
 * the mac an HMAC of the other three keyed with the workers' salt. The same on every replay of
 * the operation, unique in the stream, and made only by who can read the salt; the salt is not
 * in it (ids before were `$s.<salt>.<stream>.<seq>.<i>`: anyone who could subscribe to the
 * operations read it).
 */
export function sendMsgId(salt: string, stream: number, seq: number, i: number): string {
  return `$s.${sendMac(salt, stream, seq, i)}.${stream}.${seq}.${i}`;
}

/** The mac part of {@link sendMsgId}. */
export function sendMac(salt: string, stream: number, seq: number | string, i: number | string): string {
  return saltedMac(salt, ['$s', String(stream), String(seq), String(i)], MSG_ID_MAC_CHARS);
}

/** The sends of an outcome, each with its deterministic {@link sendMsgId}. */
export function sendsOf(raw: unknown, origin: EffectOrigin, env: { salt: string; stream: number; subjectPrefix: string; maxStateBytes: number; maxSendBytes?: number }): StoredSend[] {
  // A send is an operation like any other: the stream takes no larger input (nor may the record hold one).
  const maxBytes = Math.min(env.maxStateBytes, env.maxSendBytes ?? Infinity);
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw invalidSend('send must be an array of { type, key, op, input }');
  if (raw.length > MAX_SENDS_PER_OPERATION) throw invalidSend(`an operation may send at most ${MAX_SENDS_PER_OPERATION} operations, got ${raw.length}`);
  return (raw as unknown[]).map((s, i) => {
    if (typeof s !== 'object' || s === null) throw invalidSend(`send[${i}] must be an object { type, key, op, input }`);
    const t = target(s, origin, invalidSend, `send[${i}]`);
    const input = inputJson((s as { input?: unknown }).input, invalidSend, `send[${i}]`, maxBytes);
    return {
      id: sendMsgId(env.salt, env.stream, origin.seq, i),
      subject: `${env.subjectPrefix}.${t.type}.${t.key}.${t.op}`,
      ...(input !== undefined ? { input } : {}),
      seq: origin.seq,
    };
  });
}

/**
 * A compiled search of one expression from one year on, and the earliest time after which it
 * was seen to match nothing (a search that finds nothing costs ~2 ms: a repeat is free).
 */
interface CronSearch {
  cron: Cron;
  noneAfter: number;
}
/** Searches by expression and first year: tens of kilobytes each (croner keeps a 10,000-entry year table). */
const crons = new Map<string, CronSearch>();
const CRON_CACHE_SIZE = 64;
/** A checked expression: its six fields (nicknames expanded, seconds first), and whether no month has a day it allows. */
interface CronFields {
  fields: string;
  noDay: boolean;
}
const cronFields = new Map<string, CronFields>();
/** Days of each month in a leap year. */
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * True when the pattern's days of the month exist in none of its months (`31 2,4,6,9,11`,
 * `30 2`) and the day of the week cannot add one: it never matches, known without a search
 * (a search of the horizon that finds nothing costs ~2 ms).
 */
function noDayInItsMonths(p: CronPattern): boolean {
  if (p.lastDayOfMonth || p.lastWeekday || p.nearestWeekdays.some(Boolean)) return false;
  // Both fields restricted and no `+`: croner matches the day of the month OR of the week.
  if (!p.starDOW && !p.starDOM && !p.useAndLogic) return false;
  for (let m = 0; m < 12; m++) {
    if (!p.month[m]) continue;
    for (let d = 0; d < (MONTH_DAYS[m] as number); d++) if (p.day[d]) return false;
  }
  return true;
}

/** A cron expression checked, or an `INVALID_TIMER` error for a bad one. */
function fieldsOf(expr: unknown): CronFields {
  if (typeof expr !== 'string' || expr.length === 0 || expr.length > 200) throw invalidTimer('cron must be a cron expression of at most 200 characters');
  let checked = cronFields.get(expr);
  if (checked === undefined) {
    let pattern: CronPattern;
    try {
      pattern = new CronPattern(expr, undefined, { mode: '5-or-6-parts' });
    } catch (err) {
      throw invalidTimer(`cron ${JSON.stringify(expr)} is not a cron expression: ${err instanceof Error ? err.message : String(err)}`);
    }
    const parts = pattern.pattern.trim().split(/\s+/);
    if (parts.length === 5) parts.unshift('0');
    checked = { fields: parts.join(' '), noDay: noDayInItsMonths(pattern) };
    if (cronFields.size >= 1000) cronFields.clear();
    cronFields.set(expr, checked);
  }
  return checked;
}

/**
 * The next time (ms) a cron expression matches strictly after `after`, searched only within
 * {@link TIMER_HORIZON_MS}: the expression gets a year field (`<year>-<year + 10>`), which
 * bounds croner's search (unbounded, it recursed month by month up to the year 3000 and
 * overflowed the stack for a day no month has). An error when nothing matches in time.
 */
function nextCron(expr: unknown, after: number): number {
  const { fields, noDay } = fieldsOf(expr);
  const from = new Date(after);
  const year = from.getUTCFullYear();
  const never = () => invalidTimer(`cron ${JSON.stringify(expr)} matches no time within 10 years after ${from.toISOString()}`);
  if (year > LAST_CRON_YEAR || noDay) throw never();
  const key = `${fields} ${year}`;
  let search = crons.get(key);
  if (!search) {
    const cron = new Cron(`${fields} ${year}-${Math.min(LAST_CRON_YEAR, year + HORIZON_YEARS)}`, { utcOffset: 0, paused: true, mode: '6-or-7-parts' });
    search = { cron, noneAfter: Infinity };
    if (crons.size >= CRON_CACHE_SIZE) crons.clear();
    crons.set(key, search);
  }
  if (after >= search.noneAfter) throw never();
  const next = search.cron.nextRun(from)?.getTime();
  if (next === undefined) search.noneAfter = after;
  if (next === undefined || next - after > TIMER_HORIZON_MS || next > MAX_TIME_MS) throw never();
  return next;
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

/**
 * The `Nats-Msg-Id` of a timer's firing: the same for every attempt at one occurrence, an HMAC
 * keyed with the workers' salt (was `$f.<salt>.<stream>.<stateKey>.<id>.<n>.<at>`, which showed
 * the salt). Nothing parses it: the fold matches a firing by its payload.
 */
export function fireMsgId(salt: string, stream: number, stateKey: string, t: Pick<StoredTimer, 'id' | 'n' | 'at'>): string {
  return `$f.${saltedMac(salt, ['$f', String(stream), stateKey, t.id, String(t.n), String(t.at)], MSG_ID_MAC_CHARS)}`;
}
