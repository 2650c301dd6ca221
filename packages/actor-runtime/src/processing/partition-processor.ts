import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type Consumer, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { DELETE_OPERATION, type AnyActorDefinition, type OperationContext } from '../definition/define-actor.js';
import { ActorError, FencedError, InvalidInputError, UnknownActorError, toErrorBody, type ErrorBody } from '../errors.js';
import { parseStoredSubject, stateKey, validateName } from '../names.js';
import { controlKeys, decodeJson, encodeJson, type Checkpoint, type StateRecord } from '../store/records.js';
import type { Topology } from '../store/provision.js';
import type { CachedRecord, RecordCache } from './record-cache.js';
import { readBudgetOf, type ReadBudget } from './read-budget.js';
import { ackedPublisherOf, kvWriteSubject, type AckedPublisher } from './acked-publisher.js';

/** Header that carries the inbox a caller awaits the result on. */
export const REPLY_HEADER = 'Jetactor-Reply';

/** Headers of a dead letter. */
export const DeadLetterHeaders = {
  Seq: 'Jetactor-Seq',
  Subject: 'Jetactor-Subject',
  Code: 'Jetactor-Error-Code',
  Message: 'Jetactor-Error-Message',
  Time: 'Jetactor-Time',
} as const;

/** The reply a caller receives after its operation is committed. */
export type OperationReply = { result: unknown; seq: number } | { error: ErrorBody; seq: number };

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
  /** An operation failed (poison): bad payload, unknown actor or op, handler error. */
  onOperationError?(info: { partition: number; type: string; key: string; op: string; seq: number; error: ErrorBody; subject: string; payload: Uint8Array }): void;
}

/** Options of a {@link PartitionProcessor}. */
export interface PartitionProcessorOptions {
  partition: number;
  /** Fencing epoch: the lease revision at acquisition. */
  epoch: number;
  nc: NatsConnection;
  topology: Topology;
  streamName: string;
  actors: ReadonlyMap<string, AnyActorDefinition>;
  cache: RecordCache;
  log: Logger;
  /** Largest number of operations folded into one commit. */
  maxBatch: number;
  /** True while the lease is surely held; checked right before every write. */
  leaseValid: () => boolean;
  /** Dead-letter subject of a failed operation; omit to keep no dead letters. */
  deadLetterSubject?: (type: string, key: string, op: string) => string;
  hooks?: ProcessorHooks;
}

interface DecodedOp {
  /** False for a message whose subject has not the operation shape (skipped, logged). */
  valid: boolean;
  seq: number;
  type: string;
  key: string;
  op: string;
  subject: string;
  data: Uint8Array;
  time: number;
  reply: string | undefined;
}

const EMPTY_HEADERLESS = undefined;
const EMPTY_PAYLOAD = new Uint8Array(0);

/** One key's operations of a batch folded onto its record; its outputs wait for the commit. */
interface KeyFold {
  /** Working copy of the record (the cache keeps the committed one). */
  rec: CachedRecord;
  /** The record changed and must be written. */
  dirty: boolean;
  // The arrays are created on first use: most keys of a batch have no reply, no error and
  // one or two operations, and four empty arrays per key were a visible share of the garbage.
  replies?: Array<{ inbox: string; body: OperationReply }>;
  deadLetters?: Array<{ op: DecodedOp; error: ErrorBody }>;
  /** Logs and hooks, run once the fold is final. */
  effects?: Array<() => void>;
  errors: number;
  /** `<type>.<op>` of every applied operation (interned strings). */
  applied?: string[];
}

/** What a handler sees; the `Date` is made only if the handler reads `time`. */
class OpContext implements OperationContext {
  constructor(
    readonly type: string,
    readonly key: string,
    readonly op: string,
    readonly seq: number,
    private readonly ms: number,
  ) {}

  get time(): Date {
    return new Date(this.ms);
  }
}

const opNames = new Map<string, string>();
/** `<type>.<op>`, one string per pair for the life of the process (a handful of pairs). */
function opName(type: string, op: string): string {
  const k = `${type}\u0000${op}`;
  let name = opNames.get(k);
  if (name === undefined) {
    name = `${type}.${op}`;
    if (opNames.size < 10_000) opNames.set(k, name);
  }
  return name;
}

/** The record of a key that was never written. */
function newRecord(partition: number): CachedRecord {
  return { state: undefined, seq: 0, revision: 0, deleted: true, partition };
}

/** Weight of one observed cache miss in {@link PartitionProcessor}'s estimate of new keys. */
const NEW_KEY_ALPHA = 0.02;

/** Smallest and largest pull of one partition reader; it doubles while pulls come back full. */
const MIN_FETCH = 64;
const MAX_FETCH = 2048;
/** How long a pull waits on the server for operations that are not there yet (ms). */
const FETCH_EXPIRES_MS = 10_000;

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
  /** Record and checkpoint writes (CAS publishes with acks, windowed per connection). */
  private readonly publisher: AckedPublisher;
  /** Budget units this reader holds: read ahead, being committed, or pulled and not yet received. */
  private held = 0;
  /** Size of the next pull. */
  private fetchSize = MIN_FETCH;
  /** Wakes the reader when the committer took a batch (room in `pending`). */
  private roomWaiter: (() => void) | null = null;
  /**
   * Share of cache misses that were keys never written (moving average). While it is at
   * least one half, misses are guessed new instead of read first.
   */
  private newKeyRate = 0.75;
  private stopping = false;
  private aborted = false;
  private wake: (() => void) | null = null;
  private checkpointSeq = 0;
  private inFlight = 0;
  /** Messages left in the stream after the last one read, as the server reported it. */
  private remotePending = 0;
  private checkpointRev = 0;
  private readLoop: Promise<void> | null = null;
  private commitLoop: Promise<void> | null = null;
  /** Resolves when the processor has stopped; rejects with the failure if it failed. */
  done: Promise<void> = Promise.resolve();

  constructor(opts: PartitionProcessorOptions) {
    this.o = opts;
    this.partition = opts.partition;
    this.epoch = opts.epoch;
    this.budget = readBudgetOf(opts.nc);
    this.publisher = ackedPublisherOf(opts.nc);
  }

  /** The last committed checkpoint. */
  get checkpoint(): number {
    return this.checkpointSeq;
  }

  /** Operations read but not yet committed plus those still in the stream (approximate). */
  get lag(): number {
    return this.pending.length + this.inFlight + this.remotePending;
  }

  /** Reads the checkpoint and starts reading and committing. */
  async start(): Promise<void> {
    const { topology, partition } = this.o;
    const entry = await topology.control.get(controlKeys.checkpoint(partition));
    if (entry && entry.operation === 'PUT') {
      const ck = decodeJson<Checkpoint>(entry.value);
      this.checkpointSeq = ck?.seq ?? 0;
      this.checkpointRev = entry.revision;
    } else {
      this.checkpointSeq = 0;
      this.checkpointRev = entry?.revision ?? 0;
    }
    this.o.cache.dropPartition(partition);
    const consumer = await topology.js.consumers.get(this.o.streamName, {
      // A string, not an array: nats.js sends a single `filter_subject`. An array becomes
      // `filter_subjects`, which nats-server 2.10 serves at a few hundred msg/s once the
      // stream spans more than one message block (~100k operations); measured in packages/bench/README.md.
      filter_subjects: `${partition}.>`,
      ...(this.checkpointSeq > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.checkpointSeq + 1 }
        : { deliver_policy: DeliverPolicy.All }),
    });
    this.consumer = consumer;
    this.budget.register();
    this.readLoop = this.read();
    this.commitLoop = this.commitForever();
    // Settles once both loops have ended (a failed read must not leave a commit running
    // while the worker restarts the partition), with the first failure if any.
    this.done = Promise.allSettled([this.readLoop, this.commitLoop]).then((results) => {
      this.release(this.held);
      this.budget.unregister();
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    // The caller observes failures through `done`; avoid unhandled rejections meanwhile.
    this.done.catch(() => undefined);
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
    const cancelled = () => this.stopping || this.aborted;
    try {
      while (!cancelled()) {
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
          const it = await consumer.fetch({ max_messages: granted, expires: FETCH_EXPIRES_MS });
          this.fetching = it;
          if (cancelled()) it.stop();
          for await (const m of it) {
            if (cancelled()) break;
            received++;
            // Decode at once and keep no reference to the message: a JsMsg's payload is a view
            // of the socket's read buffer, which stays alive (off-heap, in RSS) while any view does.
            this.pending.push(this.decode(m));
            this.remotePending = m.info.pending;
            this.wake?.();
          }
        } finally {
          this.fetching = null;
          // Units pulled but never received go back; received ones are held until committed.
          this.release(granted - received);
        }
        if (received >= granted) this.fetchSize = Math.min(MAX_FETCH, this.fetchSize * 2);
        else if (received < granted / 2) this.fetchSize = Math.max(MIN_FETCH, this.fetchSize >> 1);
      }
    } finally {
      this.stopping = true;
      this.wake?.();
    }
  }

  private async commitForever(): Promise<void> {
    try {
      for (;;) {
        if (this.aborted) return;
        if (this.pending.length === 0) {
          if (this.stopping) return;
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = null;
          continue;
        }
        const batch = this.pending.splice(0, this.o.maxBatch);
        this.roomWaiter?.();
        this.inFlight = batch.length;
        await this.commitBatch(batch);
        this.inFlight = 0;
        this.release(batch.length);
      }
    } catch (err) {
      this.aborted = true;
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
    this.stopping = true;
    this.fetching?.stop();
    this.wake?.();
    this.roomWaiter?.();
    this.budget.wakeAll();
    this.o.cache.dropPartition(this.partition);
  }

  private decode(m: JsMsg): DecodedOp {
    const parsed = parseStoredSubject(m.subject);
    const data = m.data;
    return {
      valid: parsed !== null,
      seq: m.seq,
      type: parsed?.type ?? '',
      key: parsed?.key ?? '',
      op: parsed?.op ?? '',
      subject: m.subject,
      data: data.length === 0 ? EMPTY_PAYLOAD : new Uint8Array(data), // a copy (Buffer#slice would be a view)
      time: Math.floor(m.info.timestampNanos / 1e6),
      reply: m.headers?.get(REPLY_HEADER) || EMPTY_HEADERLESS,
    };
  }

  private async publishDeadLetters(items: Array<{ op: DecodedOp; error: ErrorBody }>): Promise<void> {
    const subjectOf = this.o.deadLetterSubject;
    if (!subjectOf) return;
    const { js } = this.o.topology;
    await Promise.all(
      items.map(({ op, error }) => {
        const h = headers();
        h.set(DeadLetterHeaders.Seq, String(op.seq));
        h.set(DeadLetterHeaders.Subject, op.subject.slice(op.subject.indexOf('.') + 1));
        h.set(DeadLetterHeaders.Code, error.code);
        h.set(DeadLetterHeaders.Message, error.message.replace(/[\r\n]+/g, ' ').slice(0, 1024));
        h.set(DeadLetterHeaders.Time, new Date(op.time).toISOString());
        return js.publish(subjectOf(op.type, op.key, op.op), op.data, { headers: h, msgID: `dlq-${this.o.streamName}-${op.seq}` });
      }),
    );
  }

  private learnNewKey(wasNew: boolean): void {
    this.newKeyRate += NEW_KEY_ALPHA * ((wasNew ? 1 : 0) - this.newKeyRate);
  }

  /**
   * Folds one key's operations (stream order) onto a copy of `base`: operations at or below
   * the record's seq are skipped (applied before a crash or hand-over), failures become
   * error results and dead letters.
   */
  private foldKey(base: CachedRecord, ops: readonly DecodedOp[]): KeyFold {
    const { actors, log, partition } = this.o;
    const rec: CachedRecord = { ...base };
    const f: KeyFold = { rec, dirty: false, errors: 0 };
    const debug = log.isLevelEnabled('debug');
    for (const op of ops) {
      if (op.seq <= rec.seq) continue; // applied before a crash or hand-over: never twice
      const def = actors.get(op.type);
      try {
        if (!def) throw new UnknownActorError(op.type);
        const current: unknown = rec.deleted ? def.initialState() : rec.state;
        if (op.op === DELETE_OPERATION) {
          if (!rec.deleted) {
            rec.state = undefined;
            rec.deleted = true;
            rec.seq = op.seq;
            f.dirty = true;
          }
          if (op.reply) (f.replies ??= []).push({ inbox: op.reply, body: { result: null, seq: op.seq } });
        } else {
          const input = decodePayload(op.data);
          const ctx: OperationContext = new OpContext(op.type, op.key, op.op, op.seq, op.time);
          const out = def.apply(current, op.op, input, ctx);
          if (rec.deleted || out.state !== current) {
            rec.state = out.state;
            rec.deleted = false;
            rec.seq = op.seq;
            f.dirty = true;
          }
          if (debug) {
            const state: unknown = rec.deleted ? null : rec.state;
            (f.effects ??= []).push(() => log.debug({ partition, type: op.type, key: op.key, op: op.op, seq: op.seq, state }, 'applied'));
          }
          if (op.reply) (f.replies ??= []).push({ inbox: op.reply, body: { result: out.result ?? null, seq: op.seq } });
        }
        (f.applied ??= []).push(opName(op.type, op.op));
      } catch (err) {
        f.errors++;
        const body = toErrorBody(err);
        (f.effects ??= []).push(() => {
          log.warn(
            { partition, type: op.type, key: op.key, op: op.op, seq: op.seq, code: body.code, err: err instanceof ActorError ? undefined : err },
            `operation failed: ${body.message}`,
          );
          this.o.hooks?.onOperationError?.({
            partition, type: op.type, key: op.key, op: op.op, seq: op.seq, error: body, subject: op.subject, payload: op.data,
          });
        });
        if (op.reply) (f.replies ??= []).push({ inbox: op.reply, body: { error: body, seq: op.seq } });
        (f.deadLetters ??= []).push({ op, error: body });
      }
    }
    return f;
  }

  private async load(keys: string[]): Promise<void> {
    const { cache, topology, partition } = this.o;
    await Promise.all(
      keys.map(async (k) => {
        const entry = await topology.state.get(k);
        let rec: CachedRecord;
        if (!entry || entry.operation !== 'PUT') {
          rec = { state: undefined, seq: 0, revision: entry?.revision ?? 0, deleted: true, partition };
        } else {
          const stored = decodeJson<StateRecord>(entry.value);
          // Epochs are lease revisions, which only grow: a newer owner wrote this record.
          if (stored && stored.epoch > this.epoch) {
            throw new FencedError(`partition ${partition}: record ${k} was written by a newer owner (epoch ${stored.epoch} > ${this.epoch})`);
          }
          rec = {
            state: stored?.state,
            seq: stored?.seq ?? 0,
            revision: entry.revision,
            deleted: !stored || stored.deleted === true,
            partition,
          };
        }
        cache.set(k, rec);
      }),
    );
  }

  private async commitBatch(batch: DecodedOp[]): Promise<void> {
    const started = performance.now();
    const { cache, log, partition, topology } = this.o;
    const ops: DecodedOp[] = [];
    for (const op of batch) {
      if (op.valid) ops.push(op);
      else log.warn({ partition, seq: op.seq, subject: op.subject }, 'skipping message with an unexpected subject');
    }
    // A subject from plain `nats pub` may carry a type or key that is no valid KV key
    // (`actors.counter.a%b.add`): it must become an error result, not a load that throws
    // and restarts the partition forever.
    const badNames = new Map<DecodedOp, ActorError>();
    for (const op of ops) {
      const err = nameError(op);
      if (err) badNames.set(op, err);
    }
    // Operations grouped per key in stream order; a bad name is an error result (no load).
    const groups = new Map<string, DecodedOp[]>();
    const replies: Array<{ inbox: string; body: OperationReply }> = [];
    const deadLetters: Array<{ op: DecodedOp; error: ErrorBody }> = [];
    const effects: Array<() => void> = [];
    const byOperation: Record<string, number> = {};
    let errors = 0;
    for (const op of ops) {
      const badName = badNames.get(op);
      if (badName) {
        errors++;
        const body = toErrorBody(badName);
        effects.push(() => {
          log.warn({ partition, type: op.type.slice(0, 130), key: op.key.slice(0, 130), op: op.op.slice(0, 130), seq: op.seq, code: body.code }, `operation failed: ${body.message}`);
          this.o.hooks?.onOperationError?.({
            partition, type: op.type, key: op.key, op: op.op, seq: op.seq, error: body, subject: op.subject, payload: op.data,
          });
        });
        if (op.reply) replies.push({ inbox: op.reply, body: { error: body, seq: op.seq } });
        deadLetters.push({ op, error: body });
        continue;
      }
      const k = stateKey(op.type, op.key);
      const group = groups.get(k);
      if (group) group.push(op);
      else groups.set(k, [op]);
    }

    // Records not in the cache: read them, or, while most such keys turn out to be new
    // (a fresh keyspace), guess "new" and let the create's CAS check the guess: a key that
    // exists fails it (10071), is read and folded again. Saves a read per new key.
    const guessed = new Set<string>();
    const missing: string[] = [];
    for (const k of groups.keys()) if (!cache.get(k)) missing.push(k);
    if (missing.length > 0) {
      if (this.newKeyRate >= 0.5) for (const k of missing) guessed.add(k);
      else {
        await this.load(missing);
        for (const k of missing) this.learnNewKey(cache.get(k)?.revision === 0);
      }
    }
    const folds = new Map<string, KeyFold>();
    const refold = (k: string) => {
      const base = cache.get(k);
      if (!base) throw new Error(`record ${k} missing after load`);
      folds.set(k, this.foldKey(base, groups.get(k) ?? []));
    };
    for (const [k, group] of groups) {
      if (guessed.has(k)) folds.set(k, this.foldKey(newRecord(partition), group));
      else refold(k);
    }
    // Only a write checks a guess: a guessed key that writes nothing (a delete, an error)
    // is read now.
    const unchecked = [...guessed].filter((k) => !folds.get(k)?.dirty);
    if (unchecked.length > 0) {
      await this.load(unchecked);
      for (const k of unchecked) {
        guessed.delete(k);
        this.learnNewKey(cache.get(k)?.revision === 0);
        refold(k);
      }
    }

    if (this.aborted) return;
    if (!this.o.leaseValid()) throw new FencedError(`partition ${partition}: lease not held, refusing to write`);
    const now = new Date().toISOString();
    const write = async (k: string): Promise<boolean> => {
      const f = folds.get(k) as KeyFold;
      const rec = f.rec;
      const record: StateRecord = rec.deleted
        ? { state: null, seq: rec.seq, epoch: this.epoch, updatedAt: now, deleted: true }
        : { state: rec.state, seq: rec.seq, epoch: this.epoch, updatedAt: now };
      try {
        // Revision 0 is a create: the CAS fails if the key has any entry at all.
        const ack = await this.publisher.publish(kvWriteSubject(topology.state, k), encodeJson(record), {
          expectedLastSubjectSequence: rec.revision,
        });
        rec.revision = ack.seq;
        return true;
      } catch (err) {
        if (guessed.has(k) && isWrongLastSequence(err)) return false; // the guess was wrong
        throw conflictOr(err, `partition ${partition}: record ${k} was written by someone else`);
      }
    };
    const writeAll = async (keys: string[]): Promise<string[]> => {
      const settled = await Promise.allSettled(keys.map(write));
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        this.o.cache.dropPartition(partition);
        throw failed.reason;
      }
      return keys.filter((_, i) => (settled[i] as PromiseFulfilledResult<boolean>).value === false);
    };
    const existed = await writeAll([...folds].filter(([, f]) => f.dirty).map(([k]) => k));
    for (const k of guessed) this.learnNewKey(!existed.includes(k));
    if (existed.length > 0) {
      await this.load(existed);
      for (const k of existed) {
        guessed.delete(k);
        refold(k);
      }
      if (this.aborted) return;
      if (!this.o.leaseValid()) throw new FencedError(`partition ${partition}: lease not held, refusing to write`);
      await writeAll(existed.filter((k) => folds.get(k)?.dirty));
    }
    let dirtyCount = 0;
    for (const [k, f] of folds) {
      if (f.dirty) {
        dirtyCount++;
        cache.set(k, f.rec);
      }
      if (f.replies) replies.push(...f.replies);
      if (f.deadLetters) deadLetters.push(...f.deadLetters);
      if (f.effects) effects.push(...f.effects);
      errors += f.errors;
      if (f.applied) for (const name of f.applied) byOperation[name] = (byOperation[name] ?? 0) + 1;
    }
    // Logs and hooks of the operations, once their fold is final (a wrong guess folds twice).
    for (const e of effects) e();

    // Dead letters are stored before the checkpoint moves past them; a replay publishes
    // them again and the stream's duplicate window (msg id per seq) drops the copy.
    if (deadLetters.length > 0 && this.o.deadLetterSubject) await this.publishDeadLetters(deadLetters);

    const last = batch[batch.length - 1];
    if (last && last.seq > this.checkpointSeq) {
      if (this.aborted) return;
      if (!this.o.leaseValid()) throw new FencedError(`partition ${partition}: lease not held, refusing to checkpoint`);
      const ck: Checkpoint = { seq: last.seq, epoch: this.epoch, updatedAt: now };
      try {
        const ack = await this.publisher.publish(kvWriteSubject(topology.control, controlKeys.checkpoint(partition)), encodeJson(ck), {
          expectedLastSubjectSequence: this.checkpointRev,
        });
        this.checkpointRev = ack.seq;
      } catch (err) {
        throw conflictOr(err, `partition ${partition}: checkpoint was written by someone else`);
      }
      this.checkpointSeq = last.seq;
    }
    for (const r of replies) this.o.nc.publish(r.inbox, encodeJson(r.body));
    const commitMs = performance.now() - started;
    this.o.hooks?.onCommit?.({ partition, ops: ops.length, keys: dirtyCount, errors, commitMs, checkpoint: this.checkpointSeq, byOperation });
    // Info for big or slow commits; every commit at debug (a busy worker commits hundreds per second).
    const level = ops.length >= 1000 || commitMs > 1000 ? 'info' : 'debug';
    if (log.isLevelEnabled(level)) {
      log[level]({ partition, ops: ops.length, keys: dirtyCount, errors, commitMs: Math.round(commitMs), checkpoint: this.checkpointSeq }, 'committed');
    }
  }
}

const dec = new TextDecoder();


/** Short ASCII payloads (`3`, `{"value":3}`) skip TextDecoder, whose per-call cost dominates for them. */
const SHORT_PAYLOAD = 64;

function payloadText(data: Uint8Array): string {
  if (data.length <= SHORT_PAYLOAD) {
    let ascii = true;
    for (let i = 0; i < data.length; i++) {
      if ((data[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, data as unknown as number[]);
  }
  return dec.decode(data);
}

/** Parses an operation payload: empty is `undefined`, anything else must be JSON. */
export function decodePayload(data: Uint8Array): unknown {
  if (data.length === 0) return undefined;
  const text = payloadText(data).trim();
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidInputError(`payload is not valid JSON: ${text.length > 64 ? `${text.slice(0, 64)}…` : text}`);
  }
}

/** The error of an operation whose type, key or op is not a valid name, or undefined. */
function nameError(op: DecodedOp): ActorError | undefined {
  try {
    validateName('type', op.type);
    validateName('key', op.key);
    validateName('op', op.op);
    return undefined;
  } catch (err) {
    return err instanceof ActorError ? err : new InvalidInputError(String(err));
  }
}

/** True for the error of a CAS publish that lost: wrong last (subject) sequence, 10071. */
function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}

function conflictOr(err: unknown, message: string): unknown {
  if (isWrongLastSequence(err)) {
    return new FencedError(message, { cause: err });
  }
  return err;
}
