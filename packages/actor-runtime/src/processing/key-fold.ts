/** The types of a fold (fold.ts): what it needs, what one key's fold leaves, what a failure is. */
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { toErrorBody, type ErrorBody } from '../protocol/index.js';
import type { DecodedOp } from './decode.js';
import type { EffectsDraft } from './effects-draft.js';
import type { CachedRecord } from './record-cache.js';

/** What the fold needs to know besides the operations. */
export interface FoldEnv {
  actors: ReadonlyMap<string, AnyActorDefinition>;
  /** Largest serialized state (and result) in bytes; a record must fit in one NATS message. */
  maxStateBytes: number;
  /** Largest input of a send in bytes: what the operations stream takes in one operation. */
  maxSendBytes?: number;
  /** Keep the applied states for a debug log line per operation. */
  debug?: boolean;
  /** The workers' shared salt and the stream's incarnation: parts of every send's msg id. */
  salt: string;
  stream: number;
  /** Partitions of the stream: a receiver keeps what it applied per sender partition (send-dedup.ts). */
  partitions: number;
  /** First token of operation subjects (`actors`). */
  subjectPrefix: string;
  /** What to do with an operation this worker's definition does not know (default: a dead letter); see {@link unknownOperationAction}. */
  unknownOperation?: UnknownOperationAction;
}

/**
 * Decides what happens to an operation whose name the worker's definition of `type` does not
 * have: `dead-letter` (UNKNOWN_OPERATION, the partition moves on) or `wait` (the partition stops
 * at it, like at a record of a newer version, until a worker that knows it applies it).
 */
export type UnknownOperationAction = (type: string, op: string) => 'dead-letter' | 'wait';

/** One key's operations folded onto its record; its outputs wait for the commit. */
export interface KeyFold {
  /** Working copy of the record (the cache keeps the committed one); its timers and outbox are set when the fold ends. */
  rec: CachedRecord;
  /** The record's timers and pending sends while the fold runs. */
  fx: EffectsDraft;
  /** The record changed and must be written. */
  dirty: boolean;
  // Created on first use: most keys of a batch have no reply, no error and one operation.
  /** Reply bodies (JSON text) for callers, sent after the checkpoint. */
  replies?: Array<{ inbox: string; body: string }>;
  /** Outcomes (JSON text, like a reply body) of operations that carry an idempotency key. */
  outcomes?: Array<{ seq: number; body: string }>;
  /** Failed operations: the committer makes them error results, kept outcomes, dead letters (unless refusals) and log lines. */
  failures?: Failure[];
  /** `<type>.<op>` of every applied operation (interned strings). */
  applied?: string[];
  /** With `debug`: every applied operation and the state after it. */
  trace?: Array<{ op: DecodedOp; state: string | null }>;
  /** The record's timers changed: the partition's timer index must follow. */
  timersChanged?: boolean;
  /** A firing matched no timer: the index may be stale for this key; check it against the record. */
  reindex?: boolean;
}

/**
 * A failed operation: its error result, kept outcome and log line, and its dead letter unless
 * `refusal` (a handler's deliberate `ActorError`: the operation's outcome, not a dead letter).
 */
export type Failure = { op: DecodedOp; error: ErrorBody; cause: unknown; refusal?: true };

/** A failed operation; `refusal`: its handler's deliberate error (an outcome, no dead letter). */
export function failureOf(op: DecodedOp, err: unknown, refusal: boolean): Failure {
  return refusal ? { op, error: toErrorBody(err), cause: err, refusal: true } : { op, error: toErrorBody(err), cause: err };
}

/** Marks the record written by the operation at `seq`. */
export function touch(f: KeyFold, seq: number): void {
  f.rec.seq = seq;
  f.dirty = true;
}
