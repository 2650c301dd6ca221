import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg, type MsgRequest } from '@nats-io/jetstream';
import type { ActorClient } from '@jetactor/actor-runtime';
import { waitFor } from '@jetactor/testing';

/** One stored operation, as the stream holds it. */
export interface StoredOp {
  seq: number;
  /** Partition, from the stored subject `<p>.<prefix>.<type>.<key>.<op>`. */
  partition: number;
  type: string;
  key: string;
  op: string;
  /** Payload as text. */
  data: string;
  /** The `Nats-Msg-Id` header, if any. */
  msgId: string | undefined;
  /** Stream time, ms since the epoch. */
  time: number;
}

function storedOp(m: JsMsg): StoredOp | null {
  const parts = m.subject.split('.');
  if (parts.length !== 5) return null;
  return {
    seq: m.seq,
    partition: Number(parts[0]),
    type: parts[2] as string,
    key: parts[3] as string,
    op: parts[4] as string,
    data: m.string(),
    msgId: m.headers?.get('Nats-Msg-Id') || undefined,
    time: Number(m.timestampNanos / 1_000_000n),
  };
}

/** Reads every stored operation of `stream` in stream order, up to its last sequence now. */
export async function readStoredOps(js: JetStreamClient, jsm: JetStreamManager, stream = 'ACTORS'): Promise<StoredOp[]> {
  const info = await jsm.streams.info(stream);
  const last = info.state.last_seq;
  const out: StoredOp[] = [];
  if (info.state.messages === 0) return out;
  const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume();
  for await (const m of messages) {
    const op = storedOp(m);
    if (op) out.push(op);
    if (m.seq >= last) break;
  }
  messages.stop();
  return out;
}

/** Sequence of the first message at or after `seq` on `filter`, or null when there is none. */
async function nextSeq(jsm: JetStreamManager, stream: string, filter: string, seq: number): Promise<number | null> {
  // nats-server's STREAM.MSG.GET takes `next_by_subj` (with wildcards); nats.js types only some fields.
  const query = { seq, next_by_subj: filter } as unknown as MsgRequest;
  try {
    const m = await jsm.streams.getMessage(stream, query);
    return m ? m.seq : null;
  } catch (err) {
    if (/no message found|not found/i.test(String(err))) return null;
    throw err;
  }
}

/** Partitions holding an operation after their checkpoint (not applied yet, or applied and not checkpointed). */
export async function partitionsBehind(jsm: JetStreamManager, client: ActorClient, stream = 'ACTORS'): Promise<number[]> {
  const status = await client.status();
  const behind: number[] = [];
  for (const p of status.partitions) {
    if ((await nextSeq(jsm, stream, `${p.partition}.>`, p.checkpoint + 1)) !== null) behind.push(p.partition);
  }
  return behind;
}

/**
 * Waits until the system is at rest: every partition's checkpoint covers the last operation
 * stored in it and the stream's last sequence did not move meanwhile. A send is published
 * before the checkpoint that passes its operation, so once every checkpoint covers the whole
 * stream and the stream stopped growing, no send is in flight.
 */
export async function waitForQuiescence(jsm: JetStreamManager, client: ActorClient, opts: { timeoutMs?: number; stream?: string } = {}): Promise<number> {
  const stream = opts.stream ?? 'ACTORS';
  return waitFor(
    async () => {
      const before = (await jsm.streams.info(stream)).state.last_seq;
      if ((await partitionsBehind(jsm, client, stream)).length > 0) return false;
      const after = (await jsm.streams.info(stream)).state.last_seq;
      return after === before && after;
    },
    { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 200, message: 'every checkpoint to cover the whole stream, and the stream to stop growing' },
  );
}

/** The `q`-quantile (0..1) of ascending `sorted` (nearest rank); NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** Runs `fn` over `items` with at most `window` calls in flight. */
export async function inWindow<T>(items: readonly T[], window: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, items.length) }, lane));
}

/** A promise with its resolve, for gates between a load and a fault script. */
export function gate(): { open: () => void; opened: Promise<void>; isOpen: () => boolean } {
  let open!: () => void;
  let done = false;
  const opened = new Promise<void>((r) => {
    open = () => {
      done = true;
      r();
    };
  });
  return { open, opened, isOpen: () => done };
}
