import { jetstream, type JetStreamClient, type JetStreamManager, type JetStreamPublishOptions, type PubAck } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { DELETE_OPERATION, type AnyActorDefinition } from '../definition/define-actor.js';
import { ErrorCode, OperationFailedError, TimeoutError, UnknownActorError, UnknownOperationError, defaultNames, operationSubject, validateName, type ActorNames, REPLY_HEADER, type DeadLetter } from '../protocol/index.js';
import { assertSameOperation, ClientMsgIds, OutcomeReader } from './idempotency.js';
import { listActors, type ListOptions, type ListPage } from './list-actors.js';
import { ReplyInbox } from './reply-inbox.js';
import { timerMethods, type TimerClient } from './timers.js';
import { readClusterStatus, removeService, type ClusterStatus } from './cluster-status.js';
import { deadLetterPage, resubmission } from './dead-letter-pages.js';
import { publishToStream, streamPartitions } from './stream-publish.js';
import type { ActorClientOptions, ActorSnapshot, SignalResult, CallResult, PublishOperation } from './results.js';
import type { ActorClient } from './actor-client-api.js';
import { migratedSnapshot, readSnapshot, snapshotOf } from './snapshots.js';

export type { ActorClient } from './actor-client-api.js';
export type { ActorClientOptions, ActorSnapshot, SignalResult, CallResult, PublishOperation } from './results.js';

const enc = new TextEncoder();

/** Creates an {@link ActorClient} on a NATS connection. */
export function createActorClient(nc: NatsConnection, opts: ActorClientOptions = {}): ActorClient {
  return new ActorClientImpl(nc, opts);
}

/** Code of the error {@link ActorClient.resubmit} throws for a dead letter whose stored subject is no operation subject. */
export const INVALID_DEAD_LETTER = ErrorCode.InvalidDeadLetter;

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
  private publish(subject: string, data: Uint8Array, opts: Partial<JetStreamPublishOptions>): Promise<PubAck> {
    return publishToStream(this.js, subject, data, opts);
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

  /** Reads the stored record (migrated by this client's definition when it has one), once it holds `minSeq`. */
  private async readStored(type: string, key: string, opts: { minSeq?: number; timeoutMs?: number }): Promise<ActorSnapshot> {
    validateName('type', type);
    validateName('key', key);
    const source = { kv: await this.state(), control: () => this.control(), partitions: () => this.partitionCount(), def: this.registry.get(type) };
    return readSnapshot(source, type, key, opts.minSeq ?? 0, opts.timeoutMs ?? this.timeoutMs);
  }

  private partitionsCached: number | null = null;
  private async partitionCount(): Promise<number> {
    return (this.partitionsCached ??= await streamPartitions(await this.jsm(), this.names.stream));
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
    const r = await resubmission(await this.jsm(), this.names, dlqSeq);
    const ack = await this.publish(r.subject, r.data, { msgID: await this.msgIds.resubmit(this.names.dlqStream, dlqSeq), headers: r.headers });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  close(): void {
    this.replies.close();
  }
}

