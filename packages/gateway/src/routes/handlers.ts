/**
 * The request handlers behind every actor route. The seed's counter routes and the
 * generic `/api/actors` routes share them: a route names its actor through its path
 * parameters or, for fixed parts (`/api/counter/add` is type `counter`, key `counter`),
 * through its `config.actor`.
 */
import type { ActorSnapshot, ScheduleOptions } from '@jetactor/actor-runtime';
import { ActorError } from '@jetactor/actor-runtime';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Static } from '@sinclair/typebox';
import type {
  ContextConfigDefault,
  FastifyInstance,
  FastifyRequest,
  FastifySchema,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
  RouteGenericInterface,
  RouteHandlerMethod,
} from 'fastify';
import type { CatalogEntry } from '../catalog/actor-catalog.js';
import { withDeadline } from '../deadline.js';
import { GatewayError } from '../errors.js';
import { inPublishBatch } from '../nats/publish-batch.js';
import { noteForLog } from '../plugins/request-log.js';
import type { RouteSchemas, TypedApp } from '../schemas.js';
import { targetOf, type ActorTarget } from './target.js';

export { targetOf, type ActorTarget } from './target.js';

/** Settings the handlers need, from the resolved gateway options. */
export interface HandlerSettings {
  /** Timeout of `?wait=true` and `?minSeq` without `?timeoutMs`, ms. */
  readonly defaultTimeoutMs: number;
  /** Deadline of every other NATS round trip, ms. */
  readonly requestTimeoutMs: number;
}

/** Extra time the gateway gives a call or `?minSeq` read past its own timeout, so the runtime's timeout wins. */
export const DEADLINE_GRACE_MS = 1_000;

/** The query of the signal routes, as their schema lets it through (timer parameters as strings). */
type SignalQuery = Static<ReturnType<RouteSchemas['signal']>['querystring']>;

/** The schedule options of a signal route's query; undefined when it sets no timer (a plain signal). */
export function timerOptionsOf(query: SignalQuery): Omit<ScheduleOptions, 'idempotencyKey'> | undefined {
  const { delayMs, at, id, every, cron } = query;
  if (delayMs === undefined && at === undefined && id === undefined && every === undefined && cron === undefined) return undefined;
  return {
    ...(delayMs !== undefined ? { delayMs: Number(delayMs) } : {}),
    ...(at !== undefined ? { at } : {}),
    ...(id !== undefined ? { id } : {}),
    ...(every !== undefined ? { every: Number(every) } : {}),
    ...(cron !== undefined ? { cron } : {}),
  };
}

/** 202 body of a signal or delete. */
export interface SignaledBody {
  signaled: string;
  type: string;
  key: string;
  seq: number;
  duplicate?: true;
}

/** The snapshot as the API shows it. */
export interface SnapshotBody {
  type: string;
  key: string;
  state: unknown;
  seq: number;
  revision: number;
}

function required(target: Partial<ActorTarget>, part: keyof ActorTarget): string {
  const value = target[part];
  // Only a route wired without the part can get here; schemas guarantee the rest.
  if (value === undefined) throw new Error(`route has no actor ${part}`);
  return value;
}

/** The operation's input: the JSON body, or `{"value": n}` from `?value=n`, or undefined. */
export function inputOf(body: unknown, value: string | undefined): unknown {
  if (value === undefined) return body;
  if (body !== undefined) {
    throw new GatewayError('INVALID_INPUT', "give the input either as the body or as '?value=', not both");
  }
  return { value: Number(value) };
}

/** Validates `input` with the registered schema; any failure is a 4xx and nothing is published. */
function checkInput(actor: CatalogEntry, op: string, input: unknown): void {
  try {
    actor.check(op, input);
  } catch (err) {
    if (err instanceof ActorError) throw err;
    // A parser that throws a plain error still means the input is bad.
    throw new GatewayError('INVALID_INPUT', err instanceof Error ? err.message : 'invalid input', { cause: err });
  }
}

function snapshotBody(s: ActorSnapshot): SnapshotBody {
  return { type: s.type, key: s.key, state: s.state, seq: s.seq, revision: s.revision };
}

/** The snapshot with the registered initial state when the actor was never written or is deleted. */
function withInitialState(s: ActorSnapshot, actor: CatalogEntry): ActorSnapshot {
  return s.exists ? s : { ...s, state: actor.initialState() };
}

/**
 * The error of a NATS round trip that passed its deadline: 504 `TIMEOUT`, or 503
 * `NATS_UNAVAILABLE` when the connection went away meanwhile (the likelier reason then).
 */
export function expiredError(app: FastifyInstance, what: string, ms: number): () => Error {
  return () =>
    app.natsReady()
      ? new GatewayError('TIMEOUT', `${what} did not complete within ${ms} ms`)
      : new GatewayError('NATS_UNAVAILABLE', 'lost the connection to NATS; retry later');
}

/** The request's `Idempotency-Key` header (validated by the route schema), if any. */
export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key'];
  return typeof value === 'string' ? value : undefined;
}

/**
 * A handler shared by routes whose query and headers one schema types; their path parameters
 * differ (the counter routes fix some parts in `config.actor`), so it reads them with {@link targetOf}.
 */
type Handler<S extends FastifySchema> = RouteHandlerMethod<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  RouteGenericInterface,
  ContextConfigDefault,
  Omit<S, 'params'>,
  TypeBoxTypeProvider
>;

/** The route handlers, bound to an app and its settings. */
export interface Handlers {
  /** Signals an operation (202), or with `?wait=true` calls it and returns its result (200). */
  signal: Handler<ReturnType<RouteSchemas['signal']>>;
  /** Reads an actor's snapshot, optionally waiting for `?minSeq`. */
  read: Handler<RouteSchemas['read']>;
  /** Reads a counter as `{"value": n}`. */
  counterValue: Handler<RouteSchemas['counterRead']>;
  /** Lists actors of a type. */
  list: Handler<RouteSchemas['list']>;
  /** Deletes an actor's state (an ordered operation). */
  remove: Handler<RouteSchemas['remove']>;
}

/** The query of the read routes. */
type ReadQuery = Static<RouteSchemas['read']['querystring']>;

/** Builds the {@link Handlers} for `app`. */
export function createHandlers(app: TypedApp, settings: HandlerSettings): Handlers {
  const expired = (what: string, ms: number): (() => Error) => expiredError(app, what, ms);

  async function read(request: FastifyRequest, query: ReadQuery): Promise<ActorSnapshot> {
    const target = targetOf(request);
    const type = required(target, 'type');
    const key = required(target, 'key');
    const { client, actor } = app.actorOf(type);
    if (query.minSeq === undefined) {
      // `version`: a record older than the registered version is read migrated (by a worker).
      const s = await withDeadline(client.read(type, key, { version: actor.descriptor.version }), settings.requestTimeoutMs, expired('read', settings.requestTimeoutMs));
      return withInitialState(s, actor);
    }
    const timeoutMs = query.timeoutMs ?? settings.defaultTimeoutMs;
    const s = await withDeadline(
      client.read(type, key, { minSeq: query.minSeq, timeoutMs, version: actor.descriptor.version }),
      timeoutMs + DEADLINE_GRACE_MS,
      expired(`read with minSeq ${query.minSeq}`, timeoutMs),
    );
    return withInitialState(s, actor);
  }

  return {
    async signal(request, reply) {
      const target = targetOf(request);
      const type = required(target, 'type');
      const key = required(target, 'key');
      const op = required(target, 'op');
      const { query } = request;
      const idempotencyKey = idempotencyKeyOf(request);
      const input = inputOf(request.body, query.value);
      const { client, actor } = app.actorOf(type);
      checkInput(actor, op, input);

      const timer = timerOptionsOf(query);
      if (timer !== undefined) {
        if (query.wait === true) {
          throw new GatewayError('INVALID_REQUEST', "'wait=true' cannot be combined with a timer: the operation runs later (GET .../timers shows it set)");
        }
        const scheduled = await withDeadline(
          client.schedule(type, key, op, input, { ...timer, idempotencyKey }),
          settings.requestTimeoutMs,
          expired(`schedule '${op}'`, settings.requestTimeoutMs),
        );
        noteForLog(request, { seq: scheduled.seq, timer: scheduled.id, ...(scheduled.duplicate ? { duplicate: true } : {}) });
        return reply.code(202).send(scheduled);
      }

      if (query.wait === true) {
        const timeoutMs = query.timeoutMs ?? settings.defaultTimeoutMs;
        const { result, seq, duplicate } = await withDeadline(
          inPublishBatch(() => client.call(type, key, op, input, { idempotencyKey, timeoutMs })),
          timeoutMs + DEADLINE_GRACE_MS,
          expired(`operation '${op}'`, timeoutMs),
        );
        noteForLog(request, { seq });
        return reply.code(200).send({ result: result ?? null, seq, ...(duplicate ? { duplicate: true } : {}) });
      }

      const { seq, duplicate } = await withDeadline(
        inPublishBatch(() => client.signal(type, key, op, input, { idempotencyKey })),
        settings.requestTimeoutMs,
        expired(`signal '${op}'`, settings.requestTimeoutMs),
      );
      noteForLog(request, { seq, ...(duplicate ? { duplicate } : {}) });
      const body: SignaledBody = { signaled: op, type, key, seq, ...(duplicate ? { duplicate: true as const } : {}) };
      return reply.code(202).send(body);
    },

    async read(request, reply) {
      const snapshot = await read(request, request.query);
      noteForLog(request, { seq: snapshot.seq });
      return reply.send(snapshotBody(snapshot));
    },

    async counterValue(request, reply) {
      const snapshot = await read(request, request.query);
      noteForLog(request, { seq: snapshot.seq });
      return reply.send({ value: snapshot.state });
    },

    async list(request, reply) {
      const type = required(targetOf(request), 'type');
      const { query } = request;
      const { client, actor } = app.actorOf(type);
      const page = await withDeadline(
        client.list(type, { prefix: query.prefix, limit: query.limit, cursor: query.cursor, version: actor.descriptor.version }),
        settings.requestTimeoutMs,
        expired('list', settings.requestTimeoutMs),
      ).catch((err: unknown) => {
        // A cursor of digits past what a sequence can be; the schema lets any digits through.
        if (err instanceof RangeError) throw new GatewayError('INVALID_REQUEST', err.message, { cause: err });
        throw err;
      });
      return reply.send({ items: page.items.map(snapshotBody), nextCursor: page.nextCursor ?? null });
    },

    async remove(request, reply) {
      const target = targetOf(request);
      const type = required(target, 'type');
      const key = required(target, 'key');
      const { client } = app.actorOf(type);
      const { seq, duplicate } = await withDeadline(
        inPublishBatch(() => client.delete(type, key, { idempotencyKey: idempotencyKeyOf(request) })),
        settings.requestTimeoutMs,
        expired('delete', settings.requestTimeoutMs),
      );
      noteForLog(request, { seq, ...(duplicate ? { duplicate } : {}) });
      const body: SignaledBody = { signaled: 'delete', type, key, seq, ...(duplicate ? { duplicate: true as const } : {}) };
      return reply.code(202).send(body);
    },
  };
}
