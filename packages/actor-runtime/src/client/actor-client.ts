import { DeliverPolicy, JetStreamApiError, jetstream, type JetStreamClient, type JetStreamManager, type JetStreamPublishOptions, type PubAck } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { DELETE_OPERATION, type AnyActorDefinition } from '../definition/define-actor.js';
import { ActorError, ConfigError, ErrorCode, OperationFailedError, TimeoutError, UnknownActorError, UnknownOperationError } from '../errors.js';
import { defaultNames, operationSubject, parseOperationSubject, partitionOf, querySubject, stateKey, TimerHeaders, validateName, type ActorNames } from '../names.js';
import { decodeReply, QueryHeaders, STATE_QUERY, type QueryResult, type StateQueryResult } from '../queries/protocol.js';
import { DeadLetterHeaders, REPLY_HEADER, RESUBMITTED_HEADER } from '../processing/partition-processor.js';
import { controlKeys, decodeJson, parseUnitKey, versionOfRecord, type Checkpoint, type LaneRecord, type LeaseRecord, type MemberRecord, type StateRecord } from '../store/records.js';
import { typeKey } from '../host/registry.js';
import { partitionsOfStream } from '../store/provision.js';
import { assertSameOperation, ClientMsgIds, OutcomeReader } from './idempotency.js';
import { listActors, type ListOptions, type ListPage } from './list-actors.js';
import { ReplyInbox } from './reply-inbox.js';
import { timerMethods, type TimerClient } from './timers.js';

/** Options of {@link createActorClient}. */
export interface ActorClientOptions {
  /** Known actor definitions, for input validation and initial states. */
  actors?: readonly AnyActorDefinition[];
  /** Stream, subject and bucket names. */
  names?: Partial<ActorNames>;
  /** Default timeout of calls and `minSeq` reads, in ms. Default 5000. */
  timeoutMs?: number;
  /** A service none of whose workers has run for this long is shown `inactive` by {@link ActorClient.status}, in ms. Default 3600000 (1 hour). */
  serviceInactiveMs?: number;
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
  /**
   * The version of the actor definition whose shape `state` has, when above 1: the record's, or
   * the reader's definition's when the record was older and is shown migrated.
   */
  version?: number;
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
   * True when the idempotency key was seen before: `seq` is the original operation's, which
   * is applied, and `result` is the original's result (kept by the workers for the duplicate
   * window; null when it is no longer kept). An original that failed throws its error again.
   */
  duplicate?: boolean;
}

/** Ownership and progress of the partitions, as the control bucket shows it. */
export interface ClusterStatus {
  members: Array<{ id: string; partitions: number[]; host?: string; pid?: number; startedAt?: string; service?: string; types?: Record<string, number> }>;
  /** The partitions of the default service (or of the only one), as before services. */
  partitions: Array<{ partition: number; owner: string | null; checkpoint: number; lag: number | null }>;
  /**
   * Every registered service (lane): its types and versions, its live members, and its
   * partitions' owners and checkpoints. A service with no live member holds its types'
   * operations in the stream until one starts again (or an operator removes it).
   */
  services: Array<{
    id: string;
    types: Record<string, number>;
    registeredAt: string;
    /** When a worker of it last ran (about once a minute while one does). */
    seenAt?: string;
    live: boolean;
    /** No worker of it has run for the client's `serviceInactiveMs` (1 hour by default): retire it (removeService) unless it comes back. */
    inactive: boolean;
    members: string[];
    partitions: Array<{ partition: number; owner: string | null; checkpoint: number }>;
  }>;
  /** Partitions that wait at an operation their owner must not apply (a record a newer version wrote); absent when none. */
  blocked?: Array<NonNullable<Checkpoint['blocked']>>;
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
  /**
   * The timer headers of a message that set a timer and failed (`Jetactor-Timer-At` as `at`,
   * `-Delay-Ms` as `delayMs`, …, as they were sent): {@link ActorClient.resubmit} sends them
   * again, so the timer is asked for again. Absent for an operation applied at once, and for a
   * timer's firing (its dead letter is the operation it applied).
   */
  timer?: { id?: string; at?: string; delayMs?: string; everyMs?: string; cron?: string };
  /** Set when the operation was resubmitted from an earlier dead letter and failed again: that dead letter's `dlqSeq`. */
  resubmitted?: number;
}

/** {@link DeadLetter.timer}'s fields and the headers they come from. */
const DEAD_LETTER_TIMER = [
  ['id', TimerHeaders.Id],
  ['at', TimerHeaders.At],
  ['delayMs', TimerHeaders.DelayMs],
  ['everyMs', TimerHeaders.EveryMs],
  ['cron', TimerHeaders.Cron],
] as const;

/** The client side: signal, call, read and list actors; schedule, list and cancel timers. */
export interface ActorClient extends TimerClient {
  /** The definition registered for `type`, if any. */
  definition(type: string): AnyActorDefinition | undefined;
  /** Validates names and input; throws {@link InvalidNameError}, {@link UnknownActorError}, {@link UnknownOperationError}, {@link InvalidInputError}. */
  parseInput(type: string, op: string, raw: unknown): unknown;
  /**
   * Publishes an operation to the stream; resolves with its sequence once stored. Throws an
   * {@link ActorError} with code `STREAM_FULL` when the stream refuses it (byte bound reached),
   * and `IDEMPOTENCY_KEY_REUSED` when `idempotencyKey` was used for another operation or input.
   */
  signal(type: string, key: string, op: string, input?: unknown, opts?: { idempotencyKey?: string }): Promise<SignalResult>;
  /**
   * Publishes an operation and awaits its result (after the state is committed); the reply is
   * accepted only from the call's own inbox and with the operation's `seq`. Throws
   * {@link OperationFailedError} for an error result, and what {@link ActorClient.signal} throws.
   */
  call(type: string, key: string, op: string, input?: unknown, opts?: { idempotencyKey?: string; timeoutMs?: number }): Promise<CallResult>;
  /**
   * Reads an actor's state; with `minSeq`, waits until the state includes that operation. A
   * record an older version of the type wrote is shown migrated: by this client's definition
   * when it has one, else, when `version` (the newest version the caller knows registered) is
   * newer than the record's, by a worker hosting the type (the query service's `$state`).
   */
  read(type: string, key: string, opts?: { minSeq?: number; timeoutMs?: number; version?: number }): Promise<ActorSnapshot>;
  /**
   * Lists the live actors of a type in the order of their last update, paged by `cursor` (the
   * opaque `nextCursor` of the previous page). A page costs O(limit), whatever the number of
   * actors; an actor updated while you page may appear again on a later page, none is missed.
   * A page may hold fewer than `limit` items (a rare `prefix`) and still have a `nextCursor`.
   * Throws a `RangeError` for a malformed cursor.
   */
  list(type: string, opts?: ListOptions): Promise<ListPage>;
  /** Deletes an actor's state, as an ordered operation. */
  delete(type: string, key: string, opts?: { idempotencyKey?: string }): Promise<SignalResult>;
  /** Members, partition owners, checkpoints and lag. */
  status(): Promise<ClusterStatus>;
  /**
   * Removes a service (lane) nobody runs any more: its registration, leases and checkpoints,
   * and the registration of each type no other service hosts. From then on its operations no
   * longer hold the stream's retention, and operations of a type it alone hosted are dead
   * letters (`UNKNOWN_ACTOR`). Refused with `SERVICE_LIVE` while one of its workers is live,
   * `NOT_FOUND` for a service never registered. Resolves with the types unregistered.
   */
  removeService(id: string): Promise<{ removed: string; types: string[] }>;
  /** Dead letters in stream order, paged by `cursor` (the last `dlqSeq` of the previous page). */
  deadLetters(opts?: { limit?: number; cursor?: number }): Promise<{ items: DeadLetter[]; nextCursor: number | null }>;
  /**
   * Publishes a dead letter's original operation again; resolves with its new sequence. The
   * stored subject is used only if it is a valid operation subject; otherwise throws an
   * {@link ActorError} with code {@link INVALID_DEAD_LETTER}.
   */
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
  // The original subject names the actor; the dead letter's own subject does not when the
  // names were invalid (those are all kept under `<prefix>_dlq._invalid._._`).
  const original = h?.get(DeadLetterHeaders.Subject) ?? '';
  const tokens = original.split('.');
  const [, type = '', key = '', op = ''] = tokens.length === 4 ? tokens : subject.split('.');
  const resubmitted = Number(h?.get(DeadLetterHeaders.Resubmitted) || 0);
  let timer: DeadLetter['timer'];
  for (const [field, header] of DEAD_LETTER_TIMER) {
    const value = h?.get(header) ?? '';
    if (value !== '') (timer ??= {})[field] = value;
  }
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
    ...(timer ? { timer } : {}),
    ...(resubmitted > 0 ? { resubmitted } : {}),
  };
}
/** Member records older than this are treated as crashed in status reports. */
const MEMBER_STALE_MS = 15_000;
/** A dead-letter page's consumer left behind by a process that died mid-page is removed by the server after this, in ms. */
const DLQ_PAGE_INACTIVE_MS = 30_000;

/** Code of the error {@link ActorClient.resubmit} throws for a dead letter whose stored subject is no operation subject. */
export const INVALID_DEAD_LETTER = ErrorCode.InvalidDeadLetter;

/** JetStream's "storing the message failed" (`JSStreamStoreFailedF`): with `discard: new`, the byte or message bound is reached. */
const JS_STREAM_STORE_FAILED = 10077;

/** Options of one publish of an operation. */
export interface PublishOperation {
  type: string;
  key: string;
  op: string;
  input: unknown;
  idempotencyKey?: string;
  headers?: MsgHdrs;
  timeoutMs?: number;
}

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
    const def = this.registry.get(type);
    const initial: unknown = def ? def.initialState() : null;
    if (!entry || entry.operation !== 'PUT') return { type, key, state: initial, seq: 0, revision: entry?.revision ?? 0, exists: false };
    const rec = decodeJson<StateRecord>(entry.value);
    if (!rec) return { type, key, state: initial, seq: 0, revision: entry.revision, exists: false };
    const written = versionOfRecord(rec);
    // With the definition, an older record reads in its version's shape (never older than the code's).
    const migrate = def !== undefined && !rec.deleted && written < def.version;
    const version = migrate ? def.version : written;
    return {
      type,
      key,
      state: rec.deleted ? initial : migrate ? def.upgrade(rec.state, written) : rec.state,
      seq: rec.seq,
      revision: entry.revision,
      exists: rec.deleted !== true,
      ...(version > 1 ? { version } : {}),
    };
  }

  async read(type: string, key: string, opts: { minSeq?: number; timeoutMs?: number; version?: number } = {}): Promise<ActorSnapshot> {
    return this.migrated(await this.readStored(type, key, opts), opts);
  }

  /**
   * `snap` in the shape of the newest version known: migrated by this client's definition when
   * it has one, else, when older than `opts.version`, by a worker hosting the type.
   */
  private async migrated(snap: ActorSnapshot, opts: { timeoutMs?: number; version?: number }): Promise<ActorSnapshot> {
    const { type, key } = snap;
    const def = this.registry.get(type);
    const written = snap.version ?? 1;
    if (!snap.exists) return snap;
    if (def) return written < def.version ? { ...snap, state: def.upgrade(snap.state, written), version: def.version } : snap;
    if (opts.version === undefined || written >= opts.version) return snap;
    // Written by an older version, and this client has no code to migrate it: a worker hosting
    // the type reads it migrated (from this record or a newer one).
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const h = headers();
    h.set(QueryHeaders.MinSeq, String(snap.seq));
    h.set(QueryHeaders.TimeoutMs, String(timeoutMs));
    let answer: QueryResult;
    try {
      answer = decodeReply((await this.nc.request(querySubject(this.names, type, key, STATE_QUERY), new Uint8Array(0), { timeout: timeoutMs + 250, headers: h })).data);
    } catch (err) {
      if (err instanceof ActorError) throw err;
      throw new ActorError(
        ErrorCode.UnknownActor,
        `${type}/${key} was written by version ${written} of '${type}' and no worker hosting version ${opts.version} answered to read it migrated: ${String(err)}`,
        { cause: err },
      );
    }
    const current = answer.result as StateQueryResult;
    return { ...snap, state: current.state, seq: answer.seq, revision: current.revision, exists: current.exists, ...(current.version > 1 ? { version: current.version } : {}) };
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
    if (typeof id !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(id)) throw new ActorError(ErrorCode.InvalidInput, `not a service id: ${JSON.stringify(id)}`);
    const control = await this.control();
    const entry = await control.get(controlKeys.lane(id));
    const lane = entry && entry.operation === 'PUT' ? decodeJson<LaneRecord>(entry.value) : null;
    if (!lane) throw new ActorError(ErrorCode.NotFound, `no service ${id} is registered`);
    const status = await this.status();
    const live = status.members.filter((m) => m.service === id).map((m) => m.id);
    if (live.length > 0) throw new ActorError(ErrorCode.ServiceLive, `service ${id} has live workers (${live.join(', ')}); stop them first`);
    const partitions = await this.partitionCount();
    // The registration first: from here on no worker counts the service in retention.
    await control.delete(controlKeys.lane(id));
    for (let p = 0; p < partitions; p++) {
      await control.purge(controlKeys.checkpoint(p, id));
      await control.purge(controlKeys.lease(p, id));
    }
    const others = status.services.filter((s) => s.id !== id);
    const orphaned = Object.keys(lane.types ?? {}).filter((t) => !others.some((s) => Object.hasOwn(s.types, t)));
    for (const t of orphaned) await control.delete(typeKey(t));
    return { removed: id, types: orphaned };
  }

  async status(): Promise<ClusterStatus> {
    const control = await this.control();
    const partitions = await this.partitionCount();
    const members: ClusterStatus['members'] = [];
    const lagByPartition = new Map<number, number>();
    const owners = new Map<string, string>();
    const checkpoints = new Map<string, number>();
    const lanes: LaneRecord[] = [];
    const memberLane = new Map<string, string>();
    const unit = (prefix: string, k: string): string | null => {
      const u = parseUnitKey(prefix, k);
      return u ? `${u.lane ?? 'default'}/${u.partition}` : null;
    };
    const keys: string[] = [];
    for await (const k of await control.keys(['members.>', 'leases.>', 'checkpoints.>', 'lanes.>'])) keys.push(k);
    const entries = await Promise.all(keys.map((k) => control.get(k)));
    for (const e of entries) {
      if (!e || e.operation !== 'PUT') continue;
      if (e.key.startsWith('members.')) {
        const m = decodeJson<MemberRecord>(e.value);
        // A member that stopped heartbeating long ago crashed; its record is ignored.
        if (m && Date.now() - e.created.getTime() < MEMBER_STALE_MS) {
          members.push({ id: m.id, partitions: m.partitions, host: m.host, pid: m.pid, startedAt: m.startedAt, service: m.lane ?? 'default', types: m.types });
          memberLane.set(m.id, m.lane ?? 'default');
          for (const [p, lag] of Object.entries(m.lag)) lagByPartition.set(Number(p), lag);
        }
      } else if (e.key.startsWith('leases.')) {
        const l = decodeJson<LeaseRecord>(e.value);
        const u = unit('leases.', e.key);
        if (l && u) owners.set(u, l.owner);
      } else if (e.key.startsWith('checkpoints.')) {
        const c = decodeJson<Checkpoint>(e.value);
        const u = unit('checkpoints.', e.key);
        if (c && u) checkpoints.set(u, c.seq);
      } else if (e.key.startsWith('lanes.')) {
        const lane = decodeJson<LaneRecord>(e.value);
        if (lane && typeof lane.types === 'object') lanes.push({ ...lane, id: e.key.slice('lanes.'.length) });
      }
    }
    members.sort((a, b) => a.id.localeCompare(b.id));
    lanes.sort((a, b) => a.id.localeCompare(b.id));
    // The top-level partitions are the default service's, or the only service's.
    const main = lanes.length === 1 && !lanes.some((l) => l.id === 'default') ? (lanes[0] as LaneRecord).id : 'default';
    const partitionsOf = (lane: string) =>
      Array.from({ length: partitions }, (_, p) => ({ partition: p, owner: owners.get(`${lane}/${p}`) ?? null, checkpoint: checkpoints.get(`${lane}/${p}`) ?? 0 }));
    const blocked = blockedOf(entries);
    return {
      ...(blocked.length > 0 ? { blocked } : {}),
      members,
      partitions: partitionsOf(main).map((x) => ({ ...x, lag: lagByPartition.get(x.partition) ?? null })),
      services: lanes.map((l) => {
        const ids = members.filter((m) => memberLane.get(m.id) === l.id).map((m) => m.id);
        const seen = Date.parse(l.seenAt ?? l.registeredAt);
        const inactive = ids.length === 0 && (!Number.isFinite(seen) || Date.now() - seen > this.serviceInactiveMs);
        return { id: l.id, types: l.types, registeredAt: l.registeredAt, ...(l.seenAt ? { seenAt: l.seenAt } : {}), live: ids.length > 0, inactive, members: ids, partitions: partitionsOf(l.id) };
      }),
    };
  }

  async deadLetters(opts: { limit?: number; cursor?: number } = {}): Promise<{ items: DeadLetter[]; nextCursor: number | null }> {
    const limit = Math.max(1, Math.min(1000, opts.limit ?? 100));
    const jsm = await this.jsm();
    const info = await jsm.streams.info(this.names.dlqStream);
    const last = info.state.last_seq;
    const from = Math.max((opts.cursor ?? 0) + 1, info.state.first_seq);
    const items: DeadLetter[] = [];
    if (info.state.messages === 0 || from > last) return { items, nextCursor: null };
    // The page's consumer is deleted once read: left to the server's inactivity threshold
    // (5 minutes) every page kept one, and a client paging fast piled up thousands. The
    // threshold is only for a page abandoned mid-read (this process died).
    const consumer = await this.js.consumers.get(this.names.dlqStream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
      inactive_threshold: DLQ_PAGE_INACTIVE_MS,
    });
    try {
      const batch = await consumer.fetch({ max_messages: limit, expires: 2000 });
      for await (const m of batch) {
        items.push(deadLetterOf(m.seq, m.subject, m.headers, m.data, m.info.timestampNanos));
        if (items.length >= limit || m.seq >= last) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    const tail = items[items.length - 1];
    return { items, nextCursor: tail && tail.dlqSeq < last ? tail.dlqSeq : null };
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

/** The checkpoint keys of partition `p` in every lane that hosts `type` (and the default lane's). */
async function checkpointKeysOf(control: KV, type: string, p: number): Promise<string[]> {
  const keys = [controlKeys.checkpoint(p)];
  for await (const k of await control.keys('lanes.>')) {
    const e = await control.get(k);
    const lane = e && e.operation === 'PUT' ? decodeJson<LaneRecord>(e.value) : null;
    if (lane && lane.types && Object.hasOwn(lane.types, type)) {
      const key = controlKeys.checkpoint(p, k.slice('lanes.'.length));
      if (!keys.includes(key)) keys.push(key);
    }
  }
  return keys;
}

/** True when a checkpoint of `keys` that applies `type` has passed `seq`. */
async function passedBy(control: KV, keys: readonly string[], type: string, seq: number): Promise<boolean> {
  for (const key of keys) {
    const e = await control.get(key);
    const ck = e && e.operation === 'PUT' ? decodeJson<Checkpoint>(e.value) : null;
    if (ck && ck.seq >= seq && (!ck.duties || ck.duties.includes(type))) return true;
  }
  return false;
}

/** The waits the partitions' checkpoints report (see processing/commit.ts), by partition. */
function blockedOf(entries: ReadonlyArray<KvEntry | null>): Array<NonNullable<Checkpoint['blocked']>> {
  const out: Array<NonNullable<Checkpoint['blocked']>> = [];
  for (const e of entries) {
    if (!e || e.operation !== 'PUT' || !e.key.startsWith('checkpoints.')) continue;
    const b = decodeJson<Checkpoint>(e.value)?.blocked;
    if (b && typeof b === 'object') out.push(b);
  }
  return out.sort((a, b) => a.partition - b.partition);
}
