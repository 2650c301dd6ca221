import { DeliverPolicy, type Consumer, type ConsumerMessages } from '@nats-io/jetstream';
import { controlKeys } from '../protocol/index.js';
import { decodeJson, type RetentionRecord } from '../store/records.js';
import { ackedPublisherOf } from './acked-publisher.js';
import { BatchCommitter, type CommitterOptions, type ProcessorHooks } from './commit.js';
import { decodeOperation, type DecodedOp } from './decode.js';
import { readBudgetOf, type ReadBudget } from './read-budget.js';
import { sharedReaderOf, type ReaderSink, type SharedReader } from './shared-reader.js';
import { TimerIndex } from './timer-index.js';

export type { ProcessorHooks } from './commit.js';

/** The reply a caller receives after its operation is committed. */

/** Options of a {@link PartitionProcessor}: the committer's, less what the processor makes itself. */
export interface PartitionProcessorOptions extends Omit<CommitterOptions, 'publisher' | 'aborted' | 'hooks'> {
  /** Largest number of operations folded into one commit. */
  maxBatch: number;
  /**
   * Read through the worker's one unfiltered reader of the stream ({@link SharedReader})
   * instead of a consumer filtered to this partition. Default false.
   */
  sharedRead?: boolean;
  /**
   * With `sharedRead`: read with this partition's own consumer until a commit succeeded and
   * the partition caught up, then move to the shared reader. A partition restarted after
   * failures does this, so its rewinds to the checkpoint do not make the shared reader re-read
   * every other partition's backlog.
   */
  readAloneUntilProgress?: boolean;
  /** Called after every successful commit of operations (and only then: it resets the restart backoff). */
  onProgress?: () => void;
  hooks?: ProcessorHooks & {
    /** Operations between the checkpoint and the stream's first message are gone (not by jetactor's own purge). */
    onGap?(info: { partition: number; checkpoint: number; firstSeq: number }): void;
  };
}

/** Smallest and largest pull of one partition reader; it doubles while pulls come back full. */
const MIN_FETCH = 64;
const MAX_FETCH = 2048;
/** How long a pull waits on the server for operations that are not there yet (ms). */
const FETCH_EXPIRES_MS = 10_000;
/** The same for a partition reading alone until it rejoins the shared reader. */
const RECOVERY_FETCH_EXPIRES_MS = 1000;
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
  /** Operations read and decoded, not yet taken by the committer (no JsMsg is kept). */
  private pending: DecodedOp[] = [];
  private consumer: Consumer | null = null;
  /** The pull being read now. */
  private fetching: ConsumerMessages | null = null;
  private readonly budget: ReadBudget;
  /** Budget units this reader holds: read ahead, being committed, or pulled and not yet received. */
  private held = 0;
  /** Size of the next pull. */
  private fetchSize = MIN_FETCH;
  /**
   * The reader let the committer take what `pending` holds: it caught up with the stream, ended
   * a pull, or has held the operations long enough (group commit; see shared-reader.ts).
   */
  private flushed = false;
  /** Wakes the reader when the committer took a batch (room in `pending`). */
  private roomWaiter: (() => void) | null = null;
  private stopping = false;
  private aborted = false;
  private wake: (() => void) | null = null;
  private readonly committer: BatchCommitter;
  /** The shared reader, when this partition reads through it. */
  private reader: SharedReader | null = null;
  /** Ends the shared read of this partition (stop or abort). */
  private endShared: (() => void) | null = null;
  /** The partition's timers: loaded at start, fired while the processor runs. */
  readonly timers: TimerIndex;
  /** Inbox prefixes of this connection's own acks: no operation's reply may go there. */
  private readonly ownInboxes: readonly string[];
  private inFlight = 0;
  /** Messages left in the stream after the last one read, as the server reported it. */
  private remotePending = 0;
  private readLoop: Promise<void> | null = null;
  private commitLoop: Promise<void> | null = null;
  /** Reading with its own consumer and holding read-budget units (not the shared reader). */
  private ownReader = false;
  /** The next stream seq this partition's own consumer delivers. */
  private nextSeq = 1;
  /** The last pull of this partition's own consumer ended with nothing left in the stream for it. */
  private caughtUp = false;
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
    this.timers = new TimerIndex({ partition: opts.partition, topology: opts.topology, names: opts.names, log: opts.log, publisher, leaseValid: opts.leaseValid, owns: opts.duty ? (type) => opts.duty?.(type) !== 'skip' : undefined });
    this.committer = new BatchCommitter({
      ...opts,
      publisher,
      aborted: () => this.aborted,
      timers: this.timers,
    });
  }

  /** The last committed checkpoint. */
  get checkpoint(): number {
    return this.committer.checkpoint;
  }

  /** Operations read but not yet committed plus those still in the stream (approximate). */
  get lag(): number {
    // Read through the shared reader, what is left in the stream is counted for every partition
    // (an upper bound; 0 once the reader has caught up).
    return this.pending.length + this.inFlight + (this.reader ? this.reader.remaining : this.remotePending);
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
    await this.reportGap(checkpoint);
    this.o.cache.dropPartition(partition);
    await this.timers.load();
    if (this.o.sharedRead && !this.o.readAloneUntilProgress) {
      this.readLoop = this.readShared(checkpoint + 1);
    } else {
      this.nextSeq = checkpoint + 1;
      await this.openConsumer(checkpoint);
      this.budget.register();
      this.ownReader = true;
      this.readLoop = this.read();
    }
    this.commitLoop = this.commitForever();
    this.timers.start();
    // Settles once both loops have ended (a failed read must not leave a commit running
    // while the worker restarts the partition), with the first failure if any.
    this.done = Promise.allSettled([this.readLoop, this.commitLoop]).then((results) => {
      this.timers.stop();
      this.leaveBudget();
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    // The caller observes failures through `done`; avoid unhandled rejections meanwhile.
    this.done.catch(() => undefined);
  }

  /** This partition's own consumer, filtered to its subjects, from the checkpoint. */
  private async openConsumer(checkpoint: number): Promise<void> {
    const { topology, partition } = this.o;
    this.consumer = await topology.js.consumers.get(this.o.names.stream, {
      // A string, not an array: nats.js sends a single `filter_subject`. An array becomes
      // `filter_subjects`, which nats-server 2.10 serves at a few hundred msg/s once the
      // stream spans more than one message block (~100k operations); measured in packages/bench/README.md.
      filter_subjects: `${partition}.>`,
      ...(checkpoint > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: checkpoint + 1 }
        : { deliver_policy: DeliverPolicy.All }),
    });
  }

  /** Gives back every read-budget unit of this partition's own reader, once. */
  private leaveBudget(): void {
    if (!this.ownReader) return;
    this.ownReader = false;
    this.release(this.held);
    this.budget.unregister();
  }

  /**
   * Reads through the worker's shared reader: it pushes this partition's operations from
   * `next` on; this loop only waits until the partition stops or the reader fails.
   */
  private readShared(next: number): Promise<void> {
    if (this.stopping || this.aborted) return Promise.resolve();
    const reader = sharedReaderOf(this.o.topology, this.o.names, this.ownInboxes, this.o.log);
    this.reader = reader;
    return new Promise<void>((resolve, reject) => {
      const sink: ReaderSink = {
        partition: this.partition,
        next,
        push: (op, pending) => {
          this.pending.push(this.markDuty(op));
          this.remotePending = pending;
        },
        flush: () => this.flush(),
        hasRoom: () => this.pending.length < this.o.maxBatch || this.stopping,
        fail: (err) => {
          this.endShared = null;
          this.stopping = true;
          this.wake?.();
          reject(err);
        },
      };
      this.endShared = () => {
        this.endShared = null;
        reader.detach(this.partition, sink);
        this.stopping = true;
        this.wake?.();
        resolve();
      };
      reader.attach(sink);
    });
  }

  /** Lets the committer take what the partition holds. */
  private flush(): void {
    this.flushed = true;
    this.wake?.();
  }

  /** Gives budget units back. */
  private release(n: number): void {
    const k = Math.min(n, this.held);
    if (k <= 0) return;
    this.held -= k;
    this.budget.give(k);
  }

  /**
   * Reads with pulls (ordered `fetch`) instead of `consume()`, so what is read ahead stays
   * bounded: per partition by `maxBatch`, per connection by the shared {@link ReadBudget}.
   * A pull asks for at most what the budget grants; it grows while pulls come back full
   * (a busy partition) and shrinks while they expire half empty (a quiet one holds little).
   */
  private async read(): Promise<void> {
    const consumer = this.consumer;
    if (!consumer) return;
    let toShared = false;
    try {
      toShared = await this.pullLoop(consumer);
    } finally {
      // An ordered consumer lives on in the server for minutes after its last pull unless deleted.
      this.consumer = null;
      consumer.delete().catch(() => undefined);
      if (!toShared) {
        this.stopping = true;
        this.flush();
      }
    }
    if (!toShared) return;
    this.leaveBudget();
    await this.readShared(this.nextSeq);
  }

  /** Pulls until stopped; true when the partition should move to the shared reader. */
  private async pullLoop(consumer: Consumer): Promise<boolean> {
    const cancelled = () => this.stopping || this.aborted;
    while (!cancelled()) {
      // Caught up, and all it read is committed (a sick partition's commit fails instead): a
      // partition that read alone to recover rejoins the shared reader, busy or quiet. That is
      // no progress (onProgress): only a commit resets the restart backoff, or a partition that
      // fails in every commit but catches up between them would restart at the shortest wait.
      if (this.o.sharedRead && this.caughtUp && this.pending.length === 0 && this.inFlight === 0) return true;
      const room = this.o.maxBatch - this.pending.length;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.roomWaiter = resolve));
        this.roomWaiter = null;
        continue;
      }
      // Ask for what the server has for us (the last message told how many are left) plus a
      // little: a caught-up partition's pull waits for new operations while holding its
      // units, and 32 of them holding 1,024 each starved the busy ones for up to a pull's
      // expiry (calls waited seconds).
      const want = Math.min(this.fetchSize, room, MIN_FETCH + this.remotePending);
      const granted = await this.budget.take(want, Math.min(want, MIN_FETCH), cancelled);
      if (granted === 0) break;
      this.held += granted;
      let received = 0;
      try {
        // Reading alone to recover: a short pull, so a quiet partition soon knows it has caught up.
        const it = await consumer.fetch({ max_messages: granted, expires: this.o.sharedRead ? RECOVERY_FETCH_EXPIRES_MS : FETCH_EXPIRES_MS });
        this.fetching = it;
        if (cancelled()) it.stop();
        for await (const m of it) {
          if (cancelled()) break;
          received++;
          // Decode at once and keep no reference to the message: a JsMsg's payload is a view
          // of the socket's read buffer, which stays alive (off-heap, in RSS) while any view does.
          this.pending.push(this.markDuty(decodeOperation(m, this.o.names, this.ownInboxes)));
          this.nextSeq = m.seq + 1;
          this.remotePending = m.info.pending;
          // Caught up: commit now; otherwise the rest of the pull joins the batch.
          if (this.remotePending === 0) this.flush();
        }
      } finally {
        this.fetching = null;
        this.caughtUp = this.remotePending === 0;
        this.flush();
        // Units pulled but never received go back; received ones are held until committed.
        this.release(granted - received);
      }
      if (received >= granted) this.fetchSize = Math.min(MAX_FETCH, this.fetchSize * 2);
      else if (received < granted / 2) this.fetchSize = Math.max(MIN_FETCH, this.fetchSize >> 1);
    }
    return false;
  }

  private async commitForever(): Promise<void> {
    try {
      for (;;) {
        if (this.aborted) return;
        if (this.pending.length === 0 || !(this.flushed || this.stopping)) {
          if (this.stopping) return;
          // Sends a full stream refused are tried again now and then, even with nothing to read.
          let due = false;
          const retry = this.committer.hasUnsent ? setTimeout(() => ((due = true), this.wake?.()), UNSENT_RETRY_MS) : null;
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = null;
          if (retry) clearTimeout(retry);
          if (due && this.pending.length === 0 && !this.stopping && !this.aborted) await this.committer.commit([]);
          continue;
        }
        const batch = this.pending.splice(0, this.o.maxBatch);
        // More than one batch's worth was flushed: the rest may be taken at once too.
        if (this.pending.length === 0) this.flushed = false;
        this.roomWaiter?.();
        this.reader?.wake();
        this.inFlight = batch.length;
        await this.committer.commit(batch);
        this.inFlight = 0;
        this.release(batch.length);
        this.o.onProgress?.();
        // Recovered and caught up: end the pull that waits for more, so the reader rejoins the shared one now.
        if (this.ownReader && this.o.sharedRead && this.remotePending === 0) this.fetching?.stop();
      }
    } catch (err) {
      this.commitFailed = true;
      this.aborted = true;
      // The shared reader must let go of this partition (a full one would hold every other
      // partition's reading), and the read side must settle so `done` does.
      this.endShared?.();
      this.fetching?.stop();
      this.roomWaiter?.();
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
    this.stopping = true;
    this.timers.stop();
    this.endShared?.();
    this.fetching?.stop();
    this.release(this.pending.length);
    this.pending = [];
    this.wake?.();
    this.roomWaiter?.();
    this.budget.wakeAll();
    await this.done;
  }

  /** Stops at once without writing anything more (fenced or failing). */
  abort(): void {
    this.aborted = true;
    this.timers.stop();
    this.endShared?.();
    this.stopping = true;
    this.fetching?.stop();
    this.wake?.();
    this.roomWaiter?.();
    this.budget.wakeAll();
    this.o.cache.dropPartition(this.partition);
  }

  /**
   * Says loudly when operations between the checkpoint and the stream's first message are
   * gone without jetactor's retention loop having purged them (an operator's purge, limits
   * set by hand): they were never applied.
   */
  private async reportGap(checkpoint: number): Promise<void> {
    const { topology, names, partition, log } = this.o;
    const info = await topology.jsm.streams.info(names.stream);
    // A stream recreated since the topology was provisioned: fail, so the worker provisions again.
    if (Date.parse(info.created) !== topology.streamCreated) throw new Error(`stream ${names.stream} was recreated; provisioning again`);
    const firstSeq = info.state.first_seq;
    if (checkpoint + 1 >= firstSeq) return;
    const entry = await topology.control.get(controlKeys.retention);
    const purged = entry && entry.operation === 'PUT' ? decodeJson<RetentionRecord>(entry.value) : null;
    if (purged && purged.stream === topology.streamCreated && purged.purgedBelow >= firstSeq) return;
    log.error(
      { partition, checkpoint, firstSeq, lost: firstSeq - checkpoint - 1 },
      `OPERATIONS MAY BE LOST: partition ${partition} is checkpointed at ${checkpoint} but the stream starts at ${firstSeq}, and jetactor did not purge the operations in between`,
    );
    this.o.hooks?.onGap?.({ partition, checkpoint, firstSeq });
  }
}
