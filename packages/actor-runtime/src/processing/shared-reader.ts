/**
 * One reader of the whole operations stream for all the partitions a worker owns: an ordered
 * consumer with no filter, from the lowest position any owned partition needs, handing each
 * message to its partition's processor and skipping the partitions this worker does not own.
 *
 * Why: nats-server serves a filtered consumer by scanning for its subjects, and 32 partition
 * consumers over interleaved keys cost it about 8x per message what one unfiltered read does
 * (README, "How it works", and the raw reads in packages/bench/README.md). Reading everything
 * once and skipping in the worker is cheaper for the server even when other workers own most
 * partitions.
 *
 * Ordering and exactly-once do not change: each partition still gets its own messages in
 * stream order from its checkpoint + 1 (a partition that attaches behind the reader rewinds
 * it; others skip what they already have), and the processors commit and fence as before.
 */
import { DeliverPolicy, type Consumer, type ConsumerMessages } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { ActorNames } from '../protocol/index.js';
import type { Topology } from '../store/provision.js';
import { decodeOperation, type DecodedOp } from './decode.js';

/** A partition's end of the reader. */
export interface ReaderSink {
  partition: number;
  /** The next stream seq the partition wants; the reader advances it as it delivers. */
  next: number;
  /** Takes a decoded operation; `pending` is what the stream holds after it (all partitions). */
  push(op: DecodedOp, pending: number): void;
  /** What was pushed since the last flush may be committed now. */
  flush(): void;
  /** False while the partition holds as much as it may read ahead. */
  hasRoom(): boolean;
  /** The reader failed: the partition must stop (its processor restarts it). */
  fail(err: Error): void;
}

/** Messages asked for per pull. */
const FETCH = 1024;
/** How long a pull waits on the server for operations that are not there yet (ms). */
const FETCH_EXPIRES_MS = 10_000;
/**
 * Group commit while the reader is behind: a partition is let commit once it holds this many
 * unflushed operations, or once its oldest has waited {@link FLUSH_MS}, or when the reader
 * catches up with the stream (the server reports nothing left). A caught-up reader therefore
 * hands each operation on at once, and one working through a backlog hands each partition
 * batches large enough that a key read many times in it is written once.
 */
const FLUSH_OPS = 512;
const FLUSH_MS = 50;

export class SharedReader {
  private readonly sinks = new Map<number, ReaderSink>();
  private consumer: Consumer | null = null;
  private fetching: ConsumerMessages | null = null;
  /** Seq the consumer delivers next (0: no consumer). */
  private position = 0;
  private rewind = false;
  private closed = false;
  private loop: Promise<void> | null = null;
  private waker: (() => void) | null = null;
  /** Messages the stream held after the last one read (any partition), as the server reported. */
  remaining = 0;
  /** Sinks holding operations not yet flushed, with how many. */
  private readonly unflushed = new Map<ReaderSink, number>();
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly topology: Topology,
    private readonly names: ActorNames,
    private readonly ownInboxes: readonly string[],
    private readonly log: Logger,
  ) {}

  /** Adds a partition; its messages from `sink.next` on are delivered to it. */
  attach(sink: ReaderSink): void {
    this.sinks.set(sink.partition, sink);
    if (this.position === 0 || sink.next < this.position) {
      this.rewind = true;
      this.fetching?.stop();
    }
    this.loop ??= this.run().finally(() => (this.loop = null));
    this.wake();
  }

  /** Removes a partition (released, failed or stopped). */
  detach(partition: number, sink?: ReaderSink): void {
    const current = this.sinks.get(partition);
    if (sink && current !== sink) return;
    this.sinks.delete(partition);
    if (current) this.unflushed.delete(current);
    this.wake();
  }

  /** Lets every partition commit what it holds. */
  private flushAll(): void {
    // A caught-up reader calls this for every message: nothing held is the common case.
    if (this.unflushed.size === 0 && this.flushTimer === null) return;
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    const sinks = [...this.unflushed.keys()];
    this.unflushed.clear();
    for (const s of sinks) s.flush();
  }

  private delivered(sink: ReaderSink, pending: number): void {
    if (pending === 0) {
      this.flushAll();
      sink.flush();
      return;
    }
    const n = (this.unflushed.get(sink) ?? 0) + 1;
    if (n >= FLUSH_OPS || !sink.hasRoom()) {
      this.unflushed.delete(sink);
      sink.flush();
      return;
    }
    this.unflushed.set(sink, n);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = null;
      this.flushAll();
    }, FLUSH_MS);
  }

  /** A partition has room again (its committer took a batch). */
  wake(): void {
    const w = this.waker;
    this.waker = null;
    w?.();
  }

  /** Stops reading for good. */
  close(): void {
    this.closed = true;
    this.flushAll();
    this.fetching?.stop();
    this.wake();
  }

  private async wait(): Promise<void> {
    await new Promise<void>((resolve) => (this.waker = resolve));
  }

  private canRead(): boolean {
    if (this.sinks.size === 0) return false;
    for (const s of this.sinks.values()) if (!s.hasRoom()) return false;
    return true;
  }

  private async run(): Promise<void> {
    try {
      while (!this.closed) {
        if (this.sinks.size === 0) {
          // Nothing owned: drop the consumer; the next attach starts a new one where it needs.
          this.dropConsumer();
          return;
        }
        if (this.rewind || !this.consumer) await this.restart();
        if (!this.canRead()) {
          this.flushAll();
          await this.wait();
          continue;
        }
        await this.pull(this.consumer as Consumer);
      }
      this.dropConsumer();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.log.warn({ err: e.message }, 'the shared stream reader failed; its partitions restart');
      this.dropConsumer();
      for (const s of [...this.sinks.values()]) s.fail(e);
      this.sinks.clear();
      this.flushAll();
    }
  }

  /**
   * Forgets the consumer and deletes it on the server: an ordered consumer is otherwise kept
   * there for minutes after its last pull, and a reader that rewinds often piled them up.
   */
  private dropConsumer(): void {
    this.consumer?.delete().catch(() => undefined);
    this.consumer = null;
    this.position = 0;
  }

  private async restart(): Promise<void> {
    this.rewind = false;
    let start = Infinity;
    for (const s of this.sinks.values()) start = Math.min(start, s.next);
    if (!Number.isFinite(start)) return;
    this.dropConsumer();
    this.consumer = await this.topology.js.consumers.get(this.names.stream, {
      ...(start > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start } : { deliver_policy: DeliverPolicy.All }),
    });
    this.position = start;
  }

  /**
   * One pull. A partition may take up to one pull beyond its read-ahead bound (the pull is
   * read to its end: leaving it half read would skip what the server already sent).
   */
  private async pull(consumer: Consumer): Promise<void> {
    const it = await consumer.fetch({ max_messages: FETCH, expires: FETCH_EXPIRES_MS });
    this.fetching = it;
    if (this.rewind || this.closed) it.stop();
    try {
      for await (const m of it) {
        if (this.rewind || this.closed) break;
        const seq = m.seq;
        this.position = seq + 1;
        const pending = m.info.pending;
        this.remaining = pending;
        const subject = m.subject;
        const dot = subject.indexOf('.');
        const sink = this.sinks.get(dot > 0 ? Number(subject.slice(0, dot)) : -1);
        if (!sink || seq < sink.next) {
          // Caught up on another worker's (or an already read) message: commit what is held.
          if (pending === 0) this.flushAll();
          continue;
        }
        sink.next = seq + 1;
        // Decoded at once: no reference to the message (a view of the socket buffer) is kept.
        sink.push(decodeOperation(m, this.names, this.ownInboxes), pending);
        this.delivered(sink, pending);
      }
    } finally {
      this.fetching = null;
    }
    // Every partition attached through this whole pull has seen all its messages below the
    // position (one that attached behind it asked for a rewind, which restarts from its next).
    if (!this.rewind) for (const s of this.sinks.values()) if (s.next < this.position) s.next = this.position;
  }
}

const readers = new WeakMap<Topology, SharedReader>();

/** The worker's shared reader of one topology (a re-provisioned stream gets a new one). */
export function sharedReaderOf(topology: Topology, names: ActorNames, ownInboxes: readonly string[], log: Logger): SharedReader {
  let r = readers.get(topology);
  if (!r) {
    r = new SharedReader(topology, names, ownInboxes, log);
    readers.set(topology, r);
  }
  return r;
}
