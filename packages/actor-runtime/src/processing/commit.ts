/**
 * Commits one batch of a partition: loads the records it needs, folds each key's operations
 * (see fold.ts), writes the changed records with CAS, then dead letters and kept outcomes,
 * then the checkpoint, then answers callers, then removes tombstones the checkpoint passed.
 * The order is the exactly-once argument: nothing a caller or a replay can observe comes
 * before the state it depends on is stored.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { ActorError, FencedError, toErrorBody, type ErrorBody } from '../errors.js';
import { stateKey, type ActorNames } from '../names.js';
import type { Topology } from '../store/provision.js';
import { controlKeys, decodeJson, encodeJson, type Checkpoint, type StateRecord } from '../store/records.js';
import { kvWriteSubject, type AckedPublisher } from './acked-publisher.js';
import { nameError, type DecodedOp } from './decode.js';
import { foldKey, type KeyFold } from './fold.js';
import type { CachedRecord, RecordCache } from './record-cache.js';

/** Headers of a dead letter. */
export const DeadLetterHeaders = {
  Seq: 'Jetactor-Seq',
  Subject: 'Jetactor-Subject',
  Code: 'Jetactor-Error-Code',
  Message: 'Jetactor-Error-Message',
  Time: 'Jetactor-Time',
} as const;

/** Observations the processor reports (metrics, logs, tests). */
export interface ProcessorHooks {
  /** A batch was committed. */
  onCommit?(info: {
    partition: number;
    ops: number;
    keys: number;
    errors: number;
    commitMs: number;
    checkpoint: number;
    /** Applied operations by `<type>.<op>`. */
    byOperation: Record<string, number>;
  }): void;
  /** An operation failed (poison): bad payload, unknown actor or op, handler error, unstorable outcome. */
  onOperationError?(info: { partition: number; type: string; key: string; op: string; seq: number; error: ErrorBody; subject: string; payload: Uint8Array }): void;
  /** An operation carried a reply header that is not a literal inbox subject; it was applied and not answered. */
  onRefusedReply?(info: { partition: number; seq: number; reply: string }): void;
}

/** What a {@link BatchCommitter} works with. */
export interface CommitterOptions {
  partition: number;
  /** Fencing epoch: the lease revision at acquisition. */
  epoch: number;
  nc: NatsConnection;
  topology: Topology;
  names: ActorNames;
  actors: ReadonlyMap<string, AnyActorDefinition>;
  cache: RecordCache;
  log: Logger;
  publisher: AckedPublisher;
  /** Largest serialized state or result, bytes. */
  maxStateBytes: number;
  /** True while the lease is surely held; checked right before every write. */
  leaseValid: () => boolean;
  /** True once the processor was aborted: write nothing more. */
  aborted: () => boolean;
  /** Dead-letter subject of a failed operation; omit to keep no dead letters. */
  deadLetterSubject?: (type: string, key: string, op: string) => string;
  hooks?: ProcessorHooks;
}

/** A failed operation: its error result, dead letter and log line. */
type Failure = { op: DecodedOp; error: ErrorBody; cause: unknown };

/** The reply body (and kept outcome) of a failed operation. */
function errorBody(f: Failure): string {
  return JSON.stringify({ error: f.error, seq: f.op.seq });
}

/** Weight of one observed cache miss in the estimate of new keys. */
const NEW_KEY_ALPHA = 0.02;

/** The record of a key that was never written. */
function newRecord(partition: number): CachedRecord {
  return { json: null, seq: 0, revision: 0, partition };
}

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

  constructor(private readonly o: CommitterOptions) {}

  /** The last committed checkpoint. */
  get checkpoint(): number {
    return this.checkpointSeq;
  }

  /** Reads the partition's checkpoint; one written for another incarnation of the stream counts as none. */
  async loadCheckpoint(): Promise<number> {
    const { topology, partition, log } = this.o;
    const entry = await topology.control.get(controlKeys.checkpoint(partition));
    this.checkpointRev = entry?.revision ?? 0;
    this.checkpointSeq = 0;
    if (entry && entry.operation === 'PUT') {
      const ck = decodeJson<Checkpoint>(entry.value);
      if (ck && ck.stream !== undefined && ck.stream !== topology.streamCreated) {
        log.warn({ partition, checkpoint: ck.seq }, 'the operations stream was recreated since this checkpoint: reading the new stream from its start');
      } else this.checkpointSeq = ck?.seq ?? 0;
    }
    return this.checkpointSeq;
  }

  async commit(batch: DecodedOp[]): Promise<void> {
    const started = performance.now();
    const { log, partition } = this.o;
    const groups = new Map<string, DecodedOp[]>();
    const failures: Array<{ op: DecodedOp; error: ErrorBody; cause: unknown }> = [];
    const folds = new Map<string, KeyFold>();
    let ops = 0;
    for (const op of batch) {
      if (!op.valid) {
        log.warn({ partition, seq: op.seq, subject: op.subject.slice(0, 300) }, 'skipping message with an unexpected subject');
        continue;
      }
      ops++;
      // A subject from plain `nats pub` may carry a type or key that is no valid KV key
      // (`actors.counter.a%b.add`): an error result, not a load that throws forever.
      const badName = nameError(op);
      if (badName) {
        failures.push({ op, error: toErrorBody(badName), cause: badName });
        continue;
      }
      const k = stateKey(op.type, op.key);
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
        if (f.rec.json === null) tombstones.push([k, f.rec.revision]);
      }
      if (f.replies) replies.push(...f.replies);
      if (f.failures) failures.push(...f.failures);
      if (f.applied) for (const name of f.applied) byOperation[name] = (byOperation[name] ?? 0) + 1;
      if (f.trace) for (const t of f.trace) log.debug({ partition, type: t.op.type, key: t.op.key, op: t.op.op, seq: t.op.seq, state: t.state === null ? null : (JSON.parse(t.state) as unknown) }, 'applied');
    }
    for (const fail of failures) {
      const { op, error } = fail;
      if (op.reply) replies.push({ inbox: op.reply, body: errorBody(fail) });
      log.warn(
        { partition, type: op.type.slice(0, 130), key: op.key.slice(0, 130), op: op.op.slice(0, 130), seq: op.seq, code: error.code, err: fail.cause instanceof ActorError ? undefined : fail.cause },
        `operation failed: ${error.message}`,
      );
      this.o.hooks?.onOperationError?.({ partition, type: op.type, key: op.key, op: op.op, seq: op.seq, error, subject: op.subject, payload: op.data });
    }
    for (const op of batch) {
      if (op.refusedReply === undefined) continue;
      log.warn({ partition, seq: op.seq, reply: op.refusedReply }, 'reply header is not a literal inbox subject: the operation is applied, no reply is sent');
      this.o.hooks?.onRefusedReply?.({ partition, seq: op.seq, reply: op.refusedReply });
    }

    const last = batch[batch.length - 1];
    if (last && last.seq > this.checkpointSeq) await this.writeCheckpoint(last.seq);
    for (const r of replies) {
      try {
        this.o.nc.publish(r.inbox, r.body);
      } catch (err) {
        log.warn({ partition, err: String(err) }, 'reply could not be sent');
      }
    }
    await this.removeTombstones(tombstones);
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
    const { cache, partition, actors, maxStateBytes, log } = this.o;
    const env = { actors, maxStateBytes, debug: log.isLevelEnabled('debug') };
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
        await this.load(missing, bases);
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
      await this.load(unchecked, bases);
      for (const k of unchecked) {
        guessed.delete(k);
        this.learnNewKey(bases.get(k)?.revision === 0);
        fold(k);
      }
    }
    await this.storeSideOutputs(nameFailures, folds.values());
    const existed = await this.writeRecords([...folds].filter(([, f]) => f.dirty).map(([k]) => k), folds, guessed);
    for (const k of guessed) this.learnNewKey(!existed.includes(k));
    if (existed.length > 0) {
      await this.load(existed, bases);
      for (const k of existed) {
        guessed.delete(k);
        fold(k);
      }
      await this.storeSideOutputs([], existed.map((k) => folds.get(k) as KeyFold));
      await this.writeRecords(existed.filter((k) => folds.get(k)?.dirty), folds, guessed);
    }
  }

  /** Stores the dead letters and kept outcomes of `failures` and of `folds`. */
  private async storeSideOutputs(failures: readonly Failure[], folds: Iterable<KeyFold>): Promise<void> {
    const dead: Failure[] = [...failures];
    const outcomes: Array<{ seq: number; body: string }> = [];
    for (const f of failures) if (f.op.hasMsgId) outcomes.push({ seq: f.op.seq, body: errorBody(f) });
    for (const f of folds) {
      if (f.outcomes) outcomes.push(...f.outcomes);
      if (f.failures) {
        dead.push(...f.failures);
        for (const x of f.failures) if (x.op.hasMsgId) outcomes.push({ seq: x.op.seq, body: errorBody(x) });
      }
    }
    await Promise.all([this.publishDeadLetters(dead), this.publishOutcomes(outcomes)]);
  }

  private learnNewKey(wasNew: boolean): void {
    this.newKeyRate += NEW_KEY_ALPHA * ((wasNew ? 1 : 0) - this.newKeyRate);
  }

  private assertLease(what: string): void {
    if (!this.o.leaseValid()) throw new FencedError(`partition ${this.o.partition}: lease not held, refusing to ${what}`);
  }

  /** Writes the records of `keys` with CAS; resolves with the guessed-new keys that existed after all. */
  private async writeRecords(keys: string[], folds: Map<string, KeyFold>, guessed: Set<string>): Promise<string[]> {
    if (keys.length === 0 || this.o.aborted()) return [];
    this.assertLease('write');
    const { topology, partition, publisher, epoch } = this.o;
    const tail = `,"seq":`;
    const meta = `,"epoch":${epoch},"gen":${topology.controlCreated},"stream":${topology.streamCreated},"updatedAt":"${new Date().toISOString()}"`;
    const write = async (k: string): Promise<boolean> => {
      const rec = (folds.get(k) as KeyFold).rec;
      const body = rec.json === null ? `{"state":null${tail}${rec.seq}${meta},"deleted":true}` : `{"state":${rec.json}${tail}${rec.seq}${meta}}`;
      try {
        // Revision 0 is a create: the CAS fails if the key has any entry at all.
        const ack = await publisher.publish(kvWriteSubject(topology.state, k), encodeText(body), { expectedLastSubjectSequence: rec.revision, guard: this.o.leaseValid });
        rec.revision = ack.seq;
        return true;
      } catch (err) {
        if (guessed.has(k) && isWrongLastSequence(err)) return false; // the guess was wrong
        throw conflictOr(err, `partition ${partition}: record ${k} was written by someone else`);
      }
    };
    const settled = await Promise.allSettled(keys.map(write));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      this.o.cache.dropPartition(partition);
      throw failed.reason;
    }
    return keys.filter((_, i) => (settled[i] as PromiseFulfilledResult<boolean>).value === false);
  }

  /** Reads records into `into` (and the cache); a record of a newer owner fences this one. */
  private async load(keys: string[], into: Map<string, CachedRecord>): Promise<void> {
    const { cache, topology, partition, epoch } = this.o;
    await Promise.all(
      keys.map(async (k) => {
        const entry = await topology.state.get(k);
        let rec: CachedRecord;
        if (!entry || entry.operation !== 'PUT') {
          rec = { json: null, seq: 0, revision: entry?.revision ?? 0, partition };
        } else {
          const stored = decodeJson<StateRecord>(entry.value);
          // Epochs are lease revisions, which only grow within one control bucket; `gen` tells
          // the bucket's incarnation, so a recreated bucket's small revisions still win.
          const gen = stored?.gen ?? 0;
          if (stored && (gen > topology.controlCreated || (gen === topology.controlCreated && stored.epoch > epoch))) {
            throw new FencedError(`partition ${partition}: record ${k} was written by a newer owner (epoch ${stored.epoch} > ${epoch})`);
          }
          // A seq of another incarnation of the operations stream says nothing about this one.
          const sameStream = stored?.stream === undefined || stored.stream === topology.streamCreated;
          const deleted = !stored || stored.deleted === true;
          rec = { json: deleted ? null : JSON.stringify(stored.state), seq: sameStream ? (stored?.seq ?? 0) : 0, revision: entry.revision, partition };
          if (deleted && stored && sameStream && stored.seq <= this.checkpointSeq) this.staleTombstones.set(k, entry.revision);
        }
        into.set(k, rec);
        cache.set(k, rec);
      }),
    );
  }

  private async publishDeadLetters(items: Array<{ op: DecodedOp; error: ErrorBody }>): Promise<void> {
    const subjectOf = this.o.deadLetterSubject;
    if (!subjectOf || items.length === 0 || this.o.aborted()) return;
    const { js, streamCreated } = this.o.topology;
    const stream = this.o.names.stream;
    await Promise.all(
      items.map(({ op, error }) => {
        const h = headers();
        h.set(DeadLetterHeaders.Seq, String(op.seq));
        h.set(DeadLetterHeaders.Subject, op.subject.slice(op.subject.indexOf('.') + 1));
        h.set(DeadLetterHeaders.Code, error.code);
        h.set(DeadLetterHeaders.Message, error.message.replace(/[\r\n]+/g, ' ').slice(0, 1024));
        h.set(DeadLetterHeaders.Time, new Date(op.time).toISOString());
        // Invalid names go to one fixed subject (the header keeps the original): a subject
        // near the server's control-line limit would make this publish's longer line a
        // protocol error that drops the worker's connection.
        const subject = nameError(op) ? subjectOf('_invalid', '_', '_') : subjectOf(op.type, op.key, op.op);
        return js.publish(subject, op.data, { headers: h, msgID: `dlq-${stream}-${streamCreated}-${op.seq}` });
      }),
    );
  }

  private async publishOutcomes(items: Array<{ seq: number; body: string }>): Promise<void> {
    if (items.length === 0 || this.o.aborted()) return;
    this.assertLease('keep outcomes');
    const { publisher, topology } = this.o;
    await Promise.all(items.map((o) => publisher.publish(kvWriteSubject(topology.outcomes, String(o.seq)), encodeText(o.body))));
  }

  private async writeCheckpoint(seq: number): Promise<void> {
    if (this.o.aborted()) return;
    this.assertLease('checkpoint');
    const { topology, partition, publisher, epoch } = this.o;
    const ck: Checkpoint = { seq, epoch, stream: topology.streamCreated, updatedAt: new Date().toISOString() };
    try {
      const ack = await publisher.publish(kvWriteSubject(topology.control, controlKeys.checkpoint(partition)), encodeJson(ck), {
        expectedLastSubjectSequence: this.checkpointRev,
        guard: this.o.leaseValid,
      });
      this.checkpointRev = ack.seq;
    } catch (err) {
      throw conflictOr(err, `partition ${partition}: checkpoint was written by someone else`);
    }
    this.checkpointSeq = seq;
  }

  /**
   * Removes tombstones once the checkpoint has passed their delete: a replay starts after it,
   * so the record is no longer needed to skip what was applied. The purge removes the
   * subject's messages up to the tombstone's revision only, so a newer write survives it.
   */
  private async removeTombstones(fresh: Array<[string, number]>): Promise<void> {
    const all = [...fresh, ...this.staleTombstones];
    this.staleTombstones.clear();
    if (all.length === 0 || this.o.aborted() || !this.o.leaseValid()) return;
    const { topology, cache, partition, log, names } = this.o;
    await Promise.all(
      all.map(async ([k, rev]) => {
        try {
          await topology.jsm.streams.purge(`KV_${names.stateBucket}`, { filter: kvWriteSubject(topology.state, k), seq: rev + 1 });
          const cached = cache.get(k);
          if (cached && cached.revision === rev && cached.json === null) cache.set(k, newRecord(partition));
        } catch (err) {
          log.warn({ partition, key: k, err: String(err) }, 'tombstone could not be removed; it is removed when next seen');
        }
      }),
    );
  }
}

const enc = new TextEncoder();
function encodeText(s: string): Uint8Array {
  return enc.encode(s);
}

/** True for the error of a CAS publish that lost: wrong last (subject) sequence, 10071. */
function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}

function conflictOr(err: unknown, message: string): unknown {
  return isWrongLastSequence(err) ? new FencedError(message, { cause: err }) : err;
}
