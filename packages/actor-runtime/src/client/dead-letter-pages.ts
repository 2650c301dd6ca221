/** Dead letters as a client pages through them. */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers, type MsgHdrs } from '@nats-io/nats-core';
import { ActorError, DeadLetterHeaders, decodeDeadLetter, ErrorCode, operationSubject, parseOperationSubject, RESUBMITTED_HEADER, TimerHeaders, type ActorNames, type DeadLetter } from '../protocol/index.js';

/** A dead-letter page's consumer left behind by a process that died mid-page is removed by the server after this, in ms. */
const DLQ_PAGE_INACTIVE_MS = 30_000;

/** A page of dead letters from `stream`, from `cursor` (exclusive) on. */
export async function deadLetterPage(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  opts: { limit?: number; cursor?: number } = {},
): Promise<{ items: DeadLetter[]; nextCursor: number | null }> {
  const limit = Math.max(1, Math.min(1000, opts.limit ?? 100));
  const info = await jsm.streams.info(stream);
  const last = info.state.last_seq;
  const from = Math.max((opts.cursor ?? 0) + 1, info.state.first_seq);
  const items: DeadLetter[] = [];
  if (info.state.messages === 0 || from > last) return { items, nextCursor: null };
  // The page's consumer is deleted once read: left to the server's inactivity threshold
  // (5 minutes) every page kept one, and a client paging fast piled up thousands. The
  // threshold is only for a page abandoned mid-read (this process died).
  const consumer = await js.consumers.get(stream, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: from,
    inactive_threshold: DLQ_PAGE_INACTIVE_MS,
  });
  try {
    const batch = await consumer.fetch({ max_messages: limit, expires: 2000 });
    for await (const m of batch) {
      items.push(decodeDeadLetter(m.seq, m.subject, m.headers, m.data, m.info.timestampNanos));
      if (items.length >= limit || m.seq >= last) break;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  const tail = items[items.length - 1];
  return { items, nextCursor: tail && tail.dlqSeq < last ? tail.dlqSeq : null };
}

/**
 * What resubmitting dead letter `dlqSeq` publishes: its operation again, only ever to a valid
 * operation subject (never to whatever a forged dead letter names: a bucket, the JetStream API),
 * with its timer headers (so the worker checks and sets the timer again) and marked
 * resubmitted (the worker's log and a new dead letter say from which).
 */
export async function resubmission(jsm: JetStreamManager, names: ActorNames, dlqSeq: number): Promise<{ subject: string; data: Uint8Array; headers: MsgHdrs }> {
  const m = await jsm.streams.getMessage(names.dlqStream, { seq: dlqSeq });
  if (!m) throw new ActorError(ErrorCode.NotFound, `no dead letter ${dlqSeq}`);
  const stored = m.header.get(DeadLetterHeaders.Subject);
  const target = stored ? parseOperationSubject(stored, names) : null;
  if (!target) {
    throw new ActorError(
      ErrorCode.InvalidDeadLetter,
      `dead letter ${dlqSeq} names no valid operation subject (${names.subjectPrefix}.<type>.<key>.<op>); it cannot be resubmitted`,
    );
  }
  const h = headers();
  h.set(RESUBMITTED_HEADER, String(dlqSeq));
  for (const name of Object.values(TimerHeaders)) {
    const value = m.header.get(name);
    if (value !== '') h.set(name, value);
  }
  return { subject: operationSubject(names, target.type, target.key, target.op), data: m.data, headers: h };
}
