/**
 * An in-memory ActorClient for HTTP-level tests: it applies operations at once with the
 * real actor definitions, and records every signal, call and delete it is asked for,
 * so a test can assert that a rejected request published nothing.
 */
import { DELETE_OPERATION, OperationFailedError, TimeoutError, UnknownActorError, UnknownOperationError, validateName, type AnyActorDefinition } from '@jetactor/actor-runtime';
import { planTimer, parseCursor, type ActorClient, type ActorSnapshot, type CallResult, type ClusterStatus, type DeadLetter, type SignalResult, type TimerClient, type TimerInfo } from '@jetactor/actor-runtime/client';
import { CANCEL_TIMER_OPERATION, validateTimerId } from '@jetactor/actor-runtime/internal';
import { ActorError, ErrorCode } from '@jetactor/actor-runtime';
import { counter } from '@jetactor/counter-actor';

/** One request the client was asked to publish. */
export interface Published {
  method: 'signal' | 'call' | 'delete' | 'resubmit' | 'schedule' | 'cancelTimer';
  type: string;
  key: string;
  op: string;
  input: unknown;
  idempotencyKey: string | undefined;
}

/** The memory client plus test controls. */
export interface MemoryClient extends ActorClient {
  /** Everything published, in order. */
  readonly published: Published[];
  /** Options of every read, in order. */
  readonly reads: Array<{ type: string; key: string; minSeq?: number; timeoutMs?: number; version?: number }>;
  /** When set, every NATS-facing method returns a promise that never settles. */
  hang: boolean;
  /** When set, every NATS-facing method rejects with this. */
  failWith: Error | undefined;
  /** When false, signals are stored but not applied (a worker that lags). */
  applying: boolean;
  /** Dead letters that `deadLetters()` pages through and `resubmit()` publishes again. */
  readonly dead: DeadLetter[];
}

interface Entry {
  state: unknown;
  seq: number;
  revision: number;
  exists: boolean;
}

/** Creates a {@link MemoryClient} hosting `actors` (default: the counter). */
export function createMemoryClient(actors: readonly AnyActorDefinition[] = [counter]): MemoryClient {
  const registry = new Map(actors.map((a) => [a.type, a]));
  const entries = new Map<string, Entry>();
  const idempotency = new Map<string, number>();
  let seq = 0;

  const definitionOf = (type: string): AnyActorDefinition => {
    const def = registry.get(type);
    if (!def) throw new UnknownActorError(type);
    return def;
  };

  const gate = async (): Promise<void> => {
    if (client.hang) await new Promise<never>(() => undefined);
    if (client.failWith !== undefined) throw client.failWith;
  };

  const apply = (type: string, key: string, op: string, input: unknown, at: number): unknown => {
    const def = definitionOf(type);
    const id = `${type}.${key}`;
    const current = entries.get(id);
    if (op === DELETE_OPERATION) {
      entries.set(id, { state: def.initialState(), seq: at, revision: (current?.revision ?? 0) + 1, exists: false });
      return null;
    }
    const state: unknown = current?.exists ? current.state : def.initialState();
    const outcome = def.apply(state, op, input, { type, key, op, seq: at, time: new Date() });
    entries.set(id, { state: outcome.state, seq: at, revision: (current?.revision ?? 0) + 1, exists: true });
    return outcome.result;
  };

  const publish = (method: Published['method'], type: string, key: string, op: string, input: unknown, idempotencyKey?: string) => {
    client.published.push({ method, type, key, op, input, idempotencyKey });
    if (idempotencyKey !== undefined) {
      const seen = idempotency.get(`${type}.${key}.${idempotencyKey}`);
      if (seen !== undefined) return { seq: seen, duplicate: true, result: undefined as unknown, error: undefined };
    }
    const at = ++seq;
    if (idempotencyKey !== undefined) idempotency.set(`${type}.${key}.${idempotencyKey}`, at);
    // A timer or its cancel changes the timers only (kept apart below), never the state now.
    if (!client.applying || method === 'schedule' || method === 'cancelTimer') return { seq: at, duplicate: false, result: undefined, error: undefined };
    try {
      return { seq: at, duplicate: false, result: apply(type, key, op, input, at), error: undefined };
    } catch (err) {
      return { seq: at, duplicate: false, result: undefined, error: err };
    }
  };

  const snapshot = (type: string, key: string): ActorSnapshot => {
    const def = definitionOf(type);
    const e = entries.get(`${type}.${key}`);
    if (!e) return { type, key, state: def.initialState(), seq: 0, revision: 0, exists: false };
    return { type, key, state: e.exists ? e.state : def.initialState(), seq: e.seq, revision: e.revision, exists: e.exists };
  };

  /** Timers by actor (`type.key`), as a worker would keep them (not fired). */
  const timers = new Map<string, TimerInfo[]>();

  const cancelTimer = (async (type: string, key: string, id: string, opts: { wait?: boolean; idempotencyKey?: string } = {}) => {
    validateName('type', type);
    validateName('key', key);
    validateTimerId(id);
    definitionOf(type);
    await gate();
    const r = publish('cancelTimer', type, key, CANCEL_TIMER_OPERATION, { id }, opts.idempotencyKey);
    const list = timers.get(`${type}.${key}`) ?? [];
    const cancelled = list.some((t) => t.id === id);
    timers.set(`${type}.${key}`, list.filter((t) => t.id !== id));
    return opts.wait === true ? { result: { cancelled, id }, seq: r.seq } : { cancelled: id, type, key, seq: r.seq };
  }) as TimerClient['cancelTimer'];

  const client: MemoryClient = {
    published: [],
    reads: [],
    hang: false,
    failWith: undefined,
    applying: true,
    dead: [],

    definition: (type) => registry.get(type),

    parseInput(type, op, raw) {
      validateName('type', type);
      validateName('op', op);
      const def = definitionOf(type);
      if (!def.hasOperation(op)) throw new UnknownOperationError(type, op);
      return def.parseInput(op, raw);
    },

    async signal(type, key, op, input, opts = {}): Promise<SignalResult> {
      validateName('key', key);
      client.parseInput(type, op, input);
      await gate();
      const r = publish('signal', type, key, op, input, opts.idempotencyKey);
      return { seq: r.seq, duplicate: r.duplicate };
    },

    async call(type, key, op, input, opts = {}): Promise<CallResult> {
      validateName('key', key);
      client.parseInput(type, op, input);
      await gate();
      const r = publish('call', type, key, op, input, opts.idempotencyKey);
      if (!client.applying) throw new TimeoutError(`no result for ${type}/${key}/${op} within ${opts.timeoutMs ?? 5000} ms`);
      if (r.error !== undefined) {
        const code = r.error instanceof ActorError ? r.error.code : 'HANDLER_ERROR';
        throw new OperationFailedError(code, r.error instanceof Error ? r.error.message : 'handler failed', r.seq);
      }
      return { result: r.result, seq: r.seq };
    },

    async read(type, key, opts = {}): Promise<ActorSnapshot> {
      validateName('type', type);
      validateName('key', key);
      client.reads.push({ type, key, ...opts });
      await gate();
      const s = snapshot(type, key);
      if (opts.minSeq !== undefined && s.seq < opts.minSeq) {
        throw new TimeoutError(`state of ${type}/${key} did not reach seq ${opts.minSeq} in time (now ${s.seq})`);
      }
      return s;
    },

    async list(type, opts = {}) {
      validateName('type', type);
      await gate();
      const limit = opts.limit ?? 100;
      const after = parseCursor(opts.cursor);
      // As the real client: in the order of the last write, the cursor the last write's seq.
      const live = [...entries.entries()]
        .filter(([id, e]) => id.startsWith(`${type}.`) && e.seq > after)
        .sort(([, a], [, b]) => a.seq - b.seq)
        .map(([id]) => snapshot(type, id.slice(type.length + 1)));
      const items = live.filter((s) => s.exists && (opts.prefix ? s.key.startsWith(opts.prefix) : true));
      const page = items.slice(0, limit);
      const nextCursor = items.length > limit ? String(page[page.length - 1]?.seq ?? after) : null;
      return { items: page, nextCursor };
    },

    async delete(type, key, opts = {}): Promise<SignalResult> {
      validateName('type', type);
      validateName('key', key);
      definitionOf(type);
      await gate();
      const r = publish('delete', type, key, DELETE_OPERATION, undefined, opts.idempotencyKey);
      return { seq: r.seq, duplicate: r.duplicate };
    },

    status: (): Promise<ClusterStatus> => Promise.resolve({ members: [], partitions: [], services: [] }),
    removeService: (id: string) => Promise.reject(new ActorError(ErrorCode.NotFound, `no service ${id}`)),
    async deadLetters(opts = {}) {
      await gate();
      const limit = opts.limit ?? 100;
      const items = client.dead.filter((d) => d.dlqSeq > (opts.cursor ?? 0)).slice(0, limit);
      const last = client.dead[client.dead.length - 1];
      const tail = items[items.length - 1];
      return { items, nextCursor: tail !== undefined && last !== undefined && tail.dlqSeq < last.dlqSeq ? tail.dlqSeq : null };
    },

    async resubmit(dlqSeq: number): Promise<SignalResult> {
      await gate();
      const d = client.dead.find((x) => x.dlqSeq === dlqSeq);
      if (d === undefined) throw new ActorError(ErrorCode.NotFound, `no dead letter ${dlqSeq}`);
      const r = publish('resubmit', d.type, d.key, d.op, d.payload === '' ? undefined : (JSON.parse(d.payload) as unknown));
      return { seq: r.seq, duplicate: r.duplicate };
    },

    async schedule(type, key, op, input, opts) {
      validateName('key', key);
      client.parseInput(type, op, input);
      const planned = planTimer(type, key, op, input, opts);
      await gate();
      const r = publish('schedule', type, key, op, input, opts.idempotencyKey);
      const at = new Date(planned.at).toISOString();
      const list = (timers.get(`${type}.${key}`) ?? []).filter((t) => t.id !== planned.id);
      list.push({ id: planned.id, at, op, target: { type, key }, ...(input !== undefined ? { input } : {}) });
      timers.set(`${type}.${key}`, list.sort((a, b) => a.at.localeCompare(b.at)));
      return { scheduled: op, type, key, id: planned.id, at, seq: r.seq, ...(r.duplicate ? { duplicate: true as const } : {}) };
    },

    async timers(type, key) {
      validateName('type', type);
      validateName('key', key);
      await gate();
      return { type, key, timers: [...(timers.get(`${type}.${key}`) ?? [])] };
    },

    cancelTimer,

    close() {},
  };
  return client;
}
