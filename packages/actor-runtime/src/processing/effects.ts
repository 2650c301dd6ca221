/**
 * What an operation does besides its state, in pure form: the sends it returns, the timers it
 * sets or cancels, a timer set by message headers, and the next time of a recurring timer.
 * Everything here is checked before the operation's outcome is taken: a bad send or timer
 * fails the operation (state unchanged), it never reaches the record.
 */
import { Cron } from 'croner';
import { ActorError, ErrorCode } from '../errors.js';
import { validateName, validateTimerId } from '../names.js';
import type { StoredSend, StoredTimer } from '../store/records.js';
import type { TimerRequest } from './decode.js';

/** Most sends one operation may return. */
export const MAX_SENDS_PER_OPERATION = 100;
/** Most timers one actor may hold. */
export const MAX_TIMERS_PER_ACTOR = 1000;
/** Shortest period of a recurring timer, ms. */
export const MIN_TIMER_PERIOD_MS = 100;
/** Latest time a timer may be set for: the largest valid JavaScript date. */
const MAX_TIME_MS = 8.64e15;

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

/**
 * The sends of an outcome, each with its deterministic `Nats-Msg-Id`
 * (`$s.<salt>.<stream>.<seq>.<i>`: the same on every replay of the operation, unique in the stream).
 */
export function sendsOf(raw: unknown, origin: EffectOrigin, env: { salt: string; stream: number; subjectPrefix: string; maxStateBytes: number }): StoredSend[] {
  const maxBytes = env.maxStateBytes;
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw invalidSend('send must be an array of { type, key, op, input }');
  if (raw.length > MAX_SENDS_PER_OPERATION) throw invalidSend(`an operation may send at most ${MAX_SENDS_PER_OPERATION} operations, got ${raw.length}`);
  return (raw as unknown[]).map((s, i) => {
    if (typeof s !== 'object' || s === null) throw invalidSend(`send[${i}] must be an object { type, key, op, input }`);
    const t = target(s, origin, invalidSend, `send[${i}]`);
    const input = inputJson((s as { input?: unknown }).input, invalidSend, `send[${i}]`, maxBytes);
    return {
      id: `$s.${env.salt}.${env.stream}.${origin.seq}.${i}`,
      subject: `${env.subjectPrefix}.${t.type}.${t.key}.${t.op}`,
      ...(input !== undefined ? { input } : {}),
      seq: origin.seq,
    };
  });
}

const crons = new Map<string, Cron>();
/** A compiled cron expression (UTC), or an `INVALID_TIMER` error. */
function cronOf(expr: unknown): Cron {
  if (typeof expr !== 'string' || expr.length === 0 || expr.length > 200) throw invalidTimer('cron must be a cron expression of at most 200 characters');
  let c = crons.get(expr);
  if (!c) {
    try {
      c = new Cron(expr, { timezone: 'UTC', paused: true, mode: '5-or-6-parts' });
    } catch (err) {
      throw invalidTimer(`cron ${JSON.stringify(expr)} is not a cron expression: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (crons.size >= 1000) crons.clear();
    crons.set(expr, c);
  }
  return c;
}

/** The next time (ms) a cron expression matches strictly after `after`; an error if it never does. */
function nextCron(expr: string, after: number): number {
  const next = cronOf(expr).nextRun(new Date(after));
  if (!next) throw invalidTimer(`cron ${JSON.stringify(expr)} never matches after ${new Date(after).toISOString()}`);
  return next.getTime();
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
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < MIN_TIMER_PERIOD_MS || n > MAX_TIME_MS) {
    throw invalidTimer(`${what} must be an integer number of ms of at least ${MIN_TIMER_PERIOD_MS}, got ${JSON.stringify(String(raw).slice(0, 80))}`);
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
  const cron = fields.cron === undefined ? undefined : (cronOf(fields.cron), fields.cron as string);
  let at: number;
  if (fields.at !== undefined) at = timeOf(fields.at, `${what}: at`);
  else if (fields.afterMs !== undefined) at = time + delayOf(fields.afterMs, `${what}: afterMs`);
  else if (every !== undefined) at = time + every;
  else if (cron !== undefined) at = nextCron(cron, time);
  else throw invalidTimer(`${what}: give at, afterMs, every or cron`);
  if (at > MAX_TIME_MS) throw invalidTimer(`${what}: the time is past the largest valid date`);
  return { at, ...(every !== undefined ? { every } : {}), ...(cron !== undefined ? { cron } : {}) };
}

/** Replaces (by id) or adds timers, keeping the list bounded; returns a new list. */
function withTimers(current: readonly StoredTimer[], added: readonly StoredTimer[]): StoredTimer[] {
  const ids = new Set(added.map((t) => t.id));
  const next = [...current.filter((t) => !ids.has(t.id)), ...added];
  if (next.length > MAX_TIMERS_PER_ACTOR) throw invalidTimer(`an actor may hold at most ${MAX_TIMERS_PER_ACTOR} timers`);
  return next;
}

/** Applies an outcome's `cancel` then `schedule` to the actor's timers; undefined when neither is given. */
export function timersAfter(current: readonly StoredTimer[], rawSchedule: unknown, rawCancel: unknown, origin: EffectOrigin, maxBytes: number): StoredTimer[] | undefined {
  if (rawSchedule === undefined && rawCancel === undefined) return undefined;
  let next = [...current];
  if (rawCancel !== undefined) {
    if (!Array.isArray(rawCancel)) throw invalidTimer('cancel must be an array of timer ids');
    for (const id of rawCancel as unknown[]) validateTimerId(id);
    const gone = new Set(rawCancel as string[]);
    next = next.filter((t) => !gone.has(t.id));
  }
  if (rawSchedule === undefined) return next;
  if (!Array.isArray(rawSchedule)) throw invalidTimer('schedule must be an array of { id, op, afterMs | at, ... }');
  const added = (rawSchedule as unknown[]).map((s, i): StoredTimer => {
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
  return withTimers(next, added);
}

/** The timer a message's headers set on its own actor (`op` and input are the message's). */
export function timerOfRequest(req: TimerRequest, op: string, inputText: string | undefined, origin: EffectOrigin): StoredTimer {
  const id = req.id ?? `t${origin.seq}`;
  validateTimerId(id);
  if (op.startsWith('$')) throw invalidTimer(`operation '${op}' cannot be scheduled`);
  const when = schedule({ at: req.at, afterMs: req.delayMs, every: req.everyMs, cron: req.cron }, origin.time, 'timer headers');
  return { id, ...when, n: origin.seq, op, type: origin.type, key: origin.key, ...(inputText !== undefined ? { input: inputText } : {}) };
}

/** Adds or replaces one timer. */
export function withTimer(current: readonly StoredTimer[], timer: StoredTimer): StoredTimer[] {
  return withTimers(current, [timer]);
}

/**
 * The next occurrence of a recurring timer that fired at `firedAt` (ms, its stream time):
 * strictly after both its due time and the firing, so occurrences missed while nothing ran
 * fire once, not once each. Undefined for a one-shot timer.
 */
export function nextOccurrence(t: StoredTimer, firedAt: number): number | undefined {
  const after = Math.max(t.at, firedAt);
  if (t.every !== undefined) return t.at + t.every * (Math.floor((after - t.at) / t.every) + 1);
  if (t.cron !== undefined) {
    try {
      return nextCron(t.cron, after);
    } catch {
      return undefined; // a cron that never matches again ends
    }
  }
  return undefined;
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

/** The `Nats-Msg-Id` of a timer's firing: the same for every attempt at one occurrence. */
export function fireMsgId(salt: string, stream: number, stateKey: string, t: Pick<StoredTimer, 'id' | 'n' | 'at'>): string {
  return `$f.${salt}.${stream}.${stateKey}.${t.id}.${t.n}.${t.at}`;
}
