import { DeliverPolicy, jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { createInbox, headers, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { DELETE_OPERATION, type AnyActorDefinition } from '../definition/define-actor.js';
import { ActorError, ConfigError, ErrorCode, OperationFailedError, TimeoutError, UnknownActorError, UnknownOperationError } from '../errors.js';
import { defaultNames, operationSubject, partitionOf, stateKey, validateName, type ActorNames } from '../names.js';
import { DeadLetterHeaders, REPLY_HEADER, type OperationReply } from '../processing/partition-processor.js';
import { controlKeys, decodeJson, type Checkpoint, type LeaseRecord, type MemberRecord, type StateRecord } from '../store/records.js';
import { partitionsOfStream } from '../store/provision.js';

/** Options of {@link createActorClient}. */
export interface ActorClientOptions {
  /** Known actor definitions, for input validation and initial states. */
  actors?: readonly AnyActorDefinition[];
  /** Stream, subject and bucket names. */
  names?: Partial<ActorNames>;
  /** Default timeout of calls and `minSeq` reads, in ms. Default 5000. */
  timeoutMs?: number;
}

/** An actor's state as read from the state bucket. */
export interface ActorSnapshot {
  type: string;
  key: string;
  state: unknown;
  /** Stream sequence of the last operation applied; 0 if never written. */
  seq: number;
  /** KV revision of the record; 0 if never written. */
  revision: number;
  /** False when the actor was never written or was deleted. */
  exists: boolean;
}

/** Result of a signal: the operation's stream sequence. */
export interface SignalResult {
  seq: number;
  /** True when the idempotency key was seen before; `seq` is the original's. */
  duplicate: boolean;
}

/** Result of a call: the operation's result once its state is committed. */
export interface CallResult {
  result: unknown;
  seq: number;
  /**
   * True when the idempotency key was seen before: `seq` is the original operation's,
   * which is applied, and `result` is null (the original result is not kept).
   */
  duplicate?: boolean;
}

/** Ownership and progress of the partitions, as the control bucket shows it. */
export interface ClusterStatus {
  members: Array<{ id: string; partitions: number[]; host?: string; pid?: number; startedAt?: string }>;
  partitions: Array<{ partition: number; owner: string | null; checkpoint: number; lag: number | null }>;
}

/** A failed operation kept in the dead-letter stream. */
export interface DeadLetter {
  /** Sequence in the dead-letter stream (the id to resubmit). */
  dlqSeq: number;
  /** Sequence of the failed operation in the operations stream. */
  seq: number;
  /** The operation's subject, `actors.<type>.<key>.<op>`. */
  subject: string;
  type: string;
  key: string;
  op: string;
  /** Error code and message of the failure. */
  code: string;
  message: string;
  /** The original payload, as text. */
  payload: string;
  /** When the operation was stored, ISO 8601. */
  time: string;
}

/** The client side: signal, call, read and list actors. */
export interface ActorClient {
  /** The definition registered for `type`, if any. */
  definition(type: string): AnyActorDefinition | undefined;
  /** Validates names and input; throws {@link InvalidNameError}, {@link UnknownActorError}, {@link UnknownOperationError}, {@link InvalidInputError}. */
  parseInput(type: string, op: string, raw: unknown): unknown;
  /** Publishes an operation to the stream; resolves with its sequence once stored. */
  signal(type: string, key: string, op: string, input?: unknown, opts?: { idempotencyKey?: string }): Promise<SignalResult>;
  /** Publishes an operation and awaits its result (after the state is committed). */
  call(type: string, key: string, op: string, input?: unknown, opts?: { idempotencyKey?: string; timeoutMs?: number }): Promise<CallResult>;
  /** Reads an actor's state; with `minSeq`, waits until the state includes that operation. */
  read(type: string, key: string, opts?: { minSeq?: number; timeoutMs?: number }): Promise<ActorSnapshot>;
  /** Lists actors of a type in key order, paged by `cursor` (the last key of the previous page). */
  list(type: string, opts?: { prefix?: string; limit?: number; cursor?: string }): Promise<{ items: ActorSnapshot[]; nextCursor: string | null }>;
  /** Deletes an actor's state, as an ordered operation. */
  delete(type: string, key: string, opts?: { idempotencyKey?: string }): Promise<SignalResult>;
  /** Members, partition owners, checkpoints and lag. */
  status(): Promise<ClusterStatus>;
  /** Dead letters in stream order, paged by `cursor` (the last `dlqSeq` of the previous page). */
  deadLetters(opts?: { limit?: number; cursor?: number }): Promise<{ items: DeadLetter[]; nextCursor: number | null }>;
  /** Publishes a dead letter's original operation again; resolves with its new sequence. */
  resubmit(dlqSeq: number): Promise<SignalResult>;
  /** Stops the reply subscription. Does not close the connection. */
  close(): void;
}

/** Creates an {@link ActorClient} on a NATS connection. */
export function createActorClient(nc: NatsConnection, opts: ActorClientOptions = {}): ActorClient {
  return new ActorClientImpl(nc, opts);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function deadLetterOf(dlqSeq: number, subject: string, h: MsgHdrs | undefined, data: Uint8Array, nanos: number): DeadLetter {
  const [, type = '', key = '', op = ''] = subject.split('.');
  return {
    dlqSeq,
    seq: Number(h?.get(DeadLetterHeaders.Seq) ?? 0),
    subject: h?.get(DeadLetterHeaders.Subject) ?? '',
    type,
    key,
    op,
    code: h?.get(DeadLetterHeaders.Code) ?? '',
    message: h?.get(DeadLetterHeaders.Message) ?? '',
    payload: dec.decode(data),
    time: h?.get(DeadLetterHeaders.Time) ?? new Date(Math.floor(nanos / 1e6)).toISOString(),
  };
}
/** Member records older than this are treated as crashed in status reports. */
const MEMBER_STALE_MS = 15_000;

class ActorClientImpl implements ActorClient {
  private readonly names: ActorNames;
  private readonly js: JetStreamClient;
  private readonly registry: Map<string, AnyActorDefinition>;
  private readonly timeoutMs: number;
  private stateKv: Promise<KV> | null = null;
  private controlKv: Promise<KV> | null = null;
  private replySub: Subscription | null = null;
  private readonly inboxPrefix: string;
  private nextId = 0;
  private readonly waiters = new Map<string, (reply: OperationReply) => void>();

  constructor(private readonly nc: NatsConnection, opts: ActorClientOptions) {
    this.names = defaultNames(opts.names);
    this.js = jetstream(nc);
    this.registry = new Map((opts.actors ?? []).map((a) => [a.type, a]));
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.inboxPrefix = createInbox();
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

  async signal(type: string, key: string, op: string, input?: unknown, opts: { idempotencyKey?: string } = {}): Promise<SignalResult> {
    validateName('key', key);
    if (this.registry.size > 0) this.parseInput(type, op, input);
    else {
      validateName('type', type);
      validateName('op', op);
    }
    const ack = await this.js.publish(operationSubject(this.names, type, key, op), this.payload(input), {
      ...(opts.idempotencyKey ? { msgID: `${type}.${key}.${opts.idempotencyKey}` } : {}),
    });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  private ensureReplies(): void {
    if (this.replySub) return;
    this.replySub = this.nc.subscribe(`${this.inboxPrefix}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const waiter = this.waiters.get(msg.subject);
        if (!waiter) return;
        try {
          waiter(msg.json<OperationReply>());
        } catch {
          // A malformed reply is ignored; the call times out.
        }
      },
    });
  }

  async call(type: string, key: string, op: string, input?: unknown, opts: { idempotencyKey?: string; timeoutMs?: number } = {}): Promise<CallResult> {
    validateName('key', key);
    if (this.registry.size > 0) this.parseInput(type, op, input);
    this.ensureReplies();
    const inbox = `${this.inboxPrefix}.${++this.nextId}`;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const replied = new Promise<OperationReply>((resolve, reject) => {
      this.waiters.set(inbox, resolve);
      timer = setTimeout(() => reject(new TimeoutError(`no result for ${type}/${key}/${op} within ${timeoutMs} ms`)), timeoutMs);
    });
    replied.catch(() => undefined);
    try {
      const h = headers();
      h.set(REPLY_HEADER, inbox);
      const ack = await this.js.publish(operationSubject(this.names, type, key, op), this.payload(input), {
        headers: h,
        timeout: timeoutMs,
        ...(opts.idempotencyKey ? { msgID: `${type}.${key}.${opts.idempotencyKey}` } : {}),
      });
      if (ack.duplicate) {
        // A retry of an operation the stream already holds: no new reply will come and
        // the original result is not kept. Answer once the original is applied.
        await this.read(type, key, { minSeq: ack.seq, timeoutMs });
        return { result: null, seq: ack.seq, duplicate: true };
      }
      const reply = await replied;
      if ('error' in reply) throw new OperationFailedError(reply.error.code, reply.error.message, reply.seq);
      return { result: reply.result, seq: reply.seq };
    } finally {
      clearTimeout(timer);
      this.waiters.delete(inbox);
    }
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
    const def = this.registry.get(type);
    const initial: unknown = def ? def.initialState() : null;
    if (!entry || entry.operation !== 'PUT') return { type, key, state: initial, seq: 0, revision: entry?.revision ?? 0, exists: false };
    const rec = decodeJson<StateRecord>(entry.value);
    if (!rec) return { type, key, state: initial, seq: 0, revision: entry.revision, exists: false };
    return {
      type,
      key,
      state: rec.deleted ? initial : rec.state,
      seq: rec.seq,
      revision: entry.revision,
      exists: rec.deleted !== true,
    };
  }

  async read(type: string, key: string, opts: { minSeq?: number; timeoutMs?: number } = {}): Promise<ActorSnapshot> {
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
    const ckKey = controlKeys.checkpoint(partitionOf(type, key, partitions));
    let delay = 2;
    for (;;) {
      const snap = this.snapshot(type, key, await kv.get(k));
      if (snap.seq >= minSeq) return snap;
      const ck = await control.get(ckKey);
      const ckSeq = ck && ck.operation === 'PUT' ? (decodeJson<Checkpoint>(ck.value)?.seq ?? 0) : 0;
      if (ckSeq >= minSeq) return this.snapshot(type, key, await kv.get(k));
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
    const jsm = await this.js.jetstreamManager();
    const info = await jsm.streams.info(this.names.stream);
    const p = partitionsOfStream(info.config);
    if (!p) throw new ConfigError(`stream ${this.names.stream} has no partition transform`);
    this.partitionsCached = p;
    return p;
  }

  async list(type: string, opts: { prefix?: string; limit?: number; cursor?: string } = {}): Promise<{ items: ActorSnapshot[]; nextCursor: string | null }> {
    validateName('type', type);
    const limit = Math.max(1, Math.min(1000, opts.limit ?? 100));
    const kv = await this.state();
    const keys: string[] = [];
    const iter = await kv.keys(`${type}.>`);
    for await (const k of iter) {
      const actorKey = k.slice(type.length + 1);
      if (opts.prefix && !actorKey.startsWith(opts.prefix)) continue;
      if (opts.cursor && actorKey <= opts.cursor) continue;
      keys.push(actorKey);
    }
    keys.sort();
    const items: ActorSnapshot[] = [];
    let i = 0;
    // Deleted actors (tombstones) are skipped, so read until the page is full.
    for (; i < keys.length && items.length < limit; i++) {
      const key = keys[i] as string;
      const snap = this.snapshot(type, key, await kv.get(stateKey(type, key)));
      if (snap.exists) items.push(snap);
    }
    const nextCursor = i < keys.length && items.length > 0 ? (items[items.length - 1] as ActorSnapshot).key : null;
    return { items, nextCursor };
  }

  delete(type: string, key: string, opts: { idempotencyKey?: string } = {}): Promise<SignalResult> {
    return this.signal(type, key, DELETE_OPERATION, undefined, opts);
  }

  async status(): Promise<ClusterStatus> {
    const control = await this.control();
    const partitions = await this.partitionCount();
    const members: ClusterStatus['members'] = [];
    const lagByPartition = new Map<number, number>();
    const owners = new Map<number, string>();
    const checkpoints = new Map<number, number>();
    const keys: string[] = [];
    for await (const k of await control.keys(['members.>', 'leases.>', 'checkpoints.>'])) keys.push(k);
    const entries = await Promise.all(keys.map((k) => control.get(k)));
    for (const e of entries) {
      if (!e || e.operation !== 'PUT') continue;
      if (e.key.startsWith('members.')) {
        const m = decodeJson<MemberRecord>(e.value);
        // A member that stopped heartbeating long ago crashed; its record is ignored.
        if (m && Date.now() - e.created.getTime() < MEMBER_STALE_MS) {
          members.push({ id: m.id, partitions: m.partitions, host: m.host, pid: m.pid, startedAt: m.startedAt });
          for (const [p, lag] of Object.entries(m.lag)) lagByPartition.set(Number(p), lag);
        }
      } else if (e.key.startsWith('leases.')) {
        const l = decodeJson<LeaseRecord>(e.value);
        if (l) owners.set(Number(e.key.slice('leases.'.length)), l.owner);
      } else if (e.key.startsWith('checkpoints.')) {
        const c = decodeJson<Checkpoint>(e.value);
        if (c) checkpoints.set(Number(e.key.slice('checkpoints.'.length)), c.seq);
      }
    }
    members.sort((a, b) => a.id.localeCompare(b.id));
    return {
      members,
      partitions: Array.from({ length: partitions }, (_, p) => ({
        partition: p,
        owner: owners.get(p) ?? null,
        checkpoint: checkpoints.get(p) ?? 0,
        lag: lagByPartition.get(p) ?? null,
      })),
    };
  }

  async deadLetters(opts: { limit?: number; cursor?: number } = {}): Promise<{ items: DeadLetter[]; nextCursor: number | null }> {
    const limit = Math.max(1, Math.min(1000, opts.limit ?? 100));
    const jsm = await this.js.jetstreamManager();
    const info = await jsm.streams.info(this.names.dlqStream);
    const last = info.state.last_seq;
    const from = Math.max((opts.cursor ?? 0) + 1, info.state.first_seq);
    const items: DeadLetter[] = [];
    if (info.state.messages === 0 || from > last) return { items, nextCursor: null };
    const consumer = await this.js.consumers.get(this.names.dlqStream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
    });
    const batch = await consumer.fetch({ max_messages: limit, expires: 2000 });
    for await (const m of batch) {
      items.push(deadLetterOf(m.seq, m.subject, m.headers, m.data, m.info.timestampNanos));
      if (items.length >= limit || m.seq >= last) break;
    }
    const tail = items[items.length - 1];
    return { items, nextCursor: tail && tail.dlqSeq < last ? tail.dlqSeq : null };
  }

  async resubmit(dlqSeq: number): Promise<SignalResult> {
    const jsm = await this.js.jetstreamManager();
    const m = await jsm.streams.getMessage(this.names.dlqStream, { seq: dlqSeq });
    if (!m) throw new ActorError(ErrorCode.NotFound, `no dead letter ${dlqSeq}`);
    const subject = m.header.get(DeadLetterHeaders.Subject);
    if (!subject) throw new ActorError(ErrorCode.NotFound, `dead letter ${dlqSeq} has no subject`);
    const ack = await this.js.publish(subject, m.data, { msgID: `resubmit-${this.names.dlqStream}-${dlqSeq}` });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  close(): void {
    this.replySub?.unsubscribe();
    this.replySub = null;
  }
}
