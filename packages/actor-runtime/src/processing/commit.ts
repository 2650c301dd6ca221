/**
 * Commits one batch of a partition: loads the records it needs, folds each key's operations
 * (see fold.ts), stores dead letters and kept outcomes, writes the changed records with CAS,
 * publishes the sends they hold and makes the timer index follow them, then writes the
 * checkpoint, then answers callers, then removes tombstones the checkpoint passed.
 * The order is the exactly-once argument: nothing a caller or a replay can observe comes
 * before the state it depends on is stored. Every write goes through the commit store
 * (commit-store/port.ts).
 */
import { PartitionBlockedError, toErrorBody, stateKey } from '../protocol/index.js';
import { CheckpointKeeper } from './commit-checkpoint.js';
import { gatherFolds, reportCommit, reportFailures, reportRefusedReplies } from './commit-report.js';
import { RecordStep } from './commit-records.js';
import { CommitSends } from './commit-sends.js';
import type { CommitterOptions } from './commit-types.js';
import { nameError, type DecodedOp } from './decode.js';
import type { Failure, KeyFold } from './key-fold.js';
import type { CachedRecord } from './record-cache.js';
import { loadRecords } from './record-io.js';
import { removeTombstones } from './side-outputs.js';

export type { CommitterOptions, ProcessorHooks } from './commit-types.js';

/** Commits batches of one partition, in order; holds the checkpoint. */
export class BatchCommitter {
  private readonly ck: CheckpointKeeper;
  private readonly sends: CommitSends;
  private readonly records: RecordStep;
  /** Tombstones the checkpoint has passed, to remove after the next checkpoint: key -> revision. */
  private readonly staleTombstones = new Map<string, number>();

  constructor(private readonly o: CommitterOptions) {
    this.ck = new CheckpointKeeper(o);
    this.sends = new CommitSends(o);
    this.records = new RecordStep(o, this.load);
  }

  /** Reads records into `into` (and the cache), as of what the checkpoint says was published. */
  private readonly load = (keys: string[], into: Map<string, CachedRecord>): Promise<void> =>
    loadRecords(this.o, keys, into, this.ck.publishedThrough, this.staleTombstones, this.sends.keys);

  /** The last committed checkpoint. */
  get checkpoint(): number {
    return this.ck.seq;
  }

  /** Reads the partition's checkpoint and takes up the sends that wait for room. */
  async loadCheckpoint(): Promise<number> {
    const listed = await this.ck.load();
    await this.sends.takeUp(listed);
    return this.ck.seq;
  }

  /**
   * The seq up to which operations of `type` were already processed by some lane (0: none
   * known): a lane reading again from a lower checkpoint to take a type over skips them.
   */
  typeFloor(type: string): number {
    return this.ck.typeFloor(type);
  }

  /** Some records hold sends a full stream refused: commit now and then, even with nothing read. */
  get hasUnsent(): boolean {
    return this.sends.size > 0;
  }

  /**
   * Commits a batch. An operation the partition must stop at (a record a newer version wrote:
   * it is never overwritten) ends the batch there: what came before it is committed, the stop
   * is reported (log, checkpoint, hook) and the error thrown, so the partition restarts from
   * its checkpoint after a backoff, as after any failed commit, and waits at that operation
   * until a worker that can apply it owns the partition.
   */
  async commit(batch: DecodedOp[]): Promise<void> {
    let ops = batch;
    let blocked: PartitionBlockedError | undefined;
    for (;;) {
      try {
        await this.commitBatch(ops);
      } catch (err) {
        if (!(err instanceof PartitionBlockedError) || this.o.aborted()) throw err;
        // Records this attempt wrote (keys guessed new) are read again: the cache may be behind them.
        this.o.cache.dropPartition(this.o.partition);
        blocked = err;
        ops = ops.filter((op) => op.seq < err.at.seq);
        if (ops.length > 0) continue;
      }
      // What came before the stop is committed; the rest of the batch is not: the partition
      // must restart from its checkpoint (returning would let the reader go on past the stop).
      if (blocked) {
        await this.reportBlocked(blocked);
        throw blocked;
      }
      return;
    }
  }

  /** Says once, loudly, where and why the partition waits (and in its checkpoint, for `/api/status`). */
  private async reportBlocked(err: PartitionBlockedError): Promise<void> {
    const { log, partition } = this.o;
    const at = err.at;
    this.o.hooks?.onBlocked?.({ ...at, partition });
    if (!this.ck.block(at)) {
      log.debug({ partition, seq: at.seq }, 'partition still waits');
      return;
    }
    log.error({ partition, ...at }, `PARTITION ${partition} WAITS: ${err.message}`);
    await this.ck.write(this.ck.seq, this.sends);
  }

  /** Groups a batch's operations by state key; operations with invalid names are failures at once. */
  private group(batch: readonly DecodedOp[], failures: Failure[]): { groups: Map<string, DecodedOp[]>; ops: number } {
    const { log, partition } = this.o;
    const groups = new Map<string, DecodedOp[]>();
    let ops = 0;
    for (const op of batch) {
      if (op.skip) continue; // another lane's (ownership/placement.ts)
      if (!op.valid) {
        log.warn({ partition, seq: op.seq, subject: op.subject.slice(0, 300) }, 'skipping message with an unexpected subject');
        continue;
      }
      ops++;
      // A subject from plain `nats pub` may carry a type or key that is no valid KV key
      // (`actors.counter.a%b.add`): an error result, not a load that throws forever.
      const badName = op.names ? op.names.error : nameError(op);
      if (badName) {
        failures.push({ op, error: toErrorBody(badName), cause: badName });
        continue;
      }
      const k = op.names ? op.names.stateKey : stateKey(op.type, op.key);
      const group = groups.get(k);
      if (group) group.push(op);
      else groups.set(k, [op]);
    }
    return { groups, ops };
  }

  private async commitBatch(batch: DecodedOp[]): Promise<void> {
    const started = performance.now();
    const failures: Failure[] = [];
    const { groups, ops } = this.group(batch, failures);
    // Dead letters and kept outcomes are stored before the records (and so before the
    // checkpoint): a replay skips what a record already holds, so whatever an operation must
    // leave behind besides its state has to be durable first. Replays store them again
    // (a dead letter's msg id and an outcome's key make that harmless).
    const folds = await this.records.readFoldAndWrite(groups, failures);
    if (this.o.aborted()) return;

    const { dirtyCount, replies, tombstones, byOperation } = gatherFolds(this.o, folds, failures);
    reportFailures(this.o, failures, replies);
    reportRefusedReplies(this.o, batch);

    // Sends and the timer index before the checkpoint: a replay from the old checkpoint
    // finds the records that hold them, publishes the sends again (their msg ids make that a
    // duplicate the stream drops) and repairs the index.
    const last = batch[batch.length - 1];
    await this.sends.publish(folds, last?.seq ?? 0, this.ck.seq, this.load);
    await this.syncTimers(folds);
    if ((last && last.seq > this.ck.seq) || this.sends.changed) await this.ck.write(Math.max(last?.seq ?? 0, this.ck.seq), this.sends);
    for (const r of replies) {
      try {
        this.o.nc.publish(r.inbox, r.body);
      } catch (err) {
        this.o.log.warn({ partition: this.o.partition, err: String(err) }, 'reply could not be sent');
      }
    }
    const stale = [...this.staleTombstones];
    this.staleTombstones.clear();
    // A deleted sender's record is where its sends wait while the stream refuses them: it stays
    // until they are stored (it is removed when next seen after that).
    const removable = [...tombstones, ...stale].filter(([k]) => !this.sends.keys.has(k) && !this.o.cache.get(k)?.outbox?.length);
    await removeTombstones(this.o, removable);
    if (batch.length === 0) return;
    reportCommit(this.o, { ops, keys: dirtyCount, errors: failures.length, commitMs: performance.now() - started, checkpoint: this.ck.seq, byOperation });
  }

  /** Makes the timer index follow the records whose timers changed or were loaded. */
  private async syncTimers(folds: Map<string, KeyFold>): Promise<void> {
    const index = this.o.timers;
    if (!index) return;
    const work: Array<Promise<void>> = [];
    for (const [k, f] of folds) {
      if (f.timersChanged || f.reindex || this.records.loaded.has(k)) work.push(index.sync(k, f.rec.timers));
    }
    this.records.loaded.clear();
    await Promise.all(work);
  }
}
