import { JetStreamApiError, jetstream, type JetStreamClient, type JetStreamManager, type JetStreamPublishOptions, type PubAck } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { DELETE_OPERATION, type AnyActorDefinition } from '../definition/define-actor.js';
import { ActorError, ConfigError, ErrorCode, OperationFailedError, TimeoutError, UnknownActorError, UnknownOperationError, defaultNames, operationSubject, parseOperationSubject, partitionOf, stateKey, TimerHeaders, validateName, type ActorNames, DeadLetterHeaders, REPLY_HEADER, RESUBMITTED_HEADER, type DeadLetter } from '../protocol/index.js';
import { partitionsOfStream } from '../store/provision.js';
import { assertSameOperation, ClientMsgIds, OutcomeReader } from './idempotency.js';
import { listActors, type ListOptions, type ListPage } from './list-actors.js';
import { ReplyInbox } from './reply-inbox.js';
import { timerMethods, type TimerClient } from './timers.js';
import { checkpointKeysOf, passedBy, readClusterStatus, removeService, type ClusterStatus } from './cluster-status.js';
import { deadLetterPage } from './dead-letter-pages.js';
import type { ActorClientOptions, ActorSnapshot, SignalResult, CallResult, PublishOperation } from './results.js';

const enc = new TextEncoder();

import type { ActorClient } from './actor-client-api.js';
import { migratedSnapshot, snapshotOf } from './snapshots.js';

export type { ActorClient } from './actor-client-api.js';
export type { ActorClientOptions, ActorSnapshot, SignalResult, CallResult, PublishOperation } from './results.js';


/** Creates an {@link ActorClient} on a NATS connection. */
export function createActorClient(nc: NatsConnection, opts: ActorClientOptions = {}): ActorClient {
  return new ActorClientImpl(nc, opts);
}

/** Code of the error {@link ActorClient.resubmit} throws for a dead letter whose stored subject is no operation subject. */
export const INVALID_DEAD_LETTER = ErrorCode.InvalidDeadLetter;

/** JetStream's "storing the message failed" (`JSStreamStoreFailedF`): with `discard: new`, the byte or message bound is reached. */
const JS_STREAM_STORE_FAILED = 10077;

class ActorClientImpl implements ActorClient {
  private readonly names: ActorNames;
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly registry: Map<string, AnyActorDefinition>;
  private readonly timeoutMs: number;
  private readonly serviceInactiveMs: number;
  private stateKv: Promise<KV> | null = null;
  private controlKv: Promise<KV> | null = null;
  private manager: Promise<JetStreamManager> | null = null;
  private readonly replies: ReplyInbox;
  private readonly outcomes: OutcomeReader;
  private readonly msgIds = new ClientMsgIds(() => this.control());
  readonly schedule: TimerClient['schedule'];
  readonly timers: TimerClient['timers'];
  readonly cancelTimer: TimerClient['cancelTimer'];

  constructor(nc: NatsConnection, opts: ActorClientOptions) {
    this.names = defaultNames(opts.names);
    this.nc = nc;
    this.js = jetstream(nc);
    this.registry = new Map((opts.actors ?? []).map((a) => [a.type, a]));
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.serviceInactiveMs = opts.serviceInactiveMs ?? 3_600_000;
    this.replies = new ReplyInbox(nc, this.names.inboxPrefix);
    this.outcomes = new OutcomeReader(this.js, this.names);
    ({ schedule: this.schedule, timers: this.timers, cancelTimer: this.cancelTimer } = timerMethods({
      names: this.names,
      validate: (type, key, op, input) => this.validate(type, key, op, input),
      publish: (o) => this.publishOperation(o),
      call: (o) => this.awaitResult(o),
      settle: (type, key, minSeq, timeoutMs) => this.read(type, key, { minSeq, timeoutMs }),
      jsm: () => this.jsm(),
      state: () => this.state(),
    }));
  }

  definition(type: string): AnyActorDefinition | undefined {
    return this.registry.get(type);
  }

  parseInput(type: string, op: string, raw: unknown): unknown {
    validateName('type', type);
    validateName('op', op);
    const def = this.registry.get(type);
    if (!def) throw new UnknownActorError(type);
    if (!def.hasOperation(op)) throw new UnknownOperationError(type, op);
    return def.parseInput(op, raw);
  }

  private payload(input: unknown): Uint8Array {
    return input === undefined ? new Uint8Array(0) : enc.encode(JSON.stringify(input));
  }

  private validate(type: string, key: string, op: string, input: unknown): void {
    validateName('key', key);
    if (this.registry.size > 0) this.parseInput(type, op, input);
    else {
      validateName('type', type);
      validateName('op', op);
    }
  }

  private jsm(): Promise<JetStreamManager> {
    this.manager ??= this.js.jetstreamManager().catch((err: unknown) => {
      this.manager = null;
      throw err;
    });
    return this.manager;
  }

  /** Publishes to the operations stream; a stream at its bound is {@link ErrorCode.StreamFull}. */
  private async publish(subject: string, data: Uint8Array, opts: Partial<JetStreamPublishOptions>): Promise<PubAck> {
    try {
      return await this.js.publish(subject, data, opts);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JS_STREAM_STORE_FAILED) {
        throw new ActorError(
          ErrorCode.StreamFull,
          `the operations stream is full (${err.message}): operations are refused until the workers catch up; retry later`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * Publishes one operation. A duplicate ack (same idempotency key within the duplicate window)
   * is checked against the original: another operation or input is {@link ErrorCode.IdempotencyKeyReused}.
   */
  private async publishOperation(o: PublishOperation): Promise<PubAck> {
    const msgID = o.idempotencyKey ? await this.msgIds.idempotent(o.type, o.key, o.idempotencyKey) : undefined;
    const ack = await this.publish(operationSubject(this.names, o.type, o.key, o.op), this.payload(o.input), {
      ...(o.headers ? { headers: o.headers } : {}),
      ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}),
      ...(msgID ? { msgID } : {}),
    });
    if (ack.duplicate && o.idempotencyKey) {
      await assertSameOperation(await this.jsm(), this.names, ack.seq, { ...o, idempotencyKey: o.idempotencyKey });
    }
    return ack;
  }

  async signal(type: string, key: string, op: string, input?: unknown, opts: { idempotencyKey?: string } = {}): Promise<SignalResult> {
    this.validate(type, key, op, input);
    const ack = await this.publishOperation({ type, key, op, input, idempotencyKey: opts.idempotencyKey });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  async call(type: string, key: string, op: string, input?: unknown, opts: { idempotencyKey?: string; timeoutMs?: number } = {}): Promise<CallResult> {
    this.validate(type, key, op, input);
    return this.awaitResult({ type, key, op, input, idempotencyKey: opts.idempotencyKey, timeoutMs: opts.timeoutMs });
  }

  /** Publishes a validated operation with a reply inbox and awaits its result. */
  private async awaitResult(o: PublishOperation): Promise<CallResult> {
    const { type, key, op } = o;
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    const startedAt = performance.now();
    const pending = this.replies.open();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`no result for ${type}/${key}/${op} within ${timeoutMs} ms`)), timeoutMs);
    });
    expired.catch(() => undefined);
    try {
      const h = headers();
      h.set(REPLY_HEADER, pending.inbox);
      const ack = await this.publishOperation({ ...o, headers: h, timeoutMs });
      if (ack.duplicate) {
        // A retry of an operation the stream already holds: no new reply comes. Answer what
        // the original answered, once it is applied.
        const left = Math.max(1, timeoutMs - (performance.now() - startedAt));
        return await Promise.race([this.duplicateOutcome(type, key, ack.seq, left), expired]);
      }
      const reply = await Promise.race([pending.reply(ack.seq), expired]);
      if ('error' in reply) throw new OperationFailedError(reply.error.code, reply.error.message, reply.seq);
      return { result: reply.result, seq: reply.seq };
    } finally {
      clearTimeout(timer);
      pending.cancel();
    }
  }

  /** The outcome of an applied original: its result or its error, or `result: null` when it is no longer kept. */
  private async duplicateOutcome(type: string, key: string, seq: number, timeoutMs: number): Promise<CallResult> {
    await this.read(type, key, { minSeq: seq, timeoutMs });
    const outcome = await this.outcomes.get(seq);
    if (outcome && 'error' in outcome) throw new OperationFailedError(outcome.error.code, outcome.error.message, seq);
    return { result: outcome ? outcome.result : null, seq, duplicate: true };
  }

  private state(): Promise<KV> {
    this.stateKv ??= new Kvm(this.js).open(this.names.stateBucket).catch((err: unknown) => {
      this.stateKv = null;
      throw err;
    });
    return this.stateKv;
  }

  private control(): Promise<KV> {
    this.controlKv ??= new Kvm(this.js).open(this.names.controlBucket).catch((err: unknown) => {
      this.controlKv = null;
      throw err;
    });
    return this.controlKv;
  }

  private snapshot(type: string, key: string, entry: KvEntry | null): ActorSnapshot {
    return snapshotOf(this.registry.get(type), type, key, entry);
  }

  async read(type: string, key: string, opts: { minSeq?: number; timeoutMs?: number; version?: number } = {}): Promise<ActorSnapshot> {
    return this.migrated(await this.readStored(type, key, opts), opts);
  }

  /** `snap` in the shape of the newest version known (see {@link migratedSnapshot}). */
  private migrated(snap: ActorSnapshot, opts: { timeoutMs?: number; version?: number }): Promise<ActorSnapshot> {
    return migratedSnapshot(this.nc, this.names, this.registry.get(snap.type), snap, { ...opts, timeoutMs: opts.timeoutMs ?? this.timeoutMs });
  }

  /** Reads the stored record (migrated by this client's definition when it has one). */
  private async readStored(type: string, key: string, opts: { minSeq?: number; timeoutMs?: number }): Promise<ActorSnapshot> {
    validateName('type', type);
    validateName('key', key);
    const kv = await this.state();
    const k = stateKey(type, key);
    const first = this.snapshot(type, key, await kv.get(k));
    const minSeq = opts.minSeq ?? 0;
    if (first.seq >= minSeq) return first;
    // Not there yet: the key's record or its partition's checkpoint passing minSeq both mean
    // the operation is applied. Poll with a short backoff until the deadline.
    const deadline = performance.now() + (opts.timeoutMs ?? this.timeoutMs);
    const control = await this.control();
    const partitions = await this.partitionCount();
    const ckKeys = await checkpointKeysOf(control, type, partitionOf(type, key, partitions));
    let delay = 2;
    for (;;) {
      const snap = this.snapshot(type, key, await kv.get(k));
      if (snap.seq >= minSeq) return snap;
      if (await passedBy(control, ckKeys, type, minSeq)) return this.snapshot(type, key, await kv.get(k));
      if (performance.now() + delay > deadline) {
        throw new TimeoutError(`state of ${type}/${key} did not reach seq ${minSeq} in time (now ${snap.seq})`);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(50, delay * 2);
    }
  }

  private partitionsCached: number | null = null;
  private async partitionCount(): Promise<number> {
    if (this.partitionsCached) return this.partitionsCached;
    const jsm = await this.jsm();
    const info = await jsm.streams.info(this.names.stream);
    const p = partitionsOfStream(info.config);
    if (!p) throw new ConfigError(`stream ${this.names.stream} has no partition transform`);
    this.partitionsCached = p;
    return p;
  }

  async list(type: string, opts: ListOptions = {}): Promise<ListPage> {
    const page = await listActors(this.js, this.names, type, opts);
    const newest = this.registry.get(type)?.version ?? opts.version;
    // Records older than the newest version known are shown migrated, like a read's.
    if (newest === undefined || page.items.every((s) => (s.version ?? 1) >= newest)) return page;
    return { ...page, items: await Promise.all(page.items.map((s) => this.migrated(s, opts))) };
  }

  delete(type: string, key: string, opts: { idempotencyKey?: string } = {}): Promise<SignalResult> {
    return this.signal(type, key, DELETE_OPERATION, undefined, opts);
  }

  async removeService(id: string): Promise<{ removed: string; types: string[] }> {
    return removeService(await this.control(), await this.partitionCount(), id, () => this.status());
  }

  async status(): Promise<ClusterStatus> {
    return readClusterStatus(await this.control(), await this.partitionCount(), this.serviceInactiveMs);
  }

  async deadLetters(opts: { limit?: number; cursor?: number } = {}): Promise<{ items: DeadLetter[]; nextCursor: number | null }> {
    return deadLetterPage(this.js, await this.jsm(), this.names.dlqStream, opts);
  }

  async resubmit(dlqSeq: number): Promise<SignalResult> {
    const jsm = await this.jsm();
    const m = await jsm.streams.getMessage(this.names.dlqStream, { seq: dlqSeq });
    if (!m) throw new ActorError(ErrorCode.NotFound, `no dead letter ${dlqSeq}`);
    const stored = m.header.get(DeadLetterHeaders.Subject);
    // Published again with this client's credentials: only ever to a valid operation subject,
    // never to whatever a forged dead letter names (a bucket, the JetStream API).
    const target = stored ? parseOperationSubject(stored, this.names) : null;
    if (!target) {
      throw new ActorError(
        INVALID_DEAD_LETTER,
        `dead letter ${dlqSeq} names no valid operation subject (${this.names.subjectPrefix}.<type>.<key>.<op>); it cannot be resubmitted`,
      );
    }
    // A message that set a timer is resubmitted as the same request (its timer headers), so
    // the worker checks and sets the timer again instead of applying the operation at once.
    // It is marked resubmitted (from which dead letter): the worker's log and, should it fail
    // again, its new dead letter say so.
    const h = headers();
    h.set(RESUBMITTED_HEADER, String(dlqSeq));
    for (const name of Object.values(TimerHeaders)) {
      const value = m.header.get(name);
      if (value !== '') h.set(name, value);
    }
    const ack = await this.publish(operationSubject(this.names, target.type, target.key, target.op), m.data, {
      msgID: await this.msgIds.resubmit(this.names.dlqStream, dlqSeq),
      headers: h,
    });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  close(): void {
    this.replies.close();
  }
}

