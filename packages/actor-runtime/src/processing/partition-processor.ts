import { ackedPublisherOf } from './acked-publisher.js';
import { BatchCommitter } from './commit.js';
import { jetStreamCommitStore } from './commit-store/jetstream.js';
import type { DecodedOp } from './decode.js';
import type { PartitionProcessorOptions } from './partition-options.js';
import { PartitionPull } from './partition-pull.js';
import { readBudgetOf, type ReadBudget } from './read-budget.js';
import { ReadQueue } from './read-queue.js';
import { sharedReaderOf, type ReaderSink, type SharedReader } from './shared-reader.js';
import { reportStreamGap } from './stream-gap.js';
import { TimerIndex } from './timer-index.js';

export type { ProcessorHooks } from './commit.js';


/** How often sends a full stream refused are published again while nothing else is committed (ms). */
const UNSENT_RETRY_MS = 500;

/**
 * Applies one partition's operations in stream order: reads with an ordered consumer
 * from the checkpoint, folds each batch per key in memory, commits the dirty records
 * with CAS, then the checkpoint, then answers callers. While a commit is in flight the
 * reader keeps filling the next batch (group commit).
 */
export class PartitionProcessor {
  readonly partition: number;
  readonly epoch: number;
  private readonly o: PartitionProcessorOptions;
  /** What was read and not yet committed, and the signals between reading and committing. */
  private readonly q = new ReadQueue();
  /** This partition's own reader (when it does not read through the shared one). */
  private readonly pull: PartitionPull;
  private readonly budget: ReadBudget;
  private readonly committer: BatchCommitter;
  /** The shared reader, when this partition reads through it. */
  private reader: SharedReader | null = null;
  /** Ends the shared read of this partition (stop or abort). */
  private endShared: (() => void) | null = null;
  /** The partition's timers: loaded at start, fired while the processor runs. */
  readonly timers: TimerIndex;
  /** Inbox prefixes of this connection's own acks: no operation's reply may go there. */
  private readonly ownInboxes: readonly string[];
  private readLoop: Promise<void> | null = null;
  private commitLoop: Promise<void> | null = null;
  /** The processor failed in a commit (not in reading or starting). */
  commitFailed = false;
  /** Resolves when the processor has stopped; rejects with the failure if it failed. */
  done: Promise<void> = Promise.resolve();

  constructor(opts: PartitionProcessorOptions) {
    this.o = opts;
    this.partition = opts.partition;
    this.epoch = opts.epoch;
    this.budget = readBudgetOf(opts.nc);
    const publisher = ackedPublisherOf(opts.nc);
    this.ownInboxes = [publisher.prefix];
    const store = jetStreamCommitStore(opts.topology, opts.names, publisher);
    this.timers = new TimerIndex({ partition: opts.partition, topology: opts.topology, names: opts.names, log: opts.log, store, publisher, leaseValid: opts.leaseValid, owns: opts.duty ? (type) => opts.duty?.(type) !== 'skip' : undefined });
    this.committer = new BatchCommitter({
      ...opts,
      store,
      aborted: () => this.q.aborted,
      timers: this.timers,
    });
    const { partition, topology, names, maxBatch, sharedRead } = opts;
    this.pull = new PartitionPull({ partition, topology, names, maxBatch, sharedRead, ownInboxes: this.ownInboxes, markDuty: (op) => this.markDuty(op) }, this.q, this.budget);
  }

  /** The last committed checkpoint. */
  get checkpoint(): number {
    return this.committer.checkpoint;
  }

  /** Operations read but not yet committed plus those still in the stream (approximate). */
  get lag(): number {
    // Read through the shared reader, what is left in the stream is counted for every partition
    // (an upper bound; 0 once the reader has caught up).
    return this.q.pending.length + this.q.inFlight + (this.reader ? this.reader.remaining : this.q.remotePending);
  }

  /**
   * Marks an operation another lane applies (or that waits for a lane hosting its type) to be
   * skipped: the checkpoint passes it, nothing else happens (see ownership/placement.ts).
   */
  private markDuty(op: DecodedOp): DecodedOp {
    if (!this.o.duty || !op.valid) return op;
    const duty = this.o.duty(op.type);
    // Or processed already by the lane whose checkpoint lists its type (strays: '*'), when this
    // lane took it over and reads again from below.
    if (duty === 'skip' || op.seq <= this.committer.typeFloor(duty === 'stray' ? '*' : op.type)) op.skip = true;
    return op;
  }

  /** Reads the checkpoint and starts reading and committing. */
  async start(): Promise<void> {
    const { partition } = this.o;
    const checkpoint = await this.committer.loadCheckpoint();
    await reportStreamGap({ ...this.o, onGap: (info) => this.o.hooks?.onGap?.(info) }, checkpoint);
    this.o.cache.dropPartition(partition);
    await this.timers.load();
    if (this.o.sharedRead && !this.o.readAloneUntilProgress) {
      this.readLoop = this.readShared(checkpoint + 1);
    } else {
      await this.pull.open(checkpoint);
      this.readLoop = this.read();
    }
    this.commitLoop = this.commitForever();
    this.timers.start();
    // Settles once both loops have ended (a failed read must not leave a commit running
    // while the worker restarts the partition), with the first failure if any.
    this.done = Promise.allSettled([this.readLoop, this.commitLoop]).then((results) => {
      this.timers.stop();
      this.pull.leave();
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    // The caller observes failures through `done`; avoid unhandled rejections meanwhile.
    this.done.catch(() => undefined);
  }

  /**
   * Reads through the worker's shared reader: it pushes this partition's operations from
   * `next` on; this loop only waits until the partition stops or the reader fails.
   */
  private readShared(next: number): Promise<void> {
    if (this.q.stopping || this.q.aborted) return Promise.resolve();
    const reader = sharedReaderOf(this.o.topology, this.o.names, this.ownInboxes, this.o.log);
    this.reader = reader;
    return new Promise<void>((resolve, reject) => {
      const sink: ReaderSink = {
        partition: this.partition,
        next,
        push: (op, pending) => {
          this.q.pending.push(this.markDuty(op));
          this.q.remotePending = pending;
        },
        flush: () => this.q.flush(),
        hasRoom: () => this.q.pending.length < this.o.maxBatch || this.q.stopping,
        fail: (err) => {
          this.endShared = null;
          this.q.stopping = true;
          this.q.wake?.();
          reject(err);
        },
      };
      this.endShared = () => {
        this.endShared = null;
        reader.detach(this.partition, sink);
        this.q.stopping = true;
        this.q.wake?.();
        resolve();
      };
      reader.attach(sink);
    });
  }

  /** Reads with this partition's own consumer, then through the shared reader once it has recovered. */
  private async read(): Promise<void> {
    if (!(await this.pull.read())) return;
    this.pull.leave();
    await this.readShared(this.pull.nextSeq);
  }

  private async commitForever(): Promise<void> {
    try {
      for (;;) {
        if (this.q.aborted) return;
        if (this.q.pending.length === 0 || !(this.q.flushed || this.q.stopping)) {
          if (this.q.stopping) return;
          // Sends a full stream refused are tried again now and then, even with nothing to read.
          let due = false;
          const retry = this.committer.hasUnsent ? setTimeout(() => ((due = true), this.q.wake?.()), UNSENT_RETRY_MS) : null;
          await new Promise<void>((resolve) => (this.q.wake = resolve));
          this.q.wake = null;
          if (retry) clearTimeout(retry);
          if (due && this.q.pending.length === 0 && !this.q.stopping && !this.q.aborted) await this.committer.commit([]);
          continue;
        }
        const batch = this.q.pending.splice(0, this.o.maxBatch);
        // More than one batch's worth was flushed: the rest may be taken at once too.
        if (this.q.pending.length === 0) this.q.flushed = false;
        this.q.roomWaiter?.();
        this.reader?.wake();
        this.q.inFlight = batch.length;
        await this.committer.commit(batch);
        this.q.inFlight = 0;
        this.pull.release(batch.length);
        this.o.onProgress?.();
        // Recovered and caught up: end the pull that waits for more, so the reader rejoins the shared one now.
        if (this.pull.reading && this.o.sharedRead && this.q.remotePending === 0) this.pull.stopPull();
      }
    } catch (err) {
      this.commitFailed = true;
      this.q.aborted = true;
      // The shared reader must let go of this partition (a full one would hold every other
      // partition's reading), and the read side must settle so `done` does.
      this.endShared?.();
      this.pull.stopPull();
      this.q.roomWaiter?.();
      this.budget.wakeAll();
      throw err;
    }
  }

  /**
   * Graceful stop: stops reading, finishes the commit in flight (records, checkpoint,
   * replies) and drops what was read ahead but not yet folded: the next owner reads it
   * again from the checkpoint, so a hand-over does not wait for a full read-ahead buffer.
   */
  async stop(): Promise<void> {
    this.q.stopping = true;
    this.timers.stop();
    this.endShared?.();
    this.pull.stopPull();
    this.pull.release(this.q.pending.length);
    this.q.pending = [];
    this.q.wake?.();
    this.q.roomWaiter?.();
    this.budget.wakeAll();
    await this.done;
  }

  /** Stops at once without writing anything more (fenced or failing). */
  abort(): void {
    this.q.aborted = true;
    this.timers.stop();
    this.endShared?.();
    this.q.stopping = true;
    this.pull.stopPull();
    this.q.wake?.();
    this.q.roomWaiter?.();
    this.budget.wakeAll();
    this.o.cache.dropPartition(this.partition);
  }
}
