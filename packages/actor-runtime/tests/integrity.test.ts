/**
 * Integrity against hostile publishers and hostile handlers, on a real nats-server: forged
 * reply headers, handlers that return what cannot be stored or change their state in place,
 * reads that must not write, a cache smaller than one batch.
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { createConnection } from 'node:net';
import { headers, type Msg, type Subscription } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActorClient, createWorker, ErrorCode, OperationFailedError, REPLY_HEADER, type ActorClient, type Checkpoint, type Worker } from '../src/internal.js';
import { hostile, pushList } from './support/hostile-actors.js';
import { testCounter } from './support/test-counter.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const actors = [testCounter, pushList, hostile];
let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let worker: Worker;
let client: ActorClient;
let state: KV;
let control: KV;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  worker = createWorker({ nc, actors, partitions: 4, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
  await worker.start();
  await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'worker to take its partitions' });
  client = createActorClient(nc, { actors });
  state = await new Kvm(js).open('actors');
  control = await new Kvm(js).open('actors_ctl');
});

afterAll(async () => {
  client?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

/** Publishes an operation with a reply header and returns its stream seq. */
async function publishWithReply(subject: string, payload: string, reply: string): Promise<number> {
  const h = headers();
  h.set(REPLY_HEADER, reply);
  return (await js.publish(subject, payload, { headers: h })).seq;
}

/** Collects every message on `subject` whose payload looks like an operation reply. */
function replyLeaks(subject: string): { sub: Subscription; leaks: Msg[] } {
  const leaks: Msg[] = [];
  const sub = nc.subscribe(subject, {
    callback: (_err, m) => {
      const text = m.string();
      if (text.startsWith('{"result"') || text.startsWith('{"error"')) leaks.push(m);
    },
  });
  return { sub, leaks };
}

async function callError(type: string, key: string, op: string, input?: unknown): Promise<OperationFailedError> {
  try {
    await client.call(type, key, op, input);
  } catch (err) {
    if (err instanceof OperationFailedError) return err;
    throw err;
  }
  throw new Error(`${type}/${key}/${op} did not fail`);
}

describe('forged reply headers', () => {
  it('never publishes a reply outside a literal inbox, applies the operation, and still answers the rest of the batch', async () => {
    await client.call('counter', 'victim', 'add', 5);
    const before = await state.get('counter.victim');
    const kvLeaks = replyLeaks('$KV.>');
    const opLeaks = replyLeaks('actors.>');
    const forged = [
      '$KV.actors.counter.victim',
      '$KV.actors_ctl.checkpoints.0',
      '$KV.actors_ctl.checkpoints.1',
      '$JS.API.STREAM.DELETE.ACTORS',
      '$SYS.REQ.SERVER.PING',
      'actors.counter.victim.add',
      '_INBOX.with space',
      '_INBOX.*',
      '_INBOX.>',
      '_INBOX',
      '_INBOX.',
      '_INBOX..x',
      '_inbox.lowercase',
      `_INBOX.${'a'.repeat(5000)}`,
      '_INBOX.x.$KV',
    ];
    const legit = `_INBOX.legit${Date.now()}.1`;
    const legitReplies: Msg[] = [];
    const legitSub = nc.subscribe(legit, {
      callback: (_e, m) => {
        legitReplies.push(m);
      },
    });
    const seqs = await Promise.all(forged.map((r) => publishWithReply('actors.counter.attacker.add', '1', r)));
    const legitSeq = await publishWithReply('actors.counter.attacker.add', '1', legit);
    // Every forged operation is applied (only its reply is refused).
    const after = await client.read('counter', 'attacker', { minSeq: legitSeq, timeoutMs: 10_000 });
    expect(after.state).toBe(forged.length + 1);
    await waitFor(() => legitReplies.length === 1, { timeoutMs: 5000, message: 'the legitimate reply' });
    expect(JSON.parse(legitReplies[0]!.string())).toEqual({ result: forged.length + 1, seq: legitSeq });
    await nc.flush();
    expect(kvLeaks.leaks.map((m) => m.subject)).toEqual([]);
    expect(opLeaks.leaks.map((m) => m.subject)).toEqual([]);
    // The victim's record and every checkpoint are what the worker wrote, nothing else.
    const victim = await state.get('counter.victim');
    expect(victim?.revision).toBe(before?.revision);
    expect((await client.read('counter', 'victim')).state).toBe(5);
    for (let p = 0; p < 4; p++) {
      const ck = await control.get(`checkpoints.${p}`);
      if (!ck || ck.operation !== 'PUT') continue;
      const value = ck.json<Checkpoint>();
      expect(Number.isSafeInteger(value.seq) && Number.isSafeInteger(value.epoch)).toBe(true);
    }
    expect(Math.max(...seqs)).toBeLessThan(legitSeq);
    expect((await client.call('counter', 'victim', 'add', 1)).result).toBe(6);
    kvLeaks.sub.unsubscribe();
    opLeaks.sub.unsubscribe();
    legitSub.unsubscribe();
  });
});

describe('handlers that return what cannot be stored', () => {
  it.each([
    ['bigint', undefined, ErrorCode.StateNotSerializable],
    ['cycle', undefined, ErrorCode.StateNotSerializable],
    ['fnState', undefined, ErrorCode.StateNotSerializable],
    ['huge', 2 * 1024 * 1024, ErrorCode.StateTooLarge],
    ['badResult', undefined, ErrorCode.ResultNotSerializable],
    ['junk', undefined, ErrorCode.HandlerError],
    ['noState', undefined, ErrorCode.HandlerError],
  ])('%s is an error result and a dead letter; the state stays and the partition moves on', async (op, input, code) => {
    const key = `bad-${op}`;
    await client.call('hostile', key, 'inc');
    const err = await callError('hostile', key, op, input);
    expect(err.code).toBe(code);
    // The same key, right after, in order: the partition is not stuck and the state is unchanged.
    expect((await client.call('hostile', key, 'inc')).result).toBe(2);
    expect((await client.read('hostile', key)).state).toEqual({ n: 2 });
    const dlq = await waitFor(
      async () => (await client.deadLetters({ limit: 1000 })).items.find((d) => d.key === key),
      { timeoutMs: 5000, message: `a dead letter for ${key}` },
    );
    expect(dlq).toMatchObject({ op, code });
  });

  it('keeps a state just under the limit and refuses one just over it', async () => {
    const limit = nc.info!.max_payload - 1024;
    const ok = await client.call('hostile', 'near-limit', 'huge', limit - 2048);
    expect(ok.result).toBe(1);
    expect(((await client.read('hostile', 'near-limit')).state as { blob: string }).blob).toHaveLength(limit - 2048);
    expect((await callError('hostile', 'near-limit', 'huge', limit)).code).toBe(ErrorCode.StateTooLarge);
  });
});

describe('handlers that change their state in place', () => {
  it('loses no write of an array-pushing handler, and a throw after a change leaves no trace', async () => {
    for (let i = 1; i <= 3; i++) expect((await client.call('pushlist', 'p1', 'push', i * 10)).result).toBe(i);
    const err = await callError('pushlist', 'p1', 'pushThenThrow');
    expect(err.code).toBe(ErrorCode.HandlerError);
    expect((await client.call('pushlist', 'p1', 'get')).result).toEqual({ items: [10, 20, 30] });
    // What KV holds, not only what the worker's cache holds.
    const stored = (await state.get('pushlist.p1'))!.json<{ state: unknown }>();
    expect(stored.state).toEqual({ items: [10, 20, 30] });
  });

  it('caches exactly what KV stores: Date, Map, undefined and NaN come back as their JSON', async () => {
    await client.call('hostile', 'odd', 'odd');
    const stored = (await state.get('hostile.odd'))!.json<{ state: Record<string, unknown> }>().state;
    expect(stored).toEqual({ n: 0, at: '1970-01-01T00:00:00.000Z', map: {}, nan: null });
    // The next handler sees the same thing, from the cache.
    expect((await client.call('hostile', 'odd', 'inspect')).result).toEqual({ at: 'string', map: '{}', hasGone: false, nan: null });
  });
});

describe('reads that must not write', () => {
  it('a read-only operation on a never-written actor creates no record', async () => {
    const { seq } = await client.call('counter', 'ghost', 'get');
    expect(seq).toBeGreaterThan(0);
    expect(await state.get('counter.ghost')).toBeNull();
    expect((await client.call('hostile', 'ghost2', 'get')).result).toEqual({ n: 0 });
    expect(await state.get('hostile.ghost2')).toBeNull();
  });

  it('a read-only operation on a deleted actor does not bring it back', async () => {
    await client.call('counter', 'phoenix', 'add', 2);
    const { seq } = await client.delete('counter', 'phoenix');
    await client.read('counter', 'phoenix', { minSeq: seq });
    expect((await client.call('counter', 'phoenix', 'get')).result).toBe(0);
    await waitFor(async () => (await state.get('counter.phoenix')) === null, { timeoutMs: 5000, message: 'the tombstone to go' });
    expect((await client.list('counter', { prefix: 'phoenix' })).items).toEqual([]);
  });
});

describe('a record cache smaller than one batch', () => {
  it('applies every operation with MAX_CACHED_RECORDS=1', async () => {
    const small = createWorker({
      nc,
      actors,
      names: { stream: 'SMALL', subjectPrefix: 'small', stateBucket: 'small', controlBucket: 'small_ctl', dlqStream: 'SMALL_DLQ', outcomeBucket: 'small_out' },
      partitions: 2,
      maxCachedRecords: 1,
      leaseTtlMs: 2000,
      heartbeatMs: 400,
      logger: log,
    });
    await small.start();
    try {
      await waitFor(() => small.settled(), { timeoutMs: 10_000, message: 'the small worker to take its partitions' });
      const smallClient = createActorClient(nc, { actors, names: { stream: 'SMALL', subjectPrefix: 'small', stateBucket: 'small', controlBucket: 'small_ctl', outcomeBucket: 'small_out' } });
      const acks = [];
      for (let i = 0; i < 400; i++) acks.push(js.publish(`small.counter.k${i % 50}.add`, '1'));
      const last = Math.max(...(await Promise.all(acks)).map((a) => a.seq));
      await waitFor(async () => (await smallClient.status()).partitions.every((p) => p.checkpoint > 0) && (await smallClient.status()).partitions.some((p) => p.checkpoint >= last), {
        timeoutMs: 15_000,
        message: 'the small worker to apply every operation',
      });
      for (let k = 0; k < 50; k++) expect((await smallClient.read('counter', `k${k}`)).state).toBe(8);
      smallClient.close();
    } finally {
      await small.stop();
    }
  });
});

/** Sends raw NATS protocol lines (after CONNECT) and waits for the server's PONG. */
async function rawProtocol(port: number, lines: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('INFO') && !buf.includes('sent')) {
        buf += 'sent';
        sock.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n${lines}PING\r\n`);
      }
      if (buf.includes('PONG')) {
        sock.end();
        resolve();
      }
    });
    sock.on('error', reject);
  });
}

/** An HPUB frame with a raw header block (`NATS/1.0` line and header lines, unchecked). */
function hpub(subject: string, headerLines: string[], payload: string): string {
  const hdr = `NATS/1.0\r\n${headerLines.map((l) => `${l}\r\n`).join('')}\r\n`;
  return `HPUB ${subject} ${Buffer.byteLength(hdr)} ${Buffer.byteLength(hdr) + Buffer.byteLength(payload)}\r\n${hdr}${payload}\r\n`;
}

describe('what a raw-protocol publisher or a hostile handler can store', () => {
  it('a malformed header block (name with a space, non-ASCII name, bare newline in a value) does not block the partition', async () => {
    const key = 'rawhdr';
    await client.call('counter', key, 'add', 1);
    await rawProtocol(server.port, [
      hpub(`actors.counter.${key}.add`, ['Bad Key: x'], '1'),
      hpub(`actors.counter.${key}.add`, ['Ключ: x'], '1'),
      hpub(`actors.counter.${key}.add`, ['Jetactor-Reply: _INBOX.a\nb: c'], '1'),
    ].join(''));
    // In order after them on the same key: applied, so the partition moved past all three.
    const after = await client.call('counter', key, 'add', 1, { timeoutMs: 10_000 });
    expect(after.result).toBeGreaterThanOrEqual(2);
    expect((await client.read('counter', key)).state).toBe(after.result);
  });

  it('a subject near the control-line limit is a dead letter, not a dropped worker connection', async () => {
    for (const len of [4000, 4030, 4060]) nc.publish(`actors.counter.${'k'.repeat(len)}.add`, '1');
    await nc.flush();
    expect((await client.call('counter', 'after-long', 'add', 1, { timeoutMs: 10_000 })).result).toBe(1);
    const dlq = await waitFor(
      async () => (await client.deadLetters({ limit: 1000 })).items.filter((d) => d.code === ErrorCode.InvalidKey && d.subject.length > 4000),
      { timeoutMs: 10_000, message: 'dead letters of the long keys' },
    );
    expect(dlq.length).toBeGreaterThanOrEqual(1);
  });

  it('an error code with a newline and a 2 MiB error message are error results, and the partition moves on', async () => {
    const a = await callError('hostile', 'errs', 'badCode');
    expect(a.code).toBe(ErrorCode.HandlerError);
    let b: unknown;
    try {
      await client.call('hostile', 'errs', 'hugeError', undefined, { idempotencyKey: 'huge-1' });
    } catch (err) {
      b = err;
    }
    expect(b).toBeInstanceOf(OperationFailedError);
    expect((b as OperationFailedError).message.length).toBeLessThan(4096);
    expect((await client.call('hostile', 'errs', 'inc')).result).toBe(1);
  });
});
