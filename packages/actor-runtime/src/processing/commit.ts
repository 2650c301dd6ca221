/**
 * Commits one batch of a partition: loads the records it needs, folds each key's operations
 * (see fold.ts), stores dead letters and kept outcomes, writes the changed records with CAS,
 * then the checkpoint, then answers callers, then removes tombstones the checkpoint passed.
 * The order is the exactly-once argument: nothing a caller or a replay can observe comes
 * before the state it depends on is stored.
 */
import { JetStreamApiError } from '@nats-io/jetstream';
import { DEFAULT_LANE, ActorError, ErrorCode, FencedError, PartitionBlockedError, toErrorBody, stateKey, SEND_HEADER, controlKeys } from '../protocol/index.js';
import type { Topology } from '../store/provision.js';
import { scanLastValues } from '../store/kv-scan.js';
import { decodeJson, encodeJson, type Checkpoint } from '../store/records.js';
import { kvWriteSubject } from './acked-publisher.js';
import { errorBody, newRecord, type CommitterOptions, type Failure } from './commit-types.js';
import { nameError, type DecodedOp } from './decode.js';
import { foldKey, type FoldEnv, type KeyFold } from './fold.js';
import type { CachedRecord } from './record-cache.js';
import { conflictOr, encodeText, loadRecords, writeRecords } from './record-io.js';
import { isDuplicateSend, placeOf, trustedSend } from './send-dedup.js';
import { publishOutboxes, type Outbox } from './send-order.js';
import { removeTombstones, storeSideOutputs } from './side-outputs.js';

export type { CommitterOptions, ProcessorHooks } from './commit-types.js';

/** Weight of one observed cache miss in the estimate of new keys. */
const NEW_KEY_ALPHA = 0.02;
/** JetStream's "store failed" (err_code 10077): the stream is at its byte bound (discard new). */
const STREAM_STORE_FAILED = 10077;
/** How long one commit goes on publishing waiting sends one at a time once the stream has room again (ms). */
const WAITING_SENDS_MS = 250;
/** A state key as a checkpoint of an older version listed it (`<type>.<key>`, valid names). */
const STATE_KEY = /^[A-Za-z0-9_=-]{1,64}\.[A-Za-z0-9_=-]{1,128}$/;

/** Commits batches of one partition, in order; holds the checkpoint. */
export class BatchCommitter {
  private checkpointSeq = 0;
  private checkpointRev = 0;
  /**
   * Share of cache misses that were keys never written (moving average). While it is at
   * least one half, misses are guessed new instead of read first; the create's CAS checks it.
   */
  private newKeyRate = 0.75;
  /** Tombstones the checkpoint has passed, to remove after the next checkpoint: key -> revision. */
  private readonly staleTombstones = new Map<string, number>();
  /** Keys whose records this batch read from the store: their timers are checked against the index. */
  private readonly loaded = new Set<string>();
  /**
   * Keys whose records hold sends the stream refused because it was full. The checkpoint may
   * pass their operations (each has a marker `unsent.<p>.<key>` in the control bucket, written
   * first, and the checkpoint says markers exist, so a next owner publishes them too): a full
   * stream then drains, since what is applied can be purged, instead of every partition with a
   * send stopping at it for ever. They are published again, in order, at each commit.
   */
  private readonly unsent = new Set<string>();
  /** The unsent keys changed since the checkpoint was written. */
  private unsentChanged = false;
  /** Keys whose sends are all stored now: their markers go before the next checkpoint. */
  private unmarked: string[] = [];
  /** Where the partition waits, as its checkpoint says (see {@link BatchCommitter.commit}). */
  private blocked: Checkpoint['blocked'];

  constructor(private readonly o: CommitterOptions) {}

  /** The last committed checkpoint. */
  get checkpoint(): number {
    return this.checkpointSeq;
  }

  /** Reads the partition's checkpoint; one written for another incarnation of the stream counts as none. */
  async loadCheckpoint(): Promise<number> {
    const { topology, partition, log } = this.o;
    const entry = await topology.control.get(controlKeys.checkpoint(partition, this.o.lane));
    this.checkpointRev = entry?.revision ?? 0;
    this.checkpointSeq = 0;
    let covered = false;
    let listed: unknown[] = [];
    if (entry && entry.operation === 'PUT') {
      const ck = decodeJson<Checkpoint>(entry.value);
      covered = coversDuties(ck, this.o.lane, this.o.duties);
      if (ck && ck.stream !== undefined && ck.stream !== topology.streamCreated) {
        log.warn({ partition, checkpoint: ck.seq }, 'the operations stream was recreated since this checkpoint: reading the new stream from its start');
      } else {
        this.checkpointSeq = ck?.seq ?? 0;
        // An older version listed the keys in the checkpoint itself.
        if (Array.isArray(ck?.unsent)) listed = ck.unsent;
        this.blocked = ck?.blocked;
      }
    }
    if (this.o.duties && !covered) {
      // This lane now applies types its checkpoint does not cover (it took them over from a lane
      // that stopped, or its set changed): read from the lowest checkpoint of any lane, so their
      // operations are read from where their previous home left them (what this lane applied
      // already is skipped by its records' seqs).
      const { low, floors } = await laneCheckpoints(topology, partition, this.o.lanes?.() ?? []);
      // Below these, a type's operations were applied (or failed) by a lane whose checkpoint lists
      // it: skipped, never applied, dead-lettered or their sends republished a second time.
      this.typeFloors = floors;
      if (low < this.checkpointSeq) {
        log.info({ partition, lane: this.o.lane, checkpoint: this.checkpointSeq, from: low, duties: this.o.duties }, 'lane took over types: reading from the lowest checkpoint of the partition');
        this.checkpointSeq = low;
      }
    }
    // Whatever the checkpoint says: a marker a crash left behind is taken up (and removed once
    // its sends are stored) now, not by some later owner whose checkpoint says markers exist.
    for (const k of await this.listMarkers()) this.unsent.add(k);
    const unmarkedKeys = listed.filter((k): k is string => typeof k === 'string' && STATE_KEY.test(k) && !this.unsent.has(k));
    if (unmarkedKeys.length > 0) {
      // The next checkpoint only says markers exist: these keys get theirs first.
      await this.mark(unmarkedKeys);
      log.info({ partition, keys: unmarkedKeys.length }, 'keys listed as unsent by an older checkpoint got their markers');
    }
    return this.checkpointSeq;
  }

  /**
   * The keys of this partition's unsent markers: one STREAM.INFO when there are none (no marker
   * was ever written in the partition), else a scan of the markers' last values.
   */
  private async listMarkers(): Promise<string[]> {
    const { topology, names, partition } = this.o;
    const prefix = controlKeys.unsent(partition, '').slice(0, -1);
    const info = await topology.jsm.streams.info(`KV_${names.controlBucket}`, { subjects_filter: `$KV.${names.controlBucket}.${prefix}.>` });
    if (Object.keys(info.state.subjects ?? {}).length === 0) return [];
    const keys: string[] = [];
    await scanLastValues(topology.js, names.controlBucket, prefix, (k, deleted) => (deleted ? undefined : keys.push(k)));
    // Markers of another lane's actors (ownership/placement.ts) are that lane's to take up.
    const duty = this.o.duty;
    return duty ? keys.filter((k) => duty(k.slice(0, k.indexOf('.'))) !== 'skip') : keys;
  }

  /** Writes the markers of keys whose sends wait for room (before the checkpoint that passes them). */
  private async mark(keys: readonly string[]): Promise<void> {
    const { topology, publisher, partition } = this.o;
    await Promise.all(keys.map((k) => publisher.publish(kvWriteSubject(topology.control, controlKeys.unsent(partition, k)), new Uint8Array(0), { guard: this.o.leaseValid })));
    for (const k of keys) this.unsent.add(k);
    this.unsentChanged = true;
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
    const known = this.blocked;
    if (known && known.seq === at.seq && known.reason === at.reason) {
      log.debug({ partition, seq: at.seq }, 'partition still waits');
      return;
    }
    log.error({ partition, ...at }, `PARTITION ${partition} WAITS: ${err.message}`);
    this.blocked = { ...at, partition, since: new Date().toISOString() };
    await this.writeCheckpoint(this.checkpointSeq);
  }

  /** Up to which seq a key's sends are known published: the checkpoint, or its type's floor after a take-over. */
  private readonly publishedThrough = (key: string): number => Math.max(this.checkpointSeq, this.typeFloor(key.slice(0, key.indexOf('.'))));

  /** Per type, the highest checkpoint of a lane that lists it, when this lane took types over (see {@link typeFloor}). */
  private typeFloors = new Map<string, number>();

  /**
   * The seq up to which operations of `type` were already processed by some lane (0: none
   * known): a lane reading again from a lower checkpoint to take a type over skips them.
   */
  typeFloor(type: string): number {
    return this.typeFloors.get(type) ?? 0;
  }

  /** Some records hold sends a full stream refused: commit now and then, even with nothing read. */
  get hasUnsent(): boolean {
    return this.unsent.size > 0;
  }

  private async commitBatch(batch: DecodedOp[]): Promise<void> {
    const started = performance.now();
    const { log, partition } = this.o;
    const groups = new Map<string, DecodedOp[]>();
    const failures: Failure[] = [];
    const folds = new Map<string, KeyFold>();
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
    // Dead letters and kept outcomes are stored before the records (and so before the
    // checkpoint): a replay skips what a record already holds, so whatever an operation must
    // leave behind besides its state has to be durable first. Replays store them again
    // (a dead letter's msg id and an outcome's key make that harmless).
    await this.foldAll(groups, folds, failures);
    if (this.o.aborted()) return;

    const { cache } = this.o;
    let dirtyCount = 0;
    const replies: Array<{ inbox: string; body: string }> = [];
    const tombstones: Array<[string, number]> = [];
    const byOperation: Record<string, number> = {};
    for (const [k, f] of folds) {
      if (f.dirty) {
        dirtyCount++;
        cache.set(k, f.rec);
        // A deleted actor that received sends keeps its tombstone: it remembers which (send-dedup.ts).
        if (f.rec.json === null && !f.rec.received) tombstones.push([k, f.rec.revision]);
      }
      if (f.replies) replies.push(...f.replies);
      if (f.failures) failures.push(...f.failures);
      if (f.applied) for (const name of f.applied) byOperation[name] = (byOperation[name] ?? 0) + 1;
      if (f.trace) for (const t of f.trace) log.debug({ partition, type: t.op.type, key: t.op.key, op: t.op.op, seq: t.op.seq, state: t.state === null ? null : (JSON.parse(t.state) as unknown) }, 'applied');
    }
    for (const fail of failures) {
      const { op, error } = fail;
      if (op.reply) replies.push({ inbox: op.reply, body: errorBody(fail) });
      if (fail.refusal) {
        // A handler's deliberate error: the operation's outcome, not a fault (no dead letter).
        log.info({ partition, type: op.type, key: op.key, op: op.op, seq: op.seq, code: error.code, ...(op.resubmitted ? { resubmitted: op.resubmitted } : {}) }, `operation refused: ${error.message}`);
        this.o.hooks?.onOperationRefused?.({ partition, type: op.type, key: op.key, op: op.op, seq: op.seq, error });
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
      this.o.hooks?.onOperationError?.({ partition, type: op.type, key: op.key, op: op.op, seq: op.seq, error, subject: op.subject, payload: op.data });
    }
    for (const op of batch) {
      if (op.refusedReply === undefined) continue;
      log.warn({ partition, seq: op.seq, reply: op.refusedReply }, 'reply header is not a literal inbox subject: the operation is applied, no reply is sent');
      this.o.hooks?.onRefusedReply?.({ partition, seq: op.seq, reply: op.refusedReply });
    }

    // Sends and the timer index before the checkpoint: a replay from the old checkpoint
    // finds the records that hold them, publishes the sends again (their msg ids make that a
    // duplicate the stream drops) and repairs the index.
    const last = batch[batch.length - 1];
    await this.publishSends(folds, last?.seq ?? 0);
    await this.syncTimers(folds);
    if ((last && last.seq > this.checkpointSeq) || this.unsentChanged) await this.writeCheckpoint(Math.max(last?.seq ?? 0, this.checkpointSeq));
    for (const r of replies) {
      try {
        this.o.nc.publish(r.inbox, r.body);
      } catch (err) {
        log.warn({ partition, err: String(err) }, 'reply could not be sent');
      }
    }
    const stale = [...this.staleTombstones];
    this.staleTombstones.clear();
    // A deleted sender's record is where its sends wait while the stream refuses them: it stays
    // until they are stored (it is removed when next seen after that).
    const removable = [...tombstones, ...stale].filter(([k]) => !this.unsent.has(k) && !cache.get(k)?.outbox?.length);
    await removeTombstones(this.o, removable);
    if (batch.length === 0) return;
    const commitMs = performance.now() - started;
    const errors = failures.length;
    this.o.hooks?.onCommit?.({ partition, ops, keys: dirtyCount, errors, commitMs, checkpoint: this.checkpointSeq, byOperation });
    // Info for big or slow commits; every commit at debug (a busy worker commits hundreds per second).
    const level = ops >= 1000 || commitMs > 1000 ? 'info' : 'debug';
    if (log.isLevelEnabled(level)) {
      log[level]({ partition, ops, keys: dirtyCount, errors, commitMs: Math.round(commitMs), checkpoint: this.checkpointSeq }, 'committed');
    }
  }

  /**
   * Folds every key and writes the changed records. Records not in the cache are read, or,
   * while most such keys turn out to be new (a fresh keyspace), guessed new: the create's CAS
   * checks the guess, and a key that exists fails it (10071), is read and folded again.
   * The records of this batch are held here, not only in the cache, so a cache smaller than
   * one batch's keys still works.
   */
  private async foldAll(groups: Map<string, DecodedOp[]>, folds: Map<string, KeyFold>, nameFailures: readonly Failure[]): Promise<void> {
    const { cache, partition, actors, maxStateBytes, maxSendBytes, log } = this.o;
    const { topology, names } = this.o;
    const env: FoldEnv = {
      actors,
      maxStateBytes,
      maxSendBytes,
      debug: log.isLevelEnabled('debug'),
      salt: topology.salt,
      stream: topology.streamCreated,
      partitions: topology.partitions,
      subjectPrefix: names.subjectPrefix,
      unknownOperation: this.o.unknownOperation,
    };
    const load = async (keys: string[]) => {
      for (const k of keys) this.loaded.add(k);
      await loadRecords(this.o, keys, bases, this.publishedThrough, this.staleTombstones, this.unsent);
    };
    const bases = new Map<string, CachedRecord>();
    const guessed = new Set<string>();
    const missing: string[] = [];
    for (const k of groups.keys()) {
      const hit = cache.get(k);
      if (hit) bases.set(k, hit);
      else missing.push(k);
    }
    if (missing.length > 0) {
      if (this.newKeyRate >= 0.5) for (const k of missing) guessed.add(k);
      else {
        await load(missing);
        for (const k of missing) this.learnNewKey(bases.get(k)?.revision === 0);
      }
    }
    const fold = (k: string) => folds.set(k, foldKey(bases.get(k) ?? newRecord(partition), groups.get(k) ?? [], env));
    for (const k of groups.keys()) fold(k);
    // Only a write checks a guess: a guessed key that writes nothing (a read, an error) is read
    // now, and so is one that leaves outcomes or dead letters (they are stored before any write).
    const unchecked = [...guessed].filter((k) => {
      const f = folds.get(k);
      return !f?.dirty || f.failures !== undefined || f.outcomes !== undefined;
    });
    if (unchecked.length > 0) {
      await load(unchecked);
      for (const k of unchecked) {
        guessed.delete(k);
        this.learnNewKey(bases.get(k)?.revision === 0);
        fold(k);
      }
    }
    await storeSideOutputs(this.o, nameFailures, folds.values());
    const refused = new Map<string, unknown>();
    const existed = await writeRecords(this.o, [...folds].filter(([, f]) => f.dirty).map(([k]) => k), folds, guessed, refused);
    for (const k of guessed) this.learnNewKey(!existed.includes(k));
    if (existed.length > 0) {
      await load(existed);
      for (const k of existed) {
        guessed.delete(k);
        fold(k);
      }
      await storeSideOutputs(this.o, [], existed.map((k) => folds.get(k) as KeyFold));
      await writeRecords(this.o, existed.filter((k) => folds.get(k)?.dirty), folds, guessed, refused);
    }
    if (refused.size > 0) await this.failUnwritable(refused, groups, folds, bases, load, (base) => foldKey(base, [], env));
  }

  /**
   * Records the store refused for their size (a bound the worker could not know, such as a
   * bucket's lower max_msg_size): each such key keeps its last stored state, and its operations
   * of this batch fail with STATE_TOO_LARGE (error results, dead letters, kept outcomes) instead
   * of the partition stopping at them.
   */
  private async failUnwritable(
    refused: Map<string, unknown>,
    groups: Map<string, DecodedOp[]>,
    folds: Map<string, KeyFold>,
    bases: Map<string, CachedRecord>,
    load: (keys: string[]) => Promise<void>,
    unchanged: (base: CachedRecord) => KeyFold,
  ): Promise<void> {
    const { partition, topology, log } = this.o;
    const unread = [...refused.keys()].filter((k) => !bases.has(k));
    if (unread.length > 0) await load(unread);
    const failed: KeyFold[] = [];
    for (const [k, cause] of refused) {
      const base = bases.get(k) ?? newRecord(partition);
      const earlier = folds.get(k)?.failures ?? [];
      const error = toErrorBody(new ActorError(ErrorCode.StateTooLarge, `the record of ${k} could not be stored (${String(cause)}); the state is unchanged`));
      const failures: Failure[] = [];
      for (const op of groups.get(k) ?? []) {
        if (op.seq <= base.seq) continue;
        const sent = op.send && trustedSend(op.send, topology.salt, topology.streamCreated, topology.partitions);
        if (sent && isDuplicateSend(base.received, sent)) continue;
        failures.push(earlier.find((x) => x.op === op) ?? { op, error, cause });
      }
      log.warn({ partition, key: k, err: String(cause) }, 'a record was refused for its size: its operations of this batch fail');
      const f = unchanged(base);
      if (failures.length > 0) f.failures = failures;
      folds.set(k, f);
      failed.push(f);
    }
    await storeSideOutputs(this.o, [], failed);
  }

  /**
   * Publishes every send the batch's records hold, and those of records a full stream refused
   * before, and awaits the stream's acks, in the order send-order.ts tells (one sender's sends
   * are stored in order). A send refused because the stream is full stays in its record (the
   * key gets a marker) for the next commit; any other failure fails the commit. `lastSeq` is
   * the batch's last operation (0 for none).
   */
  private async publishSends(folds: Map<string, KeyFold>, lastSeq: number): Promise<void> {
    const { publisher, cache, log, partition } = this.o;
    const outboxes = new Map<string, CachedRecord>();
    for (const [k, f] of folds) if (f.rec.outbox && f.rec.outbox.length > 0) outboxes.set(k, f.rec);
    const retry = [...this.unsent].filter((k) => !outboxes.has(k));
    if (retry.length > 0) {
      const recs = new Map<string, CachedRecord>();
      const missing = retry.filter((k) => {
        const hit = cache.get(k);
        if (hit) recs.set(k, hit);
        return !hit;
      });
      if (missing.length > 0) await loadRecords(this.o, missing, recs, this.publishedThrough, this.staleTombstones, this.unsent);
      for (const k of retry) {
        const rec = recs.get(k);
        if (rec?.outbox && rec.outbox.length > 0) outboxes.set(k, rec);
        else this.markSent(k);
      }
    }
    const list: Outbox[] = [...outboxes].map(([k, rec]) => ({ key: k, sends: [...(rec.outbox ?? [])], waiting: this.unsent.has(k) }));
    // The floors declared cover this committer's sends only: a second committer of the same
    // partition (with its own checkpoint) needs a unit of its own, `<p>@<id>` (send-dedup.ts).
    // Each lane (service) is a committer of its own on the partition (ownership/placement.ts).
    const unit = this.o.lane === undefined || this.o.lane === DEFAULT_LANE ? String(partition) : `${partition}@${this.o.lane}`;
    const plan = { unit, cap: placeOf(Math.max(lastSeq, this.checkpointSeq) + 1, 0), waitingUntil: performance.now() + WAITING_SENDS_MS };
    const fatal = await publishOutboxes(
      list,
      plan,
      // The guard checks the lease right before each send goes out.
      (x, header) => publisher.publish(x.subject, x.input === undefined ? new Uint8Array(0) : encodeText(x.input), { msgId: x.id, headers: [[SEND_HEADER, header]], guard: this.o.leaseValid }),
      isStreamFull,
    );
    if (fatal !== undefined) {
      const err = fatal instanceof Error ? fatal : new Error(`a send could not be published: ${JSON.stringify(fatal)}`);
      // The partition restarts from its checkpoint and publishes them all again, in order.
      log.warn({ partition, err: err.message }, 'a send could not be published; the partition restarts from its checkpoint');
      cache.dropPartition(partition);
      throw err;
    }
    const waiting: string[] = [];
    for (const o of list) {
      const rec = outboxes.get(o.key) as CachedRecord;
      const cached = cache.get(o.key);
      if (o.sends.length === 0) {
        delete rec.outbox;
        if (cached) delete cached.outbox;
        this.markSent(o.key);
        continue;
      }
      // What is left waits (the stored ones are taken off, so this owner does not publish them
      // again); the next fold of this key appends to it, in order.
      rec.outbox = o.sends;
      if (cached) cached.outbox = o.sends;
      else cache.set(o.key, rec);
      if (!this.unsent.has(o.key)) waiting.push(o.key);
    }
    if (waiting.length > 0) {
      // Markers before the checkpoint that passes these sends.
      await this.mark(waiting);
      log.warn({ partition, keys: this.unsent.size }, 'the operations stream is full: sends wait in their records for room');
    }
    await this.unmark();
  }

  private markSent(k: string): void {
    if (!this.unsent.delete(k)) return;
    this.unsentChanged = true;
    this.unmarked.push(k);
  }

  /**
   * Deletes the markers of keys whose sends are all stored, before the checkpoint that drops
   * them from the unsent set (a failed delete fails the commit): a marker left behind would
   * make a later owner publish that key's old outbox again, perhaps long after the duplicate
   * window. Fenced like every write: a late delete by a former owner could remove a marker
   * the new owner needs.
   */
  private async unmark(): Promise<void> {
    if (this.unmarked.length === 0) return;
    const keys = this.unmarked;
    this.unmarked = [];
    const { topology, publisher, partition } = this.o;
    await Promise.all(keys.map((k) => publisher.publish(kvWriteSubject(topology.control, controlKeys.unsent(partition, k)), new Uint8Array(0), { headers: [['KV-Operation', 'DEL']], guard: this.o.leaseValid })));
  }

  /** Makes the timer index follow the records whose timers changed or were loaded. */
  private async syncTimers(folds: Map<string, KeyFold>): Promise<void> {
    const index = this.o.timers;
    if (!index) return;
    const work: Array<Promise<void>> = [];
    for (const [k, f] of folds) {
      if (f.timersChanged || f.reindex || this.loaded.has(k)) work.push(index.sync(k, f.rec.timers));
    }
    this.loaded.clear();
    await Promise.all(work);
  }

  private learnNewKey(wasNew: boolean): void {
    this.newKeyRate += NEW_KEY_ALPHA * ((wasNew ? 1 : 0) - this.newKeyRate);
  }

  private assertLease(what: string): void {
    if (!this.o.leaseValid()) throw new FencedError(`partition ${this.o.partition}: lease not held, refusing to ${what}`);
  }

  private async writeCheckpoint(seq: number): Promise<void> {
    if (this.o.aborted()) return;
    this.assertLease('checkpoint');
    const { topology, partition, publisher, epoch } = this.o;
    // A checkpoint that passes the operation the partition waited at ends the wait.
    if (this.blocked && seq >= this.blocked.seq) this.blocked = undefined;
    const ck: Checkpoint = {
      seq,
      epoch,
      stream: topology.streamCreated,
      updatedAt: new Date().toISOString(),
      ...(this.unsent.size > 0 ? { unsent: true } : {}),
      ...(this.o.duties ? { duties: [...this.o.duties] } : {}),
      ...(this.blocked ? { blocked: this.blocked } : {}),
    };
    this.unsentChanged = false;
    try {
      const ack = await publisher.publish(kvWriteSubject(topology.control, controlKeys.checkpoint(partition, this.o.lane)), encodeJson(ck), {
        expectedLastSubjectSequence: this.checkpointRev,
        guard: this.o.leaseValid,
      });
      this.checkpointRev = ack.seq;
    } catch (err) {
      throw conflictOr(err, `partition ${partition}: checkpoint was written by someone else`);
    }
    this.checkpointSeq = seq;
  }
}

/** The stream refused a publish because it is at its byte bound. */
function isStreamFull(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === STREAM_STORE_FAILED;
}

/**
 * True when checkpoint `ck` covers `duties`: it lists each of them, or it was written before
 * lanes by the default lane (which then applied every type).
 */
function coversDuties(ck: Checkpoint | null, lane: string | undefined, duties: readonly string[] | undefined): boolean {
  if (!duties || !ck) return !duties;
  if (!ck.duties) return lane === undefined || lane === DEFAULT_LANE;
  const listed = new Set(ck.duties);
  return duties.every((d) => listed.has(d));
}

/**
 * The checkpoints of partition `p` among `lanes` (and the default lane's, of a store from before
 * lanes), of this incarnation of the stream: the lowest (0 when a registered lane has none: it
 * may have been the home of a type this lane takes over, a worker of it heartbeat, then died
 * before its first commit, and every other lane's checkpoint passed that type's operations
 * meanwhile; the default lane's key, when the default lane is not registered, counts only if
 * present), and per type the highest checkpoint that lists it (its operations up to there were
 * processed by that lane). Reads each key (no key listing: nats.js's multi-filter key listing
 * waited for a heartbeat, 30 s, when the only match was a delete marker).
 */
async function laneCheckpoints(topology: Topology, p: number, lanes: readonly string[]): Promise<{ low: number; floors: Map<string, number> }> {
  const registered = new Set(lanes.map((l) => controlKeys.checkpoint(p, l)));
  let low = Infinity;
  const floors = new Map<string, number>();
  for (const key of new Set([controlKeys.checkpoint(p), ...registered])) {
    const e = await topology.control.get(key);
    const ck = e && e.operation === 'PUT' ? decodeJson<Checkpoint>(e.value) : null;
    if (ck && (ck.stream === undefined || ck.stream === topology.streamCreated)) {
      low = Math.min(low, ck.seq);
      for (const d of Array.isArray(ck.duties) ? ck.duties : []) if (typeof d === 'string' && ck.seq > (floors.get(d) ?? 0)) floors.set(d, ck.seq);
    } else if (registered.has(key)) low = 0;
  }
  return { low: Number.isFinite(low) ? low : 0, floors };
}
