/**
 * A partition's own reader: an ordered consumer filtered to the partition, read with pulls
 * under the connection's read budget (read-budget.ts). A partition reads this way when it does
 * not read through the shared reader, or until it has recovered (partition-processor.ts).
 */
import { DeliverPolicy, type Consumer, type ConsumerMessages } from '@nats-io/jetstream';
import type { ActorNames } from '../protocol/index.js';
import type { Topology } from '../store/provision.js';
import { decodeOperation, type DecodedOp } from './decode.js';
import type { ReadBudget } from './read-budget.js';
import type { ReadQueue } from './read-queue.js';

/** Smallest and largest pull of one partition reader; it doubles while pulls come back full. */
const MIN_FETCH = 64;
const MAX_FETCH = 2048;
/** How long a pull waits on the server for operations that are not there yet (ms). */
const FETCH_EXPIRES_MS = 10_000;
/** The same for a partition reading alone until it rejoins the shared reader. */
const RECOVERY_FETCH_EXPIRES_MS = 1000;

export interface PartitionPullOptions {
  partition: number;
  topology: Topology;
  names: ActorNames;
  maxBatch: number;
  /** The partition moves to the shared reader once it has caught up. */
  sharedRead?: boolean;
  /** Inbox prefixes of this connection's own acks: no operation's reply may go there. */
  ownInboxes: readonly string[];
  /** Marks what another lane applies (partition-processor.ts). */
  markDuty: (op: DecodedOp) => DecodedOp;
}

/** Reads one partition with its own consumer into a {@link ReadQueue}. */
export class PartitionPull {
  private consumer: Consumer | null = null;
  /** The pull being read now. */
  private fetching: ConsumerMessages | null = null;
  /** Budget units this reader holds: read ahead, being committed, or pulled and not yet received. */
  private held = 0;
  /** Size of the next pull. */
  private fetchSize = MIN_FETCH;
  /** Reading with its own consumer and holding read-budget units (not the shared reader). */
  private ownReader = false;
  /** The next stream seq this partition's own consumer delivers. */
  nextSeq = 1;
  /** The last pull of this partition's own consumer ended with nothing left in the stream for it. */
  private caughtUp = false;

  constructor(
    private readonly o: PartitionPullOptions,
    private readonly q: ReadQueue,
    private readonly budget: ReadBudget,
  ) {}

  /** Opens the consumer, filtered to the partition's subjects, from the checkpoint, and joins the budget. */
  async open(checkpoint: number): Promise<void> {
    const { topology, partition } = this.o;
    this.nextSeq = checkpoint + 1;
    this.consumer = await topology.js.consumers.get(this.o.names.stream, {
      // A string, not an array: nats.js sends a single `filter_subject`. An array becomes
      // `filter_subjects`, which nats-server 2.10 serves at a few hundred msg/s once the
      // stream spans more than one message block (~100k operations); measured in packages/bench/README.md.
      filter_subjects: `${partition}.>`,
      ...(checkpoint > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: checkpoint + 1 }
        : { deliver_policy: DeliverPolicy.All }),
    });
    this.budget.register();
    this.ownReader = true;
  }

  /** Reading with its own consumer. */
  get reading(): boolean {
    return this.ownReader;
  }

  /** Gives every read-budget unit of this reader back, once. */
  leave(): void {
    if (!this.ownReader) return;
    this.ownReader = false;
    this.release(this.held);
    this.budget.unregister();
  }

  /** Gives budget units back. */
  release(n: number): void {
    const k = Math.min(n, this.held);
    if (k <= 0) return;
    this.held -= k;
    this.budget.give(k);
  }

  /** Ends the pull being read. */
  stopPull(): void {
    this.fetching?.stop();
  }

  /**
   * Reads with pulls (ordered `fetch`) instead of `consume()`, so what is read ahead stays
   * bounded: per partition by `maxBatch`, per connection by the shared {@link ReadBudget}.
   * A pull asks for at most what the budget grants; it grows while pulls come back full
   * (a busy partition) and shrinks while they expire half empty (a quiet one holds little).
   * Resolves true when the partition should move to the shared reader.
   */
  async read(): Promise<boolean> {
    const consumer = this.consumer;
    if (!consumer) return false;
    let toShared = false;
    try {
      toShared = await this.pullLoop(consumer);
    } finally {
      // An ordered consumer lives on in the server for minutes after its last pull unless deleted.
      this.consumer = null;
      consumer.delete().catch(() => undefined);
      if (!toShared) {
        this.q.stopping = true;
        this.q.flush();
      }
    }
    return toShared;
  }

  /** Pulls until stopped; true when the partition should move to the shared reader. */
  private async pullLoop(consumer: Consumer): Promise<boolean> {
    const q = this.q;
    const cancelled = () => q.cancelled();
    while (!cancelled()) {
      // Caught up, and all it read is committed (a sick partition's commit fails instead): a
      // partition that read alone to recover rejoins the shared reader, busy or quiet. That is
      // no progress (onProgress): only a commit resets the restart backoff, or a partition that
      // fails in every commit but catches up between them would restart at the shortest wait.
      if (this.o.sharedRead && this.caughtUp && q.pending.length === 0 && q.inFlight === 0) return true;
      const room = this.o.maxBatch - q.pending.length;
      if (room <= 0) {
        await new Promise<void>((resolve) => (q.roomWaiter = resolve));
        q.roomWaiter = null;
        continue;
      }
      // Ask for what the server has for us (the last message told how many are left) plus a
      // little: a caught-up partition's pull waits for new operations while holding its
      // units, and 32 of them holding 1,024 each starved the busy ones for up to a pull's
      // expiry (calls waited seconds).
      const want = Math.min(this.fetchSize, room, MIN_FETCH + q.remotePending);
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
          q.pending.push(this.o.markDuty(decodeOperation(m, this.o.names, this.o.ownInboxes)));
          this.nextSeq = m.seq + 1;
          q.remotePending = m.info.pending;
          // Caught up: commit now; otherwise the rest of the pull joins the batch.
          if (q.remotePending === 0) q.flush();
        }
      } finally {
        this.fetching = null;
        this.caughtUp = q.remotePending === 0;
        q.flush();
        // Units pulled but never received go back; received ones are held until committed.
        this.release(granted - received);
      }
      if (received >= granted) this.fetchSize = Math.min(MAX_FETCH, this.fetchSize * 2);
      else if (received < granted / 2) this.fetchSize = Math.max(MIN_FETCH, this.fetchSize >> 1);
    }
    return false;
  }
}
