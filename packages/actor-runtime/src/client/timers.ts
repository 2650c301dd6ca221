/**
 * Timers from the client's side: schedule an operation for later (the operation's message
 * with the timer headers, {@link TimerHeaders}), list an actor's timers (from its record in the
 * state bucket) and cancel one (the `$cancel` operation). The worker validates a timer again
 * and stores it in the actor's record; at its time the operation is applied exactly once.
 *
 * The client always sends an absolute time (`Jetactor-Timer-At`, ms): a delay, a first period
 * or the next cron match is turned into one here, so the `at` a caller is answered is the
 * one the worker stores.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { JetStreamManager, PubAck } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { headers, type MsgHdrs } from '@nats-io/nats-core';
import { ActorError, ErrorCode, CANCEL_TIMER_OPERATION, stateKey, TimerHeaders, validateName, validateTimerId, type ActorNames } from '../protocol/index.js';
import { MAX_TIME_MS, timerOfRequest } from '../effects/effects.js';
import { decodeJson, type StateRecord, type StoredTimer } from '../store/records.js';
import type { CallResult, PublishOperation } from './results.js';
import type { ScheduleOptions, ScheduleResult, TimerInfo, TimerList, CancelTimerOptions, CancelTimerSent, CancelTimerOutcome, TimerClient } from './timer-types.js';

export type { ScheduleOptions, ScheduleResult, TimerInfo, TimerList, CancelTimerOptions, CancelTimerSent, CancelTimerOutcome, TimerClient } from './timer-types.js';

/** What the timer methods need of their client. */
export interface TimerPorts {
  readonly names: ActorNames;
  /** Checks names, operation and input as a signal does. */
  validate(type: string, key: string, op: string, input: unknown): void;
  /** Publishes one operation (a duplicate is checked against the original). */
  publish(o: PublishOperation): Promise<PubAck>;
  /** Publishes one operation and awaits its result (no validation of the operation). */
  call(o: PublishOperation): Promise<CallResult>;
  /** Reads an actor's record once it includes `minSeq` (the client's `read`). */
  settle(type: string, key: string, minSeq: number, timeoutMs: number | undefined): Promise<unknown>;
  jsm(): Promise<JetStreamManager>;
  state(): Promise<KV>;
}

function invalidTimer(message: string): ActorError {
  return new ActorError(ErrorCode.InvalidTimer, message);
}

/**
 * The id of a timer set without one: from the idempotency key (`k` and 21 characters of a
 * SHA-256 of type, key and idempotency key, so a retry names the same timer), else random
 * (`r` and 21 characters).
 */
export function defaultTimerId(type: string, key: string, idempotencyKey?: string): string {
  const bytes = idempotencyKey === undefined ? randomBytes(16) : createHash('sha256').update(`${type}.${key}.${idempotencyKey}`).digest();
  return `${idempotencyKey === undefined ? 'r' : 'k'}${bytes.toString('base64url').slice(0, 21)}`;
}

/** A time option as the `Jetactor-Timer-At` header takes it (checked by the worker's rules). */
function atText(at: Date | number | string): string {
  if (at instanceof Date) return String(at.getTime());
  return typeof at === 'number' ? String(at) : at;
}

/** A number option as header text; anything but a number is refused. */
function numberText(value: unknown, name: string): string {
  if (typeof value !== 'number') throw invalidTimer(`${name} must be a number of ms, got ${JSON.stringify(String(value).slice(0, 80))}`);
  return String(value);
}

/** A timer to publish: its headers, id and first time. */
export interface PlannedTimer {
  headers: MsgHdrs;
  id: string;
  /** First time, ms since the epoch. */
  at: number;
}

/**
 * Checks the schedule options by the worker's own rules and fixes the first time: `at`, or
 * now + `delayMs`, or now + `every`, or the next match of `cron` after now. Throws an
 * `INVALID_TIMER` {@link ActorError}.
 */
export function planTimer(type: string, key: string, op: string, input: unknown, opts: ScheduleOptions, now = Date.now()): PlannedTimer {
  if (opts.at !== undefined && opts.delayMs !== undefined) throw invalidTimer('give at or delayMs, not both');
  if (opts.every !== undefined && opts.cron !== undefined) throw invalidTimer('give every or cron, not both');
  if (opts.at === undefined && opts.delayMs === undefined && opts.every === undefined && opts.cron === undefined) {
    throw invalidTimer('a timer needs at, delayMs, every or cron');
  }
  const id = opts.id ?? defaultTimerId(type, key, opts.idempotencyKey);
  validateTimerId(id);
  const request = {
    id,
    ...(opts.at !== undefined ? { at: atText(opts.at) } : {}),
    ...(opts.delayMs !== undefined ? { delayMs: numberText(opts.delayMs, 'delayMs') } : {}),
    ...(opts.every !== undefined ? { everyMs: numberText(opts.every, 'every') } : {}),
    ...(opts.cron !== undefined ? { cron: opts.cron } : {}),
  };
  const inputText = input === undefined ? undefined : JSON.stringify(input);
  const timer = timerOfRequest(request, op, inputText, { type, key, seq: 0, time: now });
  const h = headers();
  h.set(TimerHeaders.Id, id);
  h.set(TimerHeaders.At, String(timer.at));
  if (timer.every !== undefined) h.set(TimerHeaders.EveryMs, String(timer.every));
  if (timer.cron !== undefined) h.set(TimerHeaders.Cron, timer.cron);
  return { headers: h, id, at: timer.at };
}

/** A `Jetactor-Timer-At` value (ms or ISO 8601) as ms; NaN when it is neither or no valid date. */
function headerTime(text: string): number {
  const ms = /^\d{1,16}$/.test(text) ? Number(text) : Date.parse(text);
  return ms <= MAX_TIME_MS ? ms : NaN;
}

/**
 * A stored time as ISO 8601, clamped to the valid dates: a record written before times were
 * bounded may hold a recurring timer stepped past the largest date, and listing must not fail.
 */
function isoTime(ms: number): string {
  return new Date(Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_TIME_MS) : 0).toISOString();
}

/**
 * The id and time of the original a duplicate ack points to. An original that set no timer
 * (the key was used for a plain signal) is {@link ErrorCode.IdempotencyKeyReused}; one no
 * longer in the stream is taken as planned.
 */
async function originalTimer(jsm: JetStreamManager, names: ActorNames, seq: number, planned: PlannedTimer, idempotencyKey: string): Promise<{ id: string; at: number }> {
  const m = await jsm.streams.getMessage(names.stream, { seq });
  if (!m) return planned;
  const id = m.header.get(TimerHeaders.Id);
  const at = headerTime(m.header.get(TimerHeaders.At));
  if (id === '' || !Number.isFinite(at)) {
    throw new ActorError(
      ErrorCode.IdempotencyKeyReused,
      `Idempotency-Key '${idempotencyKey}' was already used for an operation that set no timer (seq ${seq}); use a new key for a new operation`,
    );
  }
  return { id, at };
}

function timerInfo(t: StoredTimer): TimerInfo {
  let input: unknown;
  if (t.input !== undefined) {
    try {
      input = JSON.parse(t.input) as unknown;
    } catch {
      input = t.input;
    }
  }
  return {
    id: t.id,
    at: isoTime(t.at),
    op: t.op,
    target: { type: t.type, key: t.key },
    ...(t.input !== undefined ? { input } : {}),
    ...(t.every !== undefined ? { every: t.every } : {}),
    ...(t.cron !== undefined ? { cron: t.cron } : {}),
  };
}

/** The timers of a stored record (bytes of the state bucket's entry), soonest first. */
export function timersOfRecord(value: Uint8Array | undefined): TimerInfo[] {
  const rec = value === undefined ? null : decodeJson<StateRecord>(value);
  const timers = Array.isArray(rec?.timers) ? rec.timers : [];
  return [...timers].sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(timerInfo);
}

/** The {@link TimerClient} methods on `ports`. */
export function timerMethods(ports: TimerPorts): TimerClient {
  async function schedule(type: string, key: string, op: string, input: unknown, opts: ScheduleOptions): Promise<ScheduleResult> {
    ports.validate(type, key, op, input);
    const planned = planTimer(type, key, op, input, opts);
    const { idempotencyKey } = opts;
    const ack = await ports.publish({ type, key, op, input, idempotencyKey, headers: planned.headers });
    const stored = ack.duplicate && idempotencyKey ? await originalTimer(await ports.jsm(), ports.names, ack.seq, planned, idempotencyKey) : planned;
    return {
      scheduled: op,
      type,
      key,
      id: stored.id,
      at: new Date(stored.at).toISOString(),
      seq: ack.seq,
      ...(ack.duplicate ? { duplicate: true as const } : {}),
    };
  }

  async function timers(type: string, key: string, opts: { minSeq?: number; timeoutMs?: number } = {}): Promise<TimerList> {
    validateName('type', type);
    validateName('key', key);
    if (opts.minSeq !== undefined && opts.minSeq > 0) await ports.settle(type, key, opts.minSeq, opts.timeoutMs);
    const entry = await (await ports.state()).get(stateKey(type, key));
    return { type, key, timers: timersOfRecord(entry?.operation === 'PUT' ? entry.value : undefined) };
  }

  function cancelTimer(type: string, key: string, id: string, opts?: CancelTimerOptions & { wait?: false }): Promise<CancelTimerSent>;
  function cancelTimer(type: string, key: string, id: string, opts: CancelTimerOptions & { wait: true }): Promise<CancelTimerOutcome>;
  function cancelTimer(type: string, key: string, id: string, opts?: CancelTimerOptions): Promise<CancelTimerSent | CancelTimerOutcome>;
  async function cancelTimer(type: string, key: string, id: string, opts: CancelTimerOptions = {}): Promise<CancelTimerSent | CancelTimerOutcome> {
    validateName('type', type);
    validateName('key', key);
    validateTimerId(id);
    const o: PublishOperation = { type, key, op: CANCEL_TIMER_OPERATION, input: { id }, idempotencyKey: opts.idempotencyKey };
    if (opts.wait === true) return (await ports.call({ ...o, timeoutMs: opts.timeoutMs })) as CancelTimerOutcome;
    const ack = await ports.publish(o);
    return { cancelled: id, type, key, seq: ack.seq, ...(ack.duplicate ? { duplicate: true as const } : {}) };
  }

  return { schedule, timers, cancelTimer };
}
