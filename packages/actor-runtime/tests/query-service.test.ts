/**
 * Queries on a real nats-server: the workers' query service answers from the stored state
 * over NATS request-reply (for callers without the actor's code), the query client runs them
 * locally where it has the definition, the typed client types both; errors are registered
 * codes, and a forged reply subject is never answered.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { headers } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ActorError,
  ErrorCode,
  InvalidInputError,
  NoInput,
  QueryHeaders,
  Type,
  createActorClient,
  createQueryClient,
  createTypedClient,
  createWorker,
  defaultNames,
  defineActor,
  startQueryService,
  type ActorClient,
  type QueryClient,
  type QueryService,
  type Worker,
} from '../src/internal.js';

const shelf = defineActor({
  type: 'shelf',
  initialState: () => ({ books: [] as string[] }),
  operations: {
    put: { input: Type.String({ minLength: 1 }), handler: (s, title) => ({ state: { books: [...s.books, title] }, result: s.books.length + 1 }) },
    clear: { input: NoInput, handler: () => ({ state: { books: [] }, result: 0 }) },
  },
  queries: {
    count: (s) => s.books.length,
    has: { input: Type.String(), handler: (s, title, ctx) => ({ has: s.books.includes(title), seq: ctx.seq, exists: ctx.exists }) },
    boom: () => {
      throw new Error('query bug');
    },
    bigint: () => BigInt(1),
    huge: () => 'x'.repeat(2 * 1024 * 1024),
  },
});

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const names = defaultNames();
let server: NatsServer;
let nc: NatsConnection;
let worker: Worker;
let service: QueryService;
let client: ActorClient;
/** Knows no definition: every query goes to the workers. */
let remote: QueryClient;
/** Has the definition: reads the record and runs the query itself. */
let local: QueryClient;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  worker = createWorker({ nc, actors: [shelf], partitions: 4, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
  await worker.start();
  await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'worker did not take its partitions' });
  service = startQueryService({ nc, actors: [shelf], names, log });
  client = createActorClient(nc, { actors: [shelf] });
  remote = createQueryClient(nc);
  local = createQueryClient(nc, { actors: [shelf] });
});

afterAll(async () => {
  await service?.stop();
  client?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

function codeOf(err: unknown): { code: string; message: string } {
  if (err instanceof ActorError) return { code: err.code, message: err.message };
  throw err;
}

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (err: unknown) => codeOf(err),
  );
}

describe('query service', () => {
  it('answers from the stored state, with its seq, without the actor code', async () => {
    await client.call('shelf', 'a', 'put', 'Dune');
    const { seq } = await client.call('shelf', 'a', 'put', 'Emma');
    expect(await remote.query('shelf', 'a', 'count')).toEqual({ result: 2, seq });
    expect(await remote.query('shelf', 'a', 'has', 'Emma')).toEqual({ result: { has: true, seq, exists: true }, seq });
  });

  it('answers the initial state for an actor never written', async () => {
    expect(await remote.query('shelf', 'nobody', 'count')).toEqual({ result: 0, seq: 0 });
    expect(await remote.query('shelf', 'nobody', 'has', 'Dune')).toEqual({ result: { has: false, seq: 0, exists: false }, seq: 0 });
  });

  it('waits for Min-Seq: a query after a signal sees it (read-your-writes)', async () => {
    const { seq } = await client.signal('shelf', 'ryw', 'put', 'Ulysses');
    expect(await remote.query('shelf', 'ryw', 'has', 'Ulysses', { minSeq: seq, timeoutMs: 10_000 })).toEqual({ result: { has: true, seq, exists: true }, seq });
  });

  it('answers the same as the client that runs the query itself', async () => {
    const { seq } = await client.call('shelf', 'both', 'put', 'Middlemarch');
    const want = { result: { has: true, seq, exists: true }, seq };
    expect(await local.query('shelf', 'both', 'has', 'Middlemarch')).toEqual(want);
    expect(await remote.query('shelf', 'both', 'has', 'Middlemarch')).toEqual(want);
  });

  it.each([
    ['an unknown query', 'nope', undefined, ErrorCode.UnknownOperation, "actor 'shelf' has no query 'nope'"],
    ['an invalid input', 'has', 3, ErrorCode.InvalidInput, 'query has: input must be a string, got 3'],
    ['a query that throws', 'boom', undefined, ErrorCode.HandlerError, "query 'boom' of 'shelf' failed: query bug"],
    ['a result that is not JSON', 'bigint', undefined, ErrorCode.ResultNotSerializable, 'the query returned a result that is not JSON: Do not know how to serialize a BigInt'],
  ])('refuses %s with its code, locally and remotely alike', async (_what, name, input, code, message) => {
    expect(await rejection(remote.query('shelf', 'a', name, input))).toEqual({ code, message });
    expect(await rejection(local.query('shelf', 'a', name, input))).toEqual({ code, message });
  });

  it('refuses a result larger than a NATS message', async () => {
    const err = await rejection(remote.query('shelf', 'a', 'huge'));
    expect(err.code).toBe(ErrorCode.ResultTooLarge);
    expect(err.message).toMatch(/^the query returned a result of \d+ bytes as JSON; the limit is 1048576$/);
  });

  it('refuses what the subject and headers carry when malformed', async () => {
    const ask = async (subject: string, data: string, h?: Record<string, string>) => {
      const hdrs = headers();
      for (const [k, v] of Object.entries(h ?? {})) hdrs.set(k, v);
      return JSON.parse(new TextDecoder().decode((await nc.request(subject, data, { timeout: 5000, headers: hdrs })).data)) as unknown;
    };
    const badKey = (await ask('actors.query.shelf.a%b.count', '')) as { error: { code: string; message: string } };
    expect(badKey.error.code).toBe(ErrorCode.InvalidKey);
    expect(badKey.error.message).toMatch(/^key must be 1-128 characters of \[A-Za-z0-9_=-\].*\(got "a%b"\)$/);
    expect(await ask('actors.query.shelf.a.has', '{"oops"')).toEqual({ error: { code: ErrorCode.InvalidInput, message: 'payload is not valid JSON: {"oops"' } });
    expect(await ask('actors.query.shelf.a.count', '', { [QueryHeaders.MinSeq]: '-1' })).toEqual({
      error: { code: ErrorCode.InvalidInput, message: `header Min-Seq must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}, got "-1"` },
    });
    expect(await ask('actors.query.shelf.a.count', '', { [QueryHeaders.TimeoutMs]: '600000' })).toEqual({
      error: { code: ErrorCode.InvalidInput, message: 'header Timeout-Ms must be an integer from 0 to 60000, got "600000"' },
    });
  });

  it('answers TIMEOUT when Min-Seq is not reached in time', async () => {
    const err = await rejection(remote.query('shelf', 'a', 'count', undefined, { minSeq: 1_000_000, timeoutMs: 300 }));
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(err.message).toMatch(/did not reach seq 1000000/);
  });

  it('never answers on a forged reply subject', async () => {
    const forged = nc.subscribe('$KV.actors.>');
    const seen: string[] = [];
    void (async () => {
      for await (const m of forged) seen.push(m.subject);
    })();
    nc.publish('actors.query.shelf.a.count', '', { reply: '$KV.actors.shelf.victim' });
    // Requests are taken in order: once a later one is answered, the forged one was handled.
    expect((await remote.query('shelf', 'a', 'count')).result).toBe(2);
    await nc.flush();
    forged.unsubscribe();
    expect(seen).toEqual([]);
  });

  it('is UNKNOWN_ACTOR for a type no worker serves', async () => {
    const err = await rejection(remote.query('library', 'a', 'count'));
    expect(err).toEqual({ code: ErrorCode.UnknownActor, message: "no worker answers queries of actor type 'library' (unknown type, or no worker running)" });
  });
});

describe('typed client on a real server', () => {
  it('calls, reads and queries with the definition types', async () => {
    const shelves = createTypedClient(client).actor(shelf);
    const n: number = await shelves.call('typed', 'put', 'Persuasion');
    expect(n).toBe(1);
    const { seq } = await shelves.signal('typed', 'put', 'Beloved');
    const snap = await shelves.read('typed', { minSeq: seq });
    expect(snap.state.books).toEqual(['Persuasion', 'Beloved']);
    expect(await shelves.query('typed', 'count')).toBe(2);
    expect(await shelves.query('typed', 'has', 'Beloved', { minSeq: seq })).toEqual({ has: true, seq, exists: true });
    expect((await shelves.read('never-written')).state).toEqual({ books: [] });
  });

  it('validates input before publishing anything', async () => {
    const shelves = createTypedClient(createActorClient(nc)).actor(shelf);
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(names.stream)).state.last_seq;
    await expect(shelves.signal('unpublished', 'put', '')).rejects.toThrow(new InvalidInputError('put: input must be at least 1 characters long, got the string ""'));
    await expect(shelves.call('unpublished', 'clear', 5 as never)).rejects.toThrow(InvalidInputError);
    expect((await jsm.streams.info(names.stream)).state.last_seq).toBe(before);
  });
});

describe('after the query service stops', () => {
  it('queries with the definition still answer; the rest find no worker', async () => {
    await service.stop();
    expect((await local.query('shelf', 'a', 'count')).result).toBe(2);
    expect((await rejection(remote.query('shelf', 'a', 'count'))).code).toBe(ErrorCode.UnknownActor);
  });
});
