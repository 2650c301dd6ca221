/**
 * Names on the wire: the stream, subject prefix and buckets ({@link ActorNames}), the check of
 * a type, key, operation or timer id (the rule itself is in name-rules.ts, written once), the
 * same rule as TypeBox schemas for route schemas, OpenAPI and actors' inputs, the state key and
 * the partition of an actor.
 */
import { Type, type TString } from '@sinclair/typebox';
import { ActorError, ErrorCode, InvalidNameError } from './errors.js';
import { isValidName, maxNameLength, nameErrorMessage, namePattern, RESERVED_TYPES, type NameField } from './name-rules.js';

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

/**
 * Checks that a type, key or operation name is one subject token that is also a valid KV key
 * (name-rules.ts; an operation may be one of the runtime's own `$` names). Throws
 * {@link InvalidNameError} with the rule and the value.
 */
export function validateName(field: 'type' | 'key' | 'op', value: string): void {
  if (!isValidName(field, value, true)) throw new InvalidNameError(field, nameErrorMessage(field, value));
}

/** Cancels one of an actor's timers: payload `{"id":"<id>"}`; result `{"cancelled":true|false,"id"}`. */
export const CANCEL_TIMER_OPERATION = '$cancel';
/** A timer firing (published by the partition's owner; the worker checks it against the record). */
export const FIRE_TIMER_OPERATION = '$fire';

/** Checks a timer id (name-rules.ts); throws an `INVALID_TIMER` {@link ActorError}. */
export function validateTimerId(id: unknown): asserts id is string {
  if (!isValidName('timerId', id)) throw new ActorError(ErrorCode.InvalidTimer, nameErrorMessage('timerId', id));
}

/**
 * A name as a TypeBox schema (a JSON Schema string with the rule's pattern): for route schemas,
 * the OpenAPI document and actors whose input names another actor. A type's schema also
 * excludes the reserved types.
 */
export function nameSchema(field: NameField, options: { description?: string } = {}): TString {
  const reserved = field === 'type' ? { not: { enum: [...RESERVED_TYPES].sort() } } : {};
  return Type.String({ minLength: 1, maxLength: maxNameLength(field), pattern: namePattern(field), ...reserved, ...options });
}

/** An actor key as a TypeBox schema (`nameSchema('key')`), e.g. the receiver of a transfer. */
export function ActorKeySchema(options: { description?: string } = {}): TString {
  return nameSchema('key', options);
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
