/**
 * The workers' query service: answers `<prefix>.query.<type>.<key>.<name>` requests from the
 * stored state in the state bucket, without a trip through the operations stream (Restate's
 * shared handlers). Every worker subscribes, per actor type it hosts, in one queue group, so
 * any of them answers any key, whoever owns its partition; a caller needs no actor code
 * (the gateway imports none). See `./protocol.ts` for the messages.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { createActorClient, type ActorClient } from '../client/actor-client.js';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { ActorError, decodePayload, toErrorBody, isValidReplySubject, querySubject, validateName, type ActorNames, QUERY_INTERNAL_ERROR, QueryHeaders, STATE_QUERY, encodeError, encodeResult, headerInt, type StateQueryResult } from '../protocol/index.js';

/** Options of {@link startQueryService}. */
export interface QueryServiceOptions {
  nc: NatsConnection;
  /** The actor types to answer for (those the worker hosts). */
  actors: ReadonlyMap<string, AnyActorDefinition> | readonly AnyActorDefinition[];
  names: ActorNames;
  log: Logger;
  /** How long a query may wait for its `Min-Seq` without a `Timeout-Ms` header, in ms. Default 5000. */
  defaultTimeoutMs?: number;
  /** Largest accepted `Timeout-Ms`, in ms. Default 60000. */
  maxTimeoutMs?: number;
}

/** A running query service. */
export interface QueryService {
  /** Stops taking queries and waits for the ones being answered. */
  stop(): Promise<void>;
}

/** Queue group of the query subscriptions: one worker answers each query. */
export const QUERY_QUEUE = 'jetactor-query';

function byType(actors: QueryServiceOptions['actors']): Map<string, AnyActorDefinition> {
  const isMap = (a: QueryServiceOptions['actors']): a is ReadonlyMap<string, AnyActorDefinition> => typeof (a as ReadonlyMap<string, unknown>).get === 'function';
  return isMap(actors) ? new Map(actors) : new Map(actors.map((a) => [a.type, a]));
}

/**
 * Starts answering queries for `actors` on `nc`: one queue subscription per type on
 * `<names.subjectPrefix>.query.<type>.*.*`. Replies go only to a literal inbox subject
 * under `names.inboxPrefix` (a request with any other reply subject is logged and dropped).
 */
export function startQueryService(opts: QueryServiceOptions): QueryService {
  const actors = byType(opts.actors);
  const defaultTimeoutMs = opts.defaultTimeoutMs ?? 5000;
  const maxTimeoutMs = opts.maxTimeoutMs ?? 60_000;
  const { nc, names, log } = opts;
  // Reads through the client: the same record decoding, initial states and `minSeq` wait.
  const client: ActorClient = createActorClient(nc, { names, actors: [...actors.values()], timeoutMs: defaultTimeoutMs });
  const inFlight = new Set<Promise<void>>();

  const answer = async (def: AnyActorDefinition, m: Msg): Promise<void> => {
    // A reply is published with the worker's credentials: never to a forged subject.
    if (!isValidReplySubject(m.reply, names)) {
      log.warn({ subject: m.subject, reply: typeof m.reply === 'string' ? m.reply.slice(0, 300) : null }, 'query with an invalid reply subject dropped');
      return;
    }
    const tokens = m.subject.split('.');
    const key = tokens[tokens.length - 2] ?? '';
    const name = tokens[tokens.length - 1] ?? '';
    try {
      validateName('key', key);
      validateName('op', name);
      const state = name === STATE_QUERY;
      const input = state ? undefined : def.parseQueryInput(name, decodePayload(m.data));
      const minSeq = headerInt(QueryHeaders.MinSeq, m.headers?.get(QueryHeaders.MinSeq), Number.MAX_SAFE_INTEGER);
      const timeoutMs = headerInt(QueryHeaders.TimeoutMs, m.headers?.get(QueryHeaders.TimeoutMs), maxTimeoutMs) ?? defaultTimeoutMs;
      // The client reads with this worker's definition: an older record comes back migrated.
      const snap = await client.read(def.type, key, { minSeq, timeoutMs });
      if (state) {
        const result: StateQueryResult = { state: snap.state, version: snap.exists ? (snap.version ?? 1) : def.version, revision: snap.revision, exists: snap.exists };
        m.respond(encodeResult(result, snap.seq, nc.info?.max_payload ?? 1024 * 1024));
        return;
      }
      const result = def.query(snap.state, name, input, { type: def.type, key, query: name, seq: snap.seq, exists: snap.exists });
      m.respond(encodeResult(result, snap.seq, nc.info?.max_payload ?? 1024 * 1024));
    } catch (err) {
      if (!(err instanceof ActorError)) {
        log.error({ err, type: def.type, key, query: name }, 'query failed');
        m.respond(encodeError({ code: QUERY_INTERNAL_ERROR, message: 'the worker could not answer the query; see its log' }));
        return;
      }
      log.debug({ type: def.type, key, query: name, code: err.code, message: err.message }, 'query refused');
      m.respond(encodeError(toErrorBody(err)));
    }
  };

  const subs: Subscription[] = [...actors.values()].map((def) =>
    nc.subscribe(querySubject(names, def.type, '*', '*'), {
      queue: QUERY_QUEUE,
      callback: (err, m) => {
        if (err) {
          log.warn({ err: String(err), type: def.type }, 'query subscription error');
          return;
        }
        const task = answer(def, m).catch((e: unknown) => log.error({ err: e }, 'query reply failed'));
        inFlight.add(task);
        void task.finally(() => inFlight.delete(task));
      },
    }),
  );
  log.info({ types: [...actors.keys()], subject: querySubject(names, '<type>', '*', '*') }, 'query service started');

  return {
    async stop(): Promise<void> {
      if (!nc.isClosed()) await Promise.all(subs.map((s) => s.drain().catch(() => s.unsubscribe())));
      await Promise.all([...inFlight]);
      client.close();
    },
  };
}
