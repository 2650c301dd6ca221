/**
 * Every subject the runtime, the gateway and the CLI build or parse: operations
 * (`<prefix>.<type>.<key>.<op>`, stored as `<p>.<prefix>.<type>.<key>.<op>`), queries, dead
 * letters, the gateway's NATS calls, and the reply subjects a worker may answer on.
 */
import { isValidName } from './name-rules.js';
import type { ActorNames } from './names.js';

/** Subject on which an operation is published: `<prefix>.<type>.<key>.<op>`. */
export function operationSubject(names: Pick<ActorNames, 'subjectPrefix'>, type: string, key: string, op: string): string {
  return `${names.subjectPrefix}.${type}.${key}.${op}`;
}

/**
 * Subject on which workers answer a query: `<prefix>.query.<type>.<key>.<name>` (five tokens,
 * so the operations stream, which captures `<prefix>.*.*.*`, never stores it).
 */
export function querySubject(names: Pick<ActorNames, 'subjectPrefix'>, type: string, key: string, name: string): string {
  return `${names.subjectPrefix}.query.${type}.${key}.${name}`;
}

/** What the operations stream captures: `<prefix>.*.*.*` (each operation subject). */
export function operationSubjects(subjectPrefix: string): string {
  return `${subjectPrefix}.*.*.*`;
}

/** Subject of a dead letter: `<prefix>_dlq.<type>.<key>.<op>` (outside the operations stream). */
export function deadLetterSubject(names: Pick<ActorNames, 'subjectPrefix'>, type: string, key: string, op: string): string {
  return `${names.subjectPrefix}_dlq.${type}.${key}.${op}`;
}

/** What the dead-letter stream captures: `<prefix>_dlq.>`. */
export function deadLetterSubjects(subjectPrefix: string): string {
  return `${subjectPrefix}_dlq.>`;
}

/** The gateway's NATS call endpoint subject: `<prefix>.call.*.*.*` (a call is `<prefix>.call.<type>.<key>.<op>`). */
export function callSubjects(subjectPrefix: string): string {
  return `${subjectPrefix}.call.*.*.*`;
}

/** A call subject `<prefix>.call.<type>.<key>.<op>` split into its names (not checked); null if it has another shape. */
export function parseCallSubject(subject: string): { type: string; key: string; op: string } | null {
  const tokens = subject.split('.');
  if (tokens.length !== 5) return null;
  const [, , type, key, op] = tokens as [string, string, string, string, string];
  return { type, key, op };
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

/** A client-side operation subject `<prefix>.<type>.<key>.<op>`, parsed and validated; null if it is not one. */
export function parseOperationSubject(subject: string, names: Pick<ActorNames, 'subjectPrefix'>): { type: string; key: string; op: string } | null {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[0] !== names.subjectPrefix) return null;
  const [, type, key, op] = parts as [string, string, string, string];
  if (!isValidName('type', type) || !isValidName('key', key) || !isValidName('op', op, true)) return null;
  return { type, key, op };
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
