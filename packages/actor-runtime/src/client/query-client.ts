/**
 * Queries from the client side. Where the actor's definition is known, the client reads the
 * record from the state bucket and runs the query itself (one KV read, no worker involved);
 * otherwise it asks the workers' query service over NATS request-reply (a caller without the
 * actor's code, such as the gateway). Either way the answer is the same JSON.
 */
import { NoRespondersError, RequestError, TimeoutError as NatsTimeoutError, headers, type NatsConnection } from '@nats-io/nats-core';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { ActorError, ErrorCode, TimeoutError, defaultNames, querySubject, validateName, type ActorNames, QueryHeaders, decodeReply, encodeResult, type QueryOptions, type QueryResult } from '../protocol/index.js';
import { createActorClient, type ActorClient } from './actor-client.js';

/** Options of {@link createQueryClient}. */
export interface QueryClientOptions {
  /** Definitions whose queries run in this process (read the record, run the query here). */
  actors?: readonly AnyActorDefinition[];
  /** The client to read records with (and whose definitions count as known); one is made if absent. */
  client?: ActorClient;
  /** Stream, subject and bucket names. */
  names?: Partial<ActorNames>;
  /** Default timeout of a query, in ms. Default 5000. */
  timeoutMs?: number;
}

/** Runs queries: locally where the definition is known, else through the workers. */
export interface QueryClient {
  /**
   * Answers the query `name` of actor `type`/`key` with `input`. Throws {@link InvalidNameError},
   * an `UNKNOWN_OPERATION` {@link ActorError} for a query the actor does not have,
   * {@link InvalidInputError}, `HANDLER_ERROR` when the query throws, `UNKNOWN_ACTOR` when no
   * worker serves the type, {@link TimeoutError}.
   */
  query(type: string, key: string, name: string, input?: unknown, opts?: QueryOptions): Promise<QueryResult>;
}

/**
 * Runs the query `name` of `def` here: validates the input, reads the record with `reader`
 * (waiting for `minSeq`) and applies the query to its state. The result is what the workers
 * would answer, i.e. after a JSON round trip.
 */
export async function runQuery(
  reader: Pick<ActorClient, 'read'>,
  def: AnyActorDefinition,
  key: string,
  name: string,
  input: unknown,
  opts: QueryOptions = {},
): Promise<QueryResult> {
  const parsed = def.parseQueryInput(name, input);
  const snap = await reader.read(def.type, key, { minSeq: opts.minSeq, timeoutMs: opts.timeoutMs });
  // A reader without this definition reads a missing record's state as null.
  const state = snap.exists ? snap.state : def.initialState();
  const result = def.query(state, name, parsed, { type: def.type, key, query: name, seq: snap.seq, exists: snap.exists });
  return JSON.parse(new TextDecoder().decode(encodeResult(result, snap.seq, Number.MAX_SAFE_INTEGER))) as QueryResult;
}

/** Creates a {@link QueryClient} on a NATS connection. */
export function createQueryClient(nc: NatsConnection, opts: QueryClientOptions = {}): QueryClient {
  const names = defaultNames(opts.names);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const known = new Map((opts.actors ?? []).map((a) => [a.type, a]));
  let reader: ActorClient | undefined = opts.client;
  const definition = (type: string): AnyActorDefinition | undefined => known.get(type) ?? opts.client?.definition(type);

  const local = (def: AnyActorDefinition, key: string, name: string, input: unknown, o: QueryOptions): Promise<QueryResult> => {
    reader ??= createActorClient(nc, { names, actors: [...known.values()], timeoutMs });
    return runQuery(reader, def, key, name, input, { ...o, timeoutMs: o.timeoutMs ?? timeoutMs });
  };

  const remote = async (type: string, key: string, name: string, input: unknown, o: QueryOptions): Promise<QueryResult> => {
    const timeout = o.timeoutMs ?? timeoutMs;
    const h = headers();
    if (o.minSeq !== undefined) h.set(QueryHeaders.MinSeq, String(o.minSeq));
    h.set(QueryHeaders.TimeoutMs, String(timeout));
    const payload = input === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(input));
    try {
      // A little longer than the worker's own wait, so its TIMEOUT answer arrives first.
      const reply = await nc.request(querySubject(names, type, key, name), payload, { timeout: timeout + 250, headers: h });
      return decodeReply(reply.data);
    } catch (err) {
      if (err instanceof ActorError) throw err;
      if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) {
        throw new ActorError(ErrorCode.UnknownActor, `no worker answers queries of actor type '${type}' (unknown type, or no worker running)`, { cause: err });
      }
      if (err instanceof NatsTimeoutError || (err instanceof RequestError && err.cause instanceof NatsTimeoutError)) {
        throw new TimeoutError(`no answer to query ${type}/${key}/${name} within ${timeout} ms`);
      }
      throw err;
    }
  };

  return {
    async query(type: string, key: string, name: string, input?: unknown, o: QueryOptions = {}): Promise<QueryResult> {
      validateName('type', type);
      validateName('key', key);
      validateName('op', name);
      const def = definition(type);
      return def ? local(def, key, name, input, o) : remote(type, key, name, input, o);
    },
  };
}
