/**
 * What an operation leaves besides its state: dead letters, kept outcomes (stored before the
 * records), and the removal of tombstones the checkpoint has passed.
 */
import { headers } from '@nats-io/nats-core';
import { FencedError, type ErrorBody, DeadLetterHeaders } from '../protocol/index.js';
import { errorBody, newRecord, type CommitterOptions } from './commit-types.js';
import { nameError, setTimerHeaders, type DecodedOp } from './decode.js';
import type { Failure, KeyFold } from './key-fold.js';
import { encodeText } from './record-io.js';

/** Stores the dead letters and kept outcomes of `failures` and of `folds`. */
export async function storeSideOutputs(o: CommitterOptions, failures: readonly Failure[], folds: Iterable<KeyFold>): Promise<void> {
  const dead: Failure[] = [];
  const outcomes: Array<{ seq: number; body: string }> = [];
  const fail = (x: Failure) => {
    // A refusal (a handler's deliberate error) is an outcome only; the rest are dead letters too.
    if (!x.refusal) dead.push(x);
    if (x.op.hasMsgId) outcomes.push({ seq: x.op.seq, body: errorBody(x) });
  };
  for (const x of failures) fail(x);
  for (const f of folds) {
    if (f.outcomes) outcomes.push(...f.outcomes);
    if (f.failures) for (const x of f.failures) fail(x);
  }
  await Promise.all([publishDeadLetters(o, dead), publishOutcomes(o, outcomes)]);
}

async function publishDeadLetters(o: CommitterOptions, items: Array<{ op: DecodedOp; error: ErrorBody }>): Promise<void> {
  const subjectOf = o.deadLetterSubject;
  if (!subjectOf || items.length === 0 || o.aborted()) return;
  const { streamCreated } = o.topology;
  const stream = o.names.stream;
  await Promise.all(
    items.map(({ op, error }) => {
      const h = headers();
      h.set(DeadLetterHeaders.Seq, String(op.seq));
      h.set(DeadLetterHeaders.Subject, op.subject.slice(op.subject.indexOf('.') + 1));
      h.set(DeadLetterHeaders.Code, error.code);
      h.set(DeadLetterHeaders.Message, error.message.replace(/[\r\n]+/g, ' ').slice(0, 1024));
      h.set(DeadLetterHeaders.Time, new Date(op.time).toISOString());
      // A message that set a timer keeps its timer headers: resubmitting it sets the timer
      // again (checked again), instead of applying its operation at once.
      if (op.timer) setTimerHeaders(h, op.timer);
      // A resubmitted operation that failed again says which dead letter it came from.
      if (op.resubmitted) h.set(DeadLetterHeaders.Resubmitted, op.resubmitted);
      // Invalid names go to one fixed subject (the header keeps the original): a subject
      // near the server's control-line limit would make this publish's longer line a
      // protocol error that drops the worker's connection.
      const subject = nameError(op) ? subjectOf('_invalid', '_', '_') : subjectOf(op.type, op.key, op.op);
      return o.store.publishDeadLetter(subject, op.data, h, `dlq-${stream}-${streamCreated}-${op.seq}`);
    }),
  );
}

async function publishOutcomes(o: CommitterOptions, items: Array<{ seq: number; body: string }>): Promise<void> {
  if (items.length === 0 || o.aborted()) return;
  if (!o.leaseValid()) throw new FencedError(`partition ${o.partition}: lease not held, refusing to keep outcomes`);
  await Promise.all(items.map((x) => o.store.writeOutcome(x.seq, encodeText(x.body))));
}

/**
 * Removes tombstones once the checkpoint has passed their delete: a replay starts after it,
 * so the record is no longer needed to skip what was applied. The purge removes the
 * subject's messages up to the tombstone's revision only, so a newer write survives it.
 */
export async function removeTombstones(o: CommitterOptions, all: Array<[string, number]>): Promise<void> {
  if (all.length === 0 || o.aborted() || !o.leaseValid()) return;
  const { store, cache, partition, log } = o;
  await Promise.all(
    all.map(async ([k, rev]) => {
      try {
        await store.purgeRecord(k, rev);
        const cached = cache.get(k);
        if (cached && cached.revision === rev && cached.json === null) cache.set(k, newRecord(partition));
      } catch (err) {
        log.warn({ partition, key: k, err: String(err) }, 'tombstone could not be removed; it is removed when next seen');
      }
    }),
  );
}
