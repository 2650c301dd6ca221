/**
 * Live views: Server-Sent Events of actor state changes (a KV watch on the state
 * bucket) and the cluster status (members, partition owners, checkpoints, lag).
 */
import type { ActorChange, ActorWatch } from '@jetactor/actor-runtime';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { withDeadline } from '../deadline.js';
import type { RouteSchemas, TypedApp } from '../schemas.js';
import { expiredError, type HandlerSettings } from './handlers.js';

/** How often an idle event stream sends a comment, so proxies and clients keep it open, in ms (default of `sseKeepAliveMs`). */
export const SSE_KEEPALIVE_MS = 15_000;

/** The SSE event name of a state change. */
export const CHANGE_EVENT = 'change';

const changeSchema = {
  type: 'object',
  description: `Each \`${CHANGE_EVENT}\` event's data: the actor's state after a committed change.`,
  properties: {
    type: { type: 'string' },
    key: { type: 'string' },
    state: {},
    seq: { type: 'integer', description: 'Stream sequence of the last operation applied.' },
    revision: { type: 'integer', description: 'KV revision of the state record (also the event id).' },
    updatedAt: { type: ['string', 'null'], description: 'When the worker committed the change (ISO 8601).' },
    deleted: { type: 'boolean' },
  },
  required: ['type', 'key', 'state', 'seq', 'revision', 'updatedAt', 'deleted'],
} as const;

const eventStream = {
  200: {
    description: `A \`text/event-stream\`: one \`${CHANGE_EVENT}\` event per committed state change (data: JSON, see the ActorChange schema), comments as keep-alives.`,
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  },
} as const;

/** `?updatesOnly=` of a watch of one actor: by default its current state first. */
const KEY_UPDATES_ONLY = false;
/** `?updatesOnly=` of a watch of a type: by default changes from now on only. */
const TYPE_UPDATES_ONLY = true;

const watchKeySchema = (schemas: RouteSchemas) => ({
  params: schemas.read.params,
  querystring: Type.Object(
    { updatesOnly: Type.Optional(Type.Boolean({ default: KEY_UPDATES_ONLY, description: 'Skip the current state; send only later changes.' })) },
    { additionalProperties: false },
  ),
  response: eventStream,
});

const watchTypeSchema = (schemas: RouteSchemas) => ({
  params: schemas.list.params,
  querystring: Type.Object(
    {
      updatesOnly: Type.Optional(
        Type.Boolean({
          default: TYPE_UPDATES_ONLY,
          description: 'Default true: only changes from now on. `false` first sends the current state of every actor of the type.',
        }),
      ),
    },
    { additionalProperties: false },
  ),
  response: eventStream,
});

const statusSchema: FastifySchema = {
  response: {
    200: {
      type: 'object',
      properties: {
        members: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              partitions: { type: 'array', items: { type: 'integer' } },
              host: { type: 'string' },
              pid: { type: 'integer' },
              startedAt: { type: 'string' },
              service: { type: 'string', description: 'The service (lane) the worker belongs to.' },
              types: { type: 'object', additionalProperties: { type: 'integer' }, description: 'Hosted actor types and their versions.' },
            },
            required: ['id', 'partitions'],
          },
        },
        services: {
          type: 'array',
          description: 'Every registered service (lane): workers hosting the same types. A service with no live worker keeps its operations waiting in the stream.',
          items: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              types: { type: 'object', additionalProperties: { type: 'integer' } },
              registeredAt: { type: 'string' },
              seenAt: { type: 'string', description: 'When a worker of the service last ran (refreshed about once a minute).' },
              live: { type: 'boolean' },
              inactive: { type: 'boolean', description: 'No worker of it has run for JETACTOR_SERVICE_INACTIVE_MS (1 hour by default): remove it unless it comes back.' },
              members: { type: 'array', items: { type: 'string' } },
              partitions: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { partition: { type: 'integer' }, owner: { type: ['string', 'null'] }, checkpoint: { type: 'integer' } },
                  required: ['partition', 'owner', 'checkpoint'],
                },
              },
            },
            required: ['id', 'types', 'live', 'inactive', 'members', 'partitions'],
          },
        },
        partitions: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              partition: { type: 'integer' },
              owner: { type: ['string', 'null'] },
              checkpoint: { type: 'integer' },
              lag: { type: ['integer', 'null'], description: 'Operations stored but not applied yet; null when no live owner reports it.' },
            },
            required: ['partition', 'owner', 'checkpoint', 'lag'],
          },
        },
        blocked: {
          type: 'array',
          description:
            "Partitions that wait at an operation their owner must not apply (reason `newer-record`: a record written by a newer version of the type than the owner's); they resume once a worker that can apply it owns them. Absent when none.",
          items: {
            type: 'object',
            properties: {
              partition: { type: 'integer' },
              reason: { type: 'string' },
              seq: { type: 'integer', description: 'The operation the partition waits at.' },
              type: { type: 'string' },
              key: { type: 'string' },
              op: { type: 'string' },
              version: { type: 'integer', description: "The owner's version of the type." },
              recordVersion: { type: 'integer', description: 'The version that wrote the record.' },
              since: { type: 'string' },
            },
            required: ['partition', 'reason', 'seq', 'type', 'key', 'op', 'version'],
          },
        },
      },
      required: ['members', 'partitions'],
    },
  },
};

/** The JSON schema of one change event's data (for the OpenAPI document). */
export const ACTOR_CHANGE_SCHEMA = changeSchema;

/** Formats one SSE event. */
export function sseEvent(change: ActorChange): string {
  return `id: ${change.revision}\nevent: ${CHANGE_EVENT}\ndata: ${JSON.stringify(change)}\n\n`;
}

/** Settings of the live routes. */
export interface LiveSettings {
  /** Most bytes of coalesced changes one event stream may hold while its client does not read, before it is closed (`sseMaxBufferedBytes`). */
  readonly maxBufferedBytes: number;
  /** How often an idle stream sends a keep-alive comment, in ms (`sseKeepAliveMs`). */
  readonly keepAliveMs: number;
}

/**
 * Registers `GET /api/actors/:type/:key/watch`, `GET /api/watch/:type` (Server-Sent
 * Events) and `GET /api/status`. Open streams end when the client goes away (the KV
 * watch is stopped), when the app closes, and when the client stops reading. A client that
 * reads slower than changes come gets the latest state of each actor (changes are coalesced
 * per actor while its socket is full); once the coalesced changes would pass
 * `live.maxBufferedBytes`, the stream is closed and counted (`jetactor_gateway_sse_dropped_total`),
 * so a stalled reader cannot make the gateway buffer without bound. An `EventSource`
 * reconnects and starts again from the current state.
 */
export function liveRoutes(app: TypedApp, settings: HandlerSettings, schemas: RouteSchemas, live: LiveSettings): void {
  const open = new Set<() => void>();
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    for (const end of open) end();
    done();
  });

  const expired = (what: string): (() => Error) => expiredError(app, what, settings.requestTimeoutMs);

  async function stream(request: FastifyRequest, reply: FastifyReply, type: string, key: string | undefined, updatesOnly: boolean): Promise<void> {
    const { actor, client } = app.actorOf(type);
    const newest = actor.descriptor.version ?? 1;
    // The stream's lines name the actor it watches (validated path parameters by now).
    const log = request.log.child(key === undefined ? { type } : { type, key });
    const watcher = app.actorWatcher();
    // A watch that opens after the deadline (the client got its 504) is stopped at once.
    const watch: ActorWatch = await withDeadline(watcher.watch(type, key, { updatesOnly }), settings.requestTimeoutMs, expired('watch'), (late) =>
      late.stop(),
    );

    reply.hijack();
    const res = reply.raw;
    // The client left (or the app began closing) while the watch was being opened: its
    // 'close' came before the listener below, so nothing would ever stop the watch.
    if (res.destroyed || closing) {
      watch.stop();
      res.destroy();
      log.info({ clientGone: res.destroyed }, 'watch not started: the client went away or the gateway is closing');
      return;
    }
    res.socket?.setNoDelay(true);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    let ended = false;
    const keepalive = setInterval(() => {
      if (!blocked) write(': keep-alive\n\n');
    }, live.keepAliveMs);
    const end = (stalled = false): void => {
      if (ended) return;
      ended = true;
      clearInterval(keepalive);
      watch.stop();
      open.delete(end);
      pending.clear();
      app.gatewayMetrics.sseStreams.dec();
      // A stalled reader never takes what is queued: drop it (and the socket) at once.
      if (stalled) res.destroy();
      else if (!res.writableEnded) res.end();
      log.info('watch ended');
    };

    // Back-pressure: while the socket is full (write returned false, until 'drain'), changes
    // wait here, only the latest per actor; Node itself then holds at most its high-water
    // mark and one event. Past the bound, the reader is too far behind: the stream is closed.
    const pending = new Map<string, string>();
    let pendingBytes = 0;
    let blocked = false;
    const write = (chunk: string): void => {
      if (!res.write(chunk)) blocked = true;
    };
    const sendChange = (change: ActorChange): void => {
      if (ended) return;
      const event = sseEvent(change);
      if (!blocked) {
        write(event);
        return;
      }
      const replaced = pending.get(change.key);
      const bytes = pendingBytes - (replaced === undefined ? 0 : Buffer.byteLength(replaced)) + Buffer.byteLength(event);
      if (bytes > live.maxBufferedBytes) {
        app.gatewayMetrics.sseDropped.inc();
        log.warn(
          { pendingBytes, bufferedBytes: res.writableLength, limitBytes: live.maxBufferedBytes },
          'watch closed: the client stopped reading',
        );
        end(true);
        return;
      }
      // Re-inserted, so what waits goes out in the order of the latest changes.
      pending.delete(change.key);
      pending.set(change.key, event);
      pendingBytes = bytes;
    };
    res.on('drain', () => {
      blocked = false;
      for (const [key, event] of pending) {
        pending.delete(key);
        pendingBytes -= Buffer.byteLength(event);
        write(event);
        if (blocked) break;
      }
    });

    write(`: watching ${key === undefined ? `${type}.*` : `${type}.${key}`}\n\n`);
    app.gatewayMetrics.sseStreams.inc();
    log.info({ updatesOnly }, 'watch started');
    open.add(end);
    // The client went away: stop the KV watch at once.
    res.on('close', () => end());
    /**
     * The watcher has no actor code: a deleted actor shows the registered initial state, and a
     * record an older version wrote (one not touched since an upgrade) is read migrated by a
     * worker, like `GET /api/actors/:type/:key`.
     */
    const current = async (change: ActorChange): Promise<ActorChange> => {
      if (change.deleted) return { ...change, state: actor.initialState() };
      if ((change.version ?? 1) >= newest) return change;
      try {
        const s = await client.read(type, change.key, { version: newest });
        return { ...change, state: s.state, seq: s.seq, revision: s.revision, ...(s.version !== undefined ? { version: s.version } : {}) };
      } catch (err) {
        log.warn({ key: change.key, err: String(err) }, 'a record of an older version could not be read migrated: sent as stored');
        return change;
      }
    };
    try {
      for await (const change of watch) {
        if (ended) break;
        sendChange(await current(change));
      }
    } catch (err) {
      log.warn({ err }, 'watch failed');
    } finally {
      end();
    }
  }

  app.get('/api/actors/:type/:key/watch', { schema: watchKeySchema(schemas) }, async (request, reply) => {
    const { type, key } = request.params;
    // The schema's default fills it in (Ajv useDefaults); the fallback is for the type checker.
    const { updatesOnly = KEY_UPDATES_ONLY } = request.query;
    await stream(request, reply, type, key, updatesOnly);
  });

  app.get('/api/watch/:type', { schema: watchTypeSchema(schemas) }, async (request, reply) => {
    const { type } = request.params;
    const { updatesOnly = TYPE_UPDATES_ONLY } = request.query;
    await stream(request, reply, type, undefined, updatesOnly);
  });

  app.get('/api/status', { schema: statusSchema }, async (_request, reply) => {
    const status = await withDeadline(app.actorClient().status(), settings.requestTimeoutMs, expired('status'));
    return reply.send(status);
  });
}
