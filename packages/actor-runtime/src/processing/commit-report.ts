/** What a commit tells besides its writes: replies, failures in the log and hooks, its own summary. */
import { ActorError } from '../protocol/index.js';
import { errorBody, type CommitterOptions } from './commit-types.js';
import type { DecodedOp } from './decode.js';
import type { Failure, KeyFold } from './key-fold.js';

/** What a batch's folds leave to the rest of the commit. */
export interface FoldOutputs {
  /** Keys whose records were written. */
  dirtyCount: number;
  replies: Array<{ inbox: string; body: string }>;
  /** Deleted records (key, revision) to remove once the checkpoint passes them. */
  tombstones: Array<[string, number]>;
  /** Applied operations by `<type>.<op>`. */
  byOperation: Record<string, number>;
}

/**
 * Takes the written records into the cache and gathers the folds' replies, failures (appended
 * to `failures`), tombstones and counts; with `debug`, logs every applied operation.
 */
export function gatherFolds(o: CommitterOptions, folds: ReadonlyMap<string, KeyFold>, failures: Failure[]): FoldOutputs {
  const { cache, log, partition } = o;
  const out: FoldOutputs = { dirtyCount: 0, replies: [], tombstones: [], byOperation: {} };
  for (const [k, f] of folds) {
    if (f.dirty) {
      out.dirtyCount++;
      cache.set(k, f.rec);
      // A deleted actor that received sends keeps its tombstone: it remembers which (send-dedup.ts).
      if (f.rec.json === null && !f.rec.received) out.tombstones.push([k, f.rec.revision]);
    }
    if (f.replies) out.replies.push(...f.replies);
    if (f.failures) failures.push(...f.failures);
    if (f.applied) for (const name of f.applied) out.byOperation[name] = (out.byOperation[name] ?? 0) + 1;
    if (f.trace) for (const t of f.trace) log.debug({ partition, type: t.op.type, key: t.op.key, op: t.op.op, seq: t.op.seq, state: t.state === null ? null : (JSON.parse(t.state) as unknown) }, 'applied');
  }
  return out;
}

/** Answers each failure's caller (into `replies`), logs it and reports it to the hooks. */
export function reportFailures(o: CommitterOptions, failures: readonly Failure[], replies: Array<{ inbox: string; body: string }>): void {
  const { log, partition } = o;
  for (const fail of failures) {
    const { op, error } = fail;
    if (op.reply) replies.push({ inbox: op.reply, body: errorBody(fail) });
    if (fail.refusal) {
      // A handler's deliberate error: the operation's outcome, not a fault (no dead letter).
      log.info({ partition, type: op.type, key: op.key, op: op.op, seq: op.seq, code: error.code, ...(op.resubmitted ? { resubmitted: op.resubmitted } : {}) }, `operation refused: ${error.message}`);
      o.hooks?.onOperationRefused?.({ partition, type: op.type, key: op.key, op: op.op, seq: op.seq, error });
      continue;
    }
    log.warn(
      {
        partition,
        type: op.type.slice(0, 130),
        key: op.key.slice(0, 130),
        op: op.op.slice(0, 130),
        seq: op.seq,
        code: error.code,
        ...(op.resubmitted ? { resubmitted: op.resubmitted } : {}),
        err: fail.cause instanceof ActorError ? undefined : fail.cause,
      },
      `operation failed: ${error.message}`,
    );
    o.hooks?.onOperationError?.({ partition, type: op.type, key: op.key, op: op.op, seq: op.seq, error, subject: op.subject, payload: op.data });
  }
}

/** Logs and reports the operations whose reply header was refused (applied, not answered). */
export function reportRefusedReplies(o: CommitterOptions, batch: readonly DecodedOp[]): void {
  for (const op of batch) {
    if (op.refusedReply === undefined) continue;
    o.log.warn({ partition: o.partition, seq: op.seq, reply: op.refusedReply }, 'reply header is not a literal inbox subject: the operation is applied, no reply is sent');
    o.hooks?.onRefusedReply?.({ partition: o.partition, seq: op.seq, reply: op.refusedReply });
  }
}

/** Reports a committed batch to the hooks and the log. */
export function reportCommit(o: CommitterOptions, info: { ops: number; keys: number; errors: number; commitMs: number; checkpoint: number; byOperation: Record<string, number> }): void {
  const { log, partition } = o;
  const { ops, keys, errors, commitMs, checkpoint } = info;
  o.hooks?.onCommit?.({ partition, ...info });
  // Info for big or slow commits; every commit at debug (a busy worker commits hundreds per second).
  const level = ops >= 1000 || commitMs > 1000 ? 'info' : 'debug';
  if (log.isLevelEnabled(level)) {
    log[level]({ partition, ops, keys, errors, commitMs: Math.round(commitMs), checkpoint }, 'committed');
  }
}
