import { JetStreamApiError } from '@nats-io/jetstream';
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { publishHeaders } from '../connection/nats-internals.js';
import { FencedError, TimeoutError, EXPECTED_LAST_SUBJECT_SEQ_HEADER as EXPECTED_LAST_SUBJECT_SEQ, MSG_ID_HEADER as MSG_ID } from '../protocol/index.js';

/** What the stream stored. */
export interface PublishAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/** Options of one {@link AckedPublisher.publish}. */
export interface AckedPublishOptions {
  /**
   * CAS on the subject: the publish fails with a `JetStreamApiError` of code 10071 unless
   * the subject's last sequence is this (0: the subject has no message). This is what KV
   * `create` (0) and `update(rev)` send.
   */
  expectedLastSubjectSequence?: number;
  /**
   * Checked right before the message is sent (after any wait for a window slot): false fails
   * the publish with a {@link FencedError} and sends nothing. Fenced writers pass their lease check.
   */
  guard?: () => boolean;
  /** `Nats-Msg-Id`: the stream drops a second message with the same id within its duplicate window. */
  msgId?: string;
  /** More headers (name, value). */
  headers?: ReadonlyArray<readonly [string, string]>;
}

/** Options of an {@link AckedPublisher}. */
export interface AckedPublisherOptions {
  /** Publishes awaiting their ack at most, per connection. Default 2048. */
  window?: number;
  /** An ack not received within this many ms fails the publish with a {@link TimeoutError}. Default 10000. */
  timeoutMs?: number;
}

interface Waiting {
  resolve: (ack: PublishAck) => void;
  reject: (err: Error) => void;
  deadline: number;
  subject: string;
}

const dec = new TextDecoder();

/**
 * JetStream publishes with acks over one reply subscription and a bounded window.
 *
 * Why not `js.publish` / `kv.update`: in nats.js 3.4 every such call is a full request
 * (a timer, a promise, a mux entry, and an `Error` built on every successful reply when
 * the request is cancelled), which kept a pipelined KV writer at ~9-15k writes/s with
 * the client only half busy; the same writes as plain publishes with a reply subject, acks
 * matched by subject, run at ~35k/s on the same machine (packages/bench/README.md). The
 * window bounds what one connection has in flight, so control traffic (lease renewals,
 * heartbeats) never queues behind tens of thousands of writes.
 */
export class AckedPublisher {
  private readonly window: number;
  private readonly timeoutMs: number;
  /** The inbox prefix of this publisher's acks; nothing else may reply under it. */
  readonly prefix = createInbox();
  private sub: Subscription | null = null;
  private next = 0;
  private readonly waiting = new Map<string, Waiting>();
  private slotWaiters: Array<() => void> = [];
  /** Slots handed to woken waiters that have not sent yet. */
  private reserved = 0;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly nc: NatsConnection, opts: AckedPublisherOptions = {}) {
    this.window = Math.max(1, opts.window ?? 2048);
    this.timeoutMs = Math.max(100, opts.timeoutMs ?? 10_000);
    void nc.closed().then(() => this.close(new Error('connection closed')));
  }

  /** Publishes awaiting their ack now. */
  get inFlight(): number {
    return this.waiting.size;
  }

  /** Publishes `data` to a stream subject and resolves with the ack once it is stored. */
  publish(subject: string, data: Uint8Array, opts: AckedPublishOptions = {}): Promise<PublishAck> {
    // A free slot that no earlier publish waits for (the common case) sends at once: no extra
    // promise and turn per publish.
    if ((this.waiting.size + this.reserved < this.window && this.slotWaiters.length === 0) || this.closed) return this.send(subject, data, opts);
    // Otherwise it waits its turn: a freed slot is handed to the first waiter (FIFO), so
    // publishes go out in the order they were made (one sender's sends stay in order).
    return new Promise<void>((resolve) => this.slotWaiters.push(resolve)).then(() => {
      if (this.reserved > 0) this.reserved--;
      const sent = this.send(subject, data, opts);
      // One that was refused (lease lost, closed) used no slot: the next waiter gets it.
      this.handOver();
      return sent;
    });
  }

  private send(subject: string, data: Uint8Array, opts: AckedPublishOptions): Promise<PublishAck> {
    if (this.closed) return Promise.reject(new Error('publisher closed: the connection is closed'));
    let h: MsgHdrs | undefined;
    try {
      if (opts.guard && !opts.guard()) throw new FencedError(`lease not held, refusing to write ${subject}`);
      this.ensureSubscribed();
      if (opts.expectedLastSubjectSequence !== undefined || opts.msgId !== undefined || opts.headers !== undefined) {
        const pairs: Array<readonly [string, string]> = [];
        if (opts.expectedLastSubjectSequence !== undefined) pairs.push([EXPECTED_LAST_SUBJECT_SEQ, String(opts.expectedLastSubjectSequence)]);
        if (opts.msgId !== undefined) pairs.push([MSG_ID, opts.msgId]);
        if (opts.headers !== undefined) pairs.push(...opts.headers);
        h = publishHeaders(pairs);
      }
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const reply = `${this.prefix}.${(this.next = (this.next + 1) % Number.MAX_SAFE_INTEGER)}`;
    return new Promise<PublishAck>((resolve, reject) => {
      this.waiting.set(reply, { resolve, reject, deadline: performance.now() + this.timeoutMs, subject });
      try {
        this.nc.publish(subject, data, h ? { reply, headers: h } : { reply });
      } catch (err) {
        this.settle(reply);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Fails every publish still waiting and refuses new ones. */
  close(err: Error = new Error('publisher closed')): void {
    if (this.closed) return;
    this.closed = true;
    this.sub?.unsubscribe();
    this.sub = null;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const [reply, w] of this.waiting) {
      this.waiting.delete(reply);
      w.reject(err);
    }
    this.wakeSlots();
  }

  private ensureSubscribed(): void {
    if (this.sub) return;
    this.sub = this.nc.subscribe(`${this.prefix}.*`, { callback: (err, msg) => (err ? undefined : this.onAck(msg)) });
    this.sweeper = setInterval(() => this.sweep(), Math.min(250, this.timeoutMs / 4));
    this.sweeper.unref?.();
  }

  private settle(reply: string): Waiting | undefined {
    const w = this.waiting.get(reply);
    if (!w) return undefined;
    this.waiting.delete(reply);
    this.handOver();
    return w;
  }

  /**
   * Free slots go to the first waiters (FIFO), each held for its waiter until it sends: waking
   * all would be quadratic with thousands waiting, and an unheld slot could be taken by a
   * later publish.
   */
  private handOver(): void {
    while (this.slotWaiters.length > 0 && this.waiting.size + this.reserved < this.window) {
      this.reserved++;
      (this.slotWaiters.shift() as () => void)();
    }
  }

  private wakeSlots(): void {
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const w of waiters) w();
  }

  private onAck(msg: Msg): void {
    if (!this.waiting.has(msg.subject)) return; // late ack of a publish that timed out
    if (msg.data.length === 0) {
      const w = this.settle(msg.subject) as Waiting;
      // A status message: 503 means no stream listens on the subject.
      const code = msg.headers?.code ?? 0;
      w.reject(new Error(code === 503 ? `no stream stores ${w.subject}` : `unexpected reply to a publish on ${w.subject} (status ${code})`));
      return;
    }
    let body: { stream?: unknown; seq?: unknown; duplicate?: boolean; error?: { code: number; err_code?: number; description: string } };
    try {
      body = JSON.parse(dec.decode(msg.data)) as typeof body;
    } catch {
      return; // not an ack: wait for the real one (or the timeout)
    }
    if (body.error && typeof body.error.code === 'number') {
      const w = this.settle(msg.subject) as Waiting;
      w.reject(new JetStreamApiError({ code: body.error.code, err_code: body.error.err_code ?? 0, description: String(body.error.description) }));
      return;
    }
    // Only a stream's ack names the stream and its seq; anything else published to this inbox
    // (a forged reply) is ignored, never taken for the ack of a record or checkpoint write.
    if (typeof body.stream !== 'string' || typeof body.seq !== 'number') return;
    const w = this.settle(msg.subject) as Waiting;
    w.resolve({ stream: body.stream, seq: body.seq, duplicate: body.duplicate === true });
  }

  private sweep(): void {
    if (this.waiting.size === 0) return;
    const now = performance.now();
    // Insertion order is publish order, and every publish has the same timeout.
    for (const [reply, w] of this.waiting) {
      if (w.deadline > now) break;
      this.settle(reply);
      w.reject(new TimeoutError(`no ack within ${this.timeoutMs} ms for a publish on ${w.subject}`));
    }
  }
}

const publishers = new WeakMap<NatsConnection, AckedPublisher>();

/** The shared publisher of a connection (its window bounds the whole connection). */
export function ackedPublisherOf(nc: NatsConnection): AckedPublisher {
  let p = publishers.get(nc);
  if (!p) {
    p = new AckedPublisher(nc);
    publishers.set(nc, p);
  }
  return p;
}

export { kvWriteSubject } from '../connection/nats-internals.js';
