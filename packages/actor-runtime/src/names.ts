import { InvalidNameError } from './errors.js';

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
}

/** The default {@link ActorNames}. */
export function defaultNames(overrides: Partial<ActorNames> = {}): ActorNames {
  return {
    stream: 'ACTORS',
    subjectPrefix: 'actors',
    stateBucket: 'actors',
    controlBucket: 'actors_ctl',
    dlqStream: 'ACTORS_DLQ',
    ...overrides,
  };
}

/** Maximum length of an actor type name. */
export const MAX_TYPE_LENGTH = 64;
/** Maximum length of an actor key. */
export const MAX_KEY_LENGTH = 128;
/** Maximum length of an operation name. */
export const MAX_OP_LENGTH = 64;
/** Types that cannot be used because they collide with other subjects. */
export const RESERVED_TYPES: ReadonlySet<string> = new Set(['call']);

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

/** Subject on which an operation is published: `<prefix>.<type>.<key>.<op>`. */
export function operationSubject(names: ActorNames, type: string, key: string, op: string): string {
  return `${names.subjectPrefix}.${type}.${key}.${op}`;
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
