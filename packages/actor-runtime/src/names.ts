import { ActorError, ErrorCode, InvalidNameError } from './errors.js';

/** Names of the stream, subjects and buckets; tests override them, users rarely do. */
export interface ActorNames {
  /** JetStream stream that stores operations. Default `ACTORS`. */
  stream: string;
  /** First token of operation subjects. Default `actors`. */
  subjectPrefix: string;
  /** KV bucket that holds actor state records. Default `actors`. */
  stateBucket: string;
  /** KV bucket that holds members, leases and checkpoints. Default `actors_ctl`. */
  controlBucket: string;
  /** Stream of dead letters (failed operations). Default `ACTORS_DLQ`. */
  dlqStream: string;
  /**
   * KV bucket that keeps the outcome (result or error) of every operation published with an
   * idempotency key, by stream sequence, for the duplicate window. Default `actors_outcomes`.
   */
  outcomeBucket: string;
  /**
   * KV bucket that indexes, per partition, the actors that have timers (`<p>.<type>.<key>`),
   * so a new owner finds them without reading every record. Default `actors_timers`.
   */
  timerBucket: string;
  /**
   * Prefix of the inboxes callers await results on; a worker replies only to a literal subject
   * under it. Default `_INBOX` (what NATS clients use unless their `inboxPrefix` is set).
   */
  inboxPrefix: string;
}

/** The default {@link ActorNames}. */
export function defaultNames(overrides: Partial<ActorNames> = {}): ActorNames {
  return {
    stream: 'ACTORS',
    subjectPrefix: 'actors',
    stateBucket: 'actors',
    controlBucket: 'actors_ctl',
    dlqStream: 'ACTORS_DLQ',
    outcomeBucket: 'actors_outcomes',
    timerBucket: 'actors_timers',
    inboxPrefix: '_INBOX',
    ...overrides,
  };
}

/** Maximum length of an actor type name. */
export const MAX_TYPE_LENGTH = 64;
/** Maximum length of an actor key. */
export const MAX_KEY_LENGTH = 128;
/** Maximum length of an operation name. */
export const MAX_OP_LENGTH = 64;
/**
 * Types that cannot be used because they collide with other subjects: `call` (the gateway's
 * `actors.call.<type>.<key>.<op>`) and `query` (the workers' `actors.query.<type>.<key>.<name>`).
 */
export const RESERVED_TYPES: ReadonlySet<string> = new Set(['call', 'query']);

const TOKEN = /^[A-Za-z0-9_=-]+$/;
const OP_TOKEN = /^\$?[A-Za-z0-9_-]+$/;

/**
 * Checks that a type, key or operation name is one subject token that is also a
 * valid KV key: `[A-Za-z0-9_=-]`, bounded length. Throws {@link InvalidNameError}.
 */
export function validateName(field: 'type' | 'key' | 'op', value: string): void {
  const max = field === 'type' ? MAX_TYPE_LENGTH : field === 'key' ? MAX_KEY_LENGTH : MAX_OP_LENGTH;
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidNameError(field, `${field} must be a non-empty string`);
  }
  if (value.length > max) {
    throw new InvalidNameError(field, `${field} is ${value.length} characters long; the maximum is ${max}`);
  }
  const re = field === 'op' ? OP_TOKEN : TOKEN;
  if (!re.test(value)) {
    throw new InvalidNameError(
      field,
      `${field} '${value}' may contain only letters, digits, '_', '=' and '-' (no '.', '*', '>' or spaces)`,
    );
  }
  if (field === 'type' && RESERVED_TYPES.has(value)) {
    throw new InvalidNameError(field, `type '${value}' is reserved`);
  }
}

/**
 * Headers that make an operation message set a timer instead of being applied now: at the
 * timer's time the worker applies the operation (with the message's payload as input).
 * `At` is ms since the epoch or an ISO 8601 time; `DelayMs` counts from the message's time in
 * the stream; `Id` (default `t<seq>`) replaces a timer of the same id; `EveryMs` and `Cron`
 * (UTC) make it recurring.
 */
export const TimerHeaders = {
  Id: 'Jetactor-Timer-Id',
  At: 'Jetactor-Timer-At',
  DelayMs: 'Jetactor-Timer-Delay-Ms',
  EveryMs: 'Jetactor-Timer-Every-Ms',
  Cron: 'Jetactor-Timer-Cron',
} as const;

/** Cancels one of an actor's timers: payload `{"id":"<id>"}`; result `{"cancelled":true|false,"id"}`. */
export const CANCEL_TIMER_OPERATION = '$cancel';
/** A timer firing (published by the partition's owner; the worker checks it against the record). */
export const FIRE_TIMER_OPERATION = '$fire';
/** Maximum length of a timer id. */
export const MAX_TIMER_ID_LENGTH = 64;
const TIMER_ID = /^[A-Za-z0-9_=-]+$/;

/** Checks a timer id (`[A-Za-z0-9_=-]`, at most 64 characters); throws an `INVALID_TIMER` {@link ActorError}. */
export function validateTimerId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_TIMER_ID_LENGTH || !TIMER_ID.test(id)) {
    throw new ActorError(ErrorCode.InvalidTimer, `timer id must be 1 to ${MAX_TIMER_ID_LENGTH} characters of [A-Za-z0-9_=-], got ${JSON.stringify(String(id).slice(0, 80))}`);
  }
}

/** Subject on which an operation is published: `<prefix>.<type>.<key>.<op>`. */
export function operationSubject(names: ActorNames, type: string, key: string, op: string): string {
  return `${names.subjectPrefix}.${type}.${key}.${op}`;
}

/**
 * Subject on which workers answer a query: `<prefix>.query.<type>.<key>.<name>` (five tokens,
 * so the operations stream, which captures `<prefix>.*.*.*`, never stores it).
 */
export function querySubject(names: Pick<ActorNames, 'subjectPrefix'>, type: string, key: string, name: string): string {
  return `${names.subjectPrefix}.query.${type}.${key}.${name}`;
}

/** Subject of a dead letter: `<prefix>_dlq.<type>.<key>.<op>` (outside the operations stream). */
export function deadLetterSubject(names: ActorNames, type: string, key: string, op: string): string {
  return `${names.subjectPrefix}_dlq.${type}.${key}.${op}`;
}

/** KV key of an actor's state record: `<type>.<key>`. */
export function stateKey(type: string, key: string): string {
  return `${type}.${key}`;
}

/**
 * FNV-1a (32 bit) of the type and key joined without a separator, mod `partitions`.
 * This is what nats-server's `{{partition(P,1,2)}}` subject transform computes, so a
 * client can tell which partition an actor lives in.
 */
export function partitionOf(type: string, key: string, partitions: number): number {
  let h = 0x811c9dc5;
  const s = type + key;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}

/** A stored operation subject, parsed. */
export interface ParsedSubject {
  partition: number;
  type: string;
  key: string;
  op: string;
}

/** Parses a stored subject `<p>.<prefix>.<type>.<key>.<op>`; null if it has another shape. */
export function parseStoredSubject(subject: string): ParsedSubject | null {
  const parts = subject.split('.');
  if (parts.length !== 5) return null;
  const [p, , type, key, op] = parts as [string, string, string, string, string];
  const partition = Number(p);
  if (!Number.isInteger(partition)) return null;
  return { partition, type, key, op };
}

/** Longest reply subject a worker or the gateway publishes to. */
export const MAX_REPLY_SUBJECT_LENGTH = 256;

/** Subject spaces nobody may be answered on: JetStream's API, KV and object stores, the system account. */
const FORBIDDEN_REPLY_ROOTS = ['$JS', '$KV', '$O', '$SYS', '$SRV', '$NRG', '$G'];

const REPLY_TOKEN = /^[A-Za-z0-9_=+-]+$/;

/**
 * True if `subject` is a subject a caller may legitimately be answered on: a literal subject
 * (tokens of `[A-Za-z0-9_=+-]`, no wildcards, no whitespace, at most
 * {@link MAX_REPLY_SUBJECT_LENGTH} characters) under `<names.inboxPrefix>.`, and never under
 * `$JS`, `$KV`, `$SYS` (and the other `$` roots), the operation subjects or the dead letters.
 * A worker publishes a reply with its own credentials, so a forged reply header must never
 * name a bucket, a stream API or another actor.
 */
export function isValidReplySubject(subject: unknown, names: Pick<ActorNames, 'inboxPrefix' | 'subjectPrefix'>): boolean {
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_REPLY_SUBJECT_LENGTH) return false;
  const tokens = subject.split('.');
  const prefix = names.inboxPrefix.split('.');
  if (tokens.length <= prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (tokens[i] !== prefix[i]) return false;
  const root = tokens[0] as string;
  if (FORBIDDEN_REPLY_ROOTS.includes(root.toUpperCase()) || root === names.subjectPrefix || root === `${names.subjectPrefix}_dlq`) return false;
  for (let i = prefix.length; i < tokens.length; i++) if (!REPLY_TOKEN.test(tokens[i] as string)) return false;
  return true;
}

/** A client-side operation subject `<prefix>.<type>.<key>.<op>`, parsed and validated; null if it is not one. */
export function parseOperationSubject(subject: string, names: Pick<ActorNames, 'subjectPrefix'>): { type: string; key: string; op: string } | null {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[0] !== names.subjectPrefix) return null;
  const [, type, key, op] = parts as [string, string, string, string];
  try {
    validateName('type', type);
    validateName('key', key);
    validateName('op', op);
  } catch {
    return null;
  }
  return { type, key, op };
}
