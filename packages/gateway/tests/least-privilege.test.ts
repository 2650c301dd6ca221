/**
 * Least privilege: nats-server runs with deploy/nats-least-privilege.conf (the file users
 * copy), a worker process and the gateway connect as its `worker` and `gateway` users, and a
 * client as its `publisher` user. Everything works end to end — through the gateway (signals,
 * calls, reads, lists, live state, deletes, dead letters, idempotent retries, status) and over
 * plain NATS as the publisher (core and JetStream publishes, calls, queries) — with no permission
 * violation logged for the worker or the gateway; and the publisher can neither read nor write
 * the buckets, reach the JetStream API, nor read other clients' replies.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startedPartitions } from './support/stack.js';
import { jsonLines, spawnWorker, startNatsServer, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { errors as natsErrors, headers as natsHeaders, type Msg, type Subscription } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';

/** The configuration users copy. */
const CONFIG_FILE = fileURLToPath(new URL('../../../deploy/nats-least-privilege.conf', import.meta.url));
const PASS = { worker: 'lp-Worker-Secret-1', gateway: 'lp-Gateway-Secret-2', publisher: 'lp-Publisher-Secret-3' } as const;
const TOKEN = 'least-privilege-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const PARTITIONS = 8;

let server: NatsServer;
let worker: ManagedProcess;
let gateway: RunningGateway;
let pub: NatsConnection;
const enc = new TextEncoder();
const dec = new TextDecoder();

beforeAll(async () => {
  // The passwords the file takes from variables, defined above its text (as an `include` would be).
  const config = [
    `JETACTOR_WORKER_PASS: "${PASS.worker}"`,
    `JETACTOR_GATEWAY_PASS: "${PASS.gateway}"`,
    `JETACTOR_PUBLISHER_PASS: "${PASS.publisher}"`,
    readFileSync(CONFIG_FILE, 'utf8'),
  ].join('\n');
  server = await startNatsServer({ config });
  worker = spawnWorker({ id: 'w-least-privilege', natsUrl: server.url, partitions: PARTITIONS, env: { NATS_USER: 'worker', NATS_PASS: PASS.worker, METRICS_PORT: '0' } });
  await waitFor(() => startedPartitions(worker).length >= PARTITIONS, {
    timeoutMs: 30_000,
    message: 'the worker (user worker) to own every partition',
  });
  gateway = await runGateway({
    env: { NATS_URL: server.url, PORT: '0', GATEWAY_AUTH_TOKENS: TOKEN, NATS_USER: 'gateway', NATS_PASS: PASS.gateway },
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  });
  await gateway.nats.firstConnect;
  pub = await connect({ servers: server.url, user: 'publisher', pass: PASS.publisher, inboxPrefix: '_INBOX.publisher', name: 'publisher' });
}, 60_000);

afterAll(async () => {
  await pub?.close();
  await gateway?.close();
  await worker?.stop();
  await server?.stop();
});

/** A permission violation, or a request failed by one (nats.js wraps it as the cause of a RequestError). */
function isPermissionViolation(err: unknown): boolean {
  return err instanceof natsErrors.PermissionViolationError || (err instanceof Error && err.cause instanceof natsErrors.PermissionViolationError);
}

/** Permission violations nats-server logged for `user` since log line `since`. */
function violations(user: string, since = 0): string[] {
  // 2.10: `Publish Violation - User "worker", Subject …`; 2.11+: `"JETACTOR/user:worker" - Publish Violation - Subject …`.
  return server.logs.slice(since).filter((l) => / Violation - /.test(l) && (l.includes(`User "${user}"`) || l.includes(`/user:${user}"`)));
}

const inject = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: string, headers: Record<string, string> = {}) =>
  gateway.app.inject({ method, url, headers: { ...AUTH, 'content-type': 'application/json', ...headers }, ...(payload !== undefined ? { payload } : {}) });

/** Reads an actor through the gateway: `{state, seq, revision}`. */
async function read(key: string, minSeq = 0): Promise<{ state: unknown; seq: number; revision: number }> {
  const res = await inject('GET', `/api/actors/counter/${key}?minSeq=${minSeq}`);
  expect(res.statusCode).toBe(200);
  return res.json<{ state: unknown; seq: number; revision: number }>();
}

/** The owner of each partition, from the gateway's status. */
async function owners(): Promise<Array<string | null>> {
  const res = await inject('GET', '/api/status');
  expect(res.statusCode).toBe(200);
  return res.json<{ partitions: Array<{ owner: string | null }> }>().partitions.map((p) => p.owner);
}

/** The first `count` change events of an SSE watch, read over a real socket. */
async function watchChanges(url: string, count: number, opened: () => Promise<void>): Promise<Array<{ state: unknown }>> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { ...AUTH, accept: 'text/event-stream' }, signal: controller.signal });
  expect(res.status).toBe(200);
  const changes: Array<{ state: unknown }> = [];
  let buffer = '';
  let triggered = false;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      buffer += dec.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (block.includes('event: change') && data) changes.push(JSON.parse(data.slice(6)) as { state: unknown });
      }
      if (!triggered && changes.length > 0) {
        triggered = true;
        await opened();
      }
      if (changes.length >= count) break;
    }
  } finally {
    controller.abort();
  }
  return changes;
}

describe('least-privilege NATS users (deploy/nats-least-privilege.conf)', () => {
  it('the worker and the gateway work end to end as their users', async () => {
    const since = server.logs.length;
    // Signals and a call, then reads.
    const s1 = await inject('POST', '/api/counter/lp1/add?value=3');
    expect(s1.statusCode).toBe(202);
    const call = await inject('POST', '/api/actors/counter/lp1/add?wait=true', '4');
    expect(call.statusCode).toBe(200);
    expect(call.json()).toMatchObject({ result: 7 });
    expect((await inject('GET', '/api/counter/lp1')).json()).toEqual({ value: 7 });
    const seq = s1.json<{ seq: number }>().seq;
    expect(await read('lp1', seq)).toMatchObject({ state: 7 });

    // Idempotent retries: the same answer, and a reuse with another input refused (reads the original in the stream).
    const first = await inject('POST', '/api/actors/counter/lp2/add?wait=true', '5', { 'idempotency-key': 'lp-order-1' });
    expect(first.json()).toMatchObject({ result: 5 });
    const retry = await inject('POST', '/api/actors/counter/lp2/add?wait=true', '5', { 'idempotency-key': 'lp-order-1' });
    expect(retry.json()).toMatchObject({ result: 5, duplicate: true });
    const reused = await inject('POST', '/api/actors/counter/lp2/add?wait=true', '6', { 'idempotency-key': 'lp-order-1' });
    expect(reused.statusCode).toBe(422);
    expect(reused.json()).toMatchObject({ error: { code: 'IDEMPOTENCY_KEY_REUSED' } });

    // Live state over SSE (a KV watch as the gateway user).
    const changes = await watchChanges(`${gateway.url}/api/actors/counter/lp1/watch`, 2, async () => {
      expect((await inject('POST', '/api/counter/lp1/add?value=1')).statusCode).toBe(202);
    });
    expect(changes.map((c) => c.state)).toEqual([7, 8]);

    // Listing and status.
    const list = await inject('GET', '/api/actors/counter?limit=10');
    expect(list.statusCode).toBe(200);
    expect(list.json<{ items: Array<{ key: string }> }>().items.map((i) => i.key).sort()).toEqual(['lp1', 'lp2']);
    expect(await owners()).toEqual(Array.from({ length: PARTITIONS }, () => 'w-least-privilege'));

    // A dead letter, listed and resubmitted; a delete.
    const poison = await inject('POST', '/api/actors/counter/lp3/nope?wait=true');
    expect(poison.statusCode).toBe(404);
    pub.publish('actors.counter.lp3.add', enc.encode('"x"'));
    const dlq = await waitFor(
      async () => {
        const page = (await inject('GET', '/api/dlq')).json<{ items: Array<{ dlqSeq: number; key: string; code: string }> }>();
        return page.items.find((i) => i.key === 'lp3');
      },
      { timeoutMs: 10_000, message: 'the dead letter of lp3' },
    );
    expect(dlq.code).toBe('INVALID_INPUT');
    const resubmit = await inject('POST', `/api/dlq/${dlq.dlqSeq}/resubmit`);
    expect(resubmit.statusCode).toBe(202);
    const del = await inject('DELETE', '/api/actors/counter/lp2');
    expect(del.statusCode).toBe(202);
    expect(await read('lp2', del.json<{ seq: number }>().seq)).toMatchObject({ state: 0 });
    expect((await gateway.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);

    // Nothing the worker or the gateway did was refused.
    expect(violations('worker')).toEqual([]);
    expect(violations('gateway', since)).toEqual([]);
  }, 60_000);

  it('the publisher sends operations, calls and queries over plain NATS', async () => {
    pub.publish('actors.counter.lp-pub.add', enc.encode('3'));
    const js = jetstream(pub);
    const ack = await js.publish('actors.counter.lp-pub.add', enc.encode('{"value":2}'));
    expect(await read('lp-pub', ack.seq)).toMatchObject({ state: 5 });
    const reply = await pub.request('actors.call.counter.lp-pub.add', enc.encode('1'), { timeout: 10_000 });
    const called = JSON.parse(dec.decode(reply.data)) as { result: number; seq: number };
    expect(called).toMatchObject({ result: 6 });
    // A read-only query, answered by a worker from the state bucket, waiting for the call's seq.
    const qh = natsHeaders();
    qh.set('Min-Seq', String(called.seq));
    const query = await pub.request('actors.query.counter.lp-pub.get', new Uint8Array(0), { timeout: 10_000, headers: qh });
    expect(JSON.parse(dec.decode(query.data))).toMatchObject({ result: 6 });
    // A reply header on an inbox of its own is answered by the worker.
    const inbox = '_INBOX.publisher.lp-direct';
    const sub = pub.subscribe(inbox, { max: 1 });
    const h = natsHeaders();
    h.set('Jetactor-Reply', inbox);
    await js.publish('actors.counter.lp-pub.add', enc.encode('4'), { headers: h });
    const answers: Msg[] = [];
    for await (const m of sub) answers.push(m);
    expect(JSON.parse(dec.decode(answers[0]?.data))).toMatchObject({ result: 10 });
    expect(violations('publisher')).toEqual([]);
  }, 30_000);

  it('a second worker joins and leaves gracefully; the retention calls are allowed; neither service may delete streams', async () => {
    const since = server.logs.length;
    const second = spawnWorker({ id: 'w-least-privilege-2', natsUrl: server.url, partitions: PARTITIONS, env: { NATS_USER: 'worker', NATS_PASS: PASS.worker, METRICS_PORT: '0' } });
    try {
      await waitFor(async () => owners().then((o) => o.includes('w-least-privilege-2')), { timeoutMs: 30_000, message: 'the second worker to own partitions' });
      const call = await inject('POST', '/api/actors/counter/lp-join/add?wait=true', '2');
      expect(call.json()).toMatchObject({ result: 2 });
    } finally {
      await second.stop();
    }
    // The first worker owns everything again and applies.
    await waitFor(async () => (await owners()).every((o) => o === 'w-least-privilege'), {
      timeoutMs: 20_000,
      message: 'the first worker to own every partition again',
    });
    expect((await inject('POST', '/api/actors/counter/lp-join/add?wait=true', '3')).json()).toMatchObject({ result: 5 });

    // What the retention loop does, as the worker user: the next operation of a partition, a purge below a sequence.
    const wnc = await connect({ servers: server.url, user: 'worker', pass: PASS.worker });
    const gnc = await connect({ servers: server.url, user: 'gateway', pass: PASS.gateway });
    try {
      const wjsm = await jetstreamManager(wnc);
      const next = await wjsm.streams.getMessage('ACTORS', { seq: 1, next_by_subj: '>' } as unknown as { seq: number });
      expect(next?.seq).toBe(1);
      expect((await wjsm.streams.purge('ACTORS', { seq: 1 })).success).toBe(true);
      for (const [nc, subjects] of [
        [wnc, ['$JS.API.STREAM.DELETE.ACTORS', '$JS.API.STREAM.DELETE.KV_actors', '$JS.API.STREAM.PURGE.KV_actors_ctl', '$JS.API.ACCOUNT.PURGE.JETACTOR']],
        [gnc, ['$JS.API.STREAM.DELETE.ACTORS', '$JS.API.STREAM.PURGE.ACTORS', '$JS.API.STREAM.PURGE.KV_actors', '$KV.actors.counter.lp-join', '$KV.actors_ctl.leases.0', '$JS.API.STREAM.CREATE.X']],
      ] as const) {
        for (const subject of subjects) {
          const err = await nc.request(subject, enc.encode('{}'), { timeout: 5_000 }).then(
            () => null,
            (e: unknown) => e,
          );
          expect({ subject, refused: isPermissionViolation(err) }).toEqual({ subject, refused: true });
        }
      }
    } finally {
      await wnc.close();
      await gnc.close();
    }
    expect((await read('lp-join')).state).toBe(5);
    // Only the refusals asked for above.
    expect(violations('worker', since).every((l) => /STREAM\.DELETE|PURGE\.KV_actors_ctl|ACCOUNT\.PURGE/.test(l))).toBe(true);
    expect(violations('worker', since)).toHaveLength(4);
    expect(violations('gateway', since)).toHaveLength(6);
  }, 90_000);

  it('the publisher cannot pre-empt a resubmit or an idempotency key by publishing its msg id first', async () => {
    const since = server.logs.length;
    const js = jetstream(pub);
    // A dead letter an admin will resubmit: an add with bad input, published over plain NATS (a
    // handler's refusal, such as an add out of the safe range, is no dead letter since issue 19).
    await js.publish('actors.counter.lp-pre.add', enc.encode('"five"'));
    const dead = await waitFor(
      async () => (await inject('GET', '/api/dlq?limit=1000')).json<{ items: Array<{ dlqSeq: number; key: string }> }>().items.find((i) => i.key === 'lp-pre'),
      { timeoutMs: 10_000, message: 'the dead letter of lp-pre' },
    );
    // The publisher publishes, first, an operation under each id it can predict: the resubmit's
    // (`resubmit-<stream>-<dlqSeq>`) and an idempotent request's (`<type>.<key>.<Idempotency-Key>`).
    const forged = [
      ['actors.counter.lp-pre.add', `resubmit-ACTORS_DLQ-${dead.dlqSeq}`],
      ['actors.counter.lp-idem.add', 'counter.lp-idem.order-7'],
    ] as const;
    for (const [subject, msgID] of forged) expect((await js.publish(subject, enc.encode('100'), { msgID })).duplicate).toBe(false);

    // The resubmit is published (not taken for the forged message, which was applied: 100) and
    // fails again, as its input is still bad: a new dead letter, marked resubmitted.
    const resubmit = await inject('POST', `/api/dlq/${dead.dlqSeq}/resubmit`);
    expect(resubmit.statusCode).toBe(202);
    expect(resubmit.json()).not.toHaveProperty('duplicate');
    expect(await read('lp-pre', resubmit.json<{ seq: number }>().seq)).toMatchObject({ state: 100 });
    await waitFor(
      async () => (await inject('GET', '/api/dlq?limit=1000')).json<{ items: Array<{ seq: number; resubmitted?: number }> }>().items.some((i) => i.seq === resubmit.json<{ seq: number }>().seq && i.resubmitted === dead.dlqSeq),
      { timeoutMs: 10_000, message: 'the resubmitted operation to fail again, marked resubmitted' },
    );
    // Again: the stream drops it as the resubmit's own duplicate.
    expect((await inject('POST', `/api/dlq/${dead.dlqSeq}/resubmit`)).json()).toMatchObject({ seq: resubmit.json<{ seq: number }>().seq, duplicate: true });

    // The idempotent request is applied once, with its own result, and a retry answers it.
    const first = await inject('POST', '/api/actors/counter/lp-idem/add?wait=true', '7', { 'idempotency-key': 'order-7' });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ result: 107, seq: expect.any(Number) as number });
    const retry = await inject('POST', '/api/actors/counter/lp-idem/add?wait=true', '7', { 'idempotency-key': 'order-7' });
    expect(retry.json()).toEqual({ result: 107, seq: first.json<{ seq: number }>().seq, duplicate: true });
    expect((await inject('POST', '/api/actors/counter/lp-idem/add?wait=true', '8', { 'idempotency-key': 'order-7' })).statusCode).toBe(422);
    expect(await read('lp-idem')).toMatchObject({ state: 107 });
    expect(await read('lp-pre')).toMatchObject({ state: 100 });
    expect(violations('publisher', since)).toEqual([]);
    expect(violations('gateway', since)).toEqual([]);
  }, 60_000);

  it('the publisher cannot read or write the buckets, use the JetStream API or read others’ replies', async () => {
    await inject('POST', '/api/actors/counter/victim/add?wait=true', '42');
    const before = await read('victim');
    expect(before.state).toBe(42);
    const since = server.logs.length;

    // Subscriptions: refused by the server, the subscription closed with the violation.
    for (const subject of ['$KV.>', '$KV.actors.counter.victim', '_INBOX.>', '$JS.API.>', 'actors.>', '$SRV.>']) {
      const sub: Subscription = pub.subscribe(subject);
      const closed = await sub.closed;
      expect({ subject, refused: closed instanceof natsErrors.PermissionViolationError }).toEqual({ subject, refused: true });
    }

    // Requests to the JetStream API: refused before they reach JetStream.
    const denied = async (subject: string, body = ''): Promise<void> => {
      const err = await pub.request(subject, enc.encode(body), { timeout: 5_000 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect({ subject, refused: isPermissionViolation(err) }).toEqual({ subject, refused: true });
    };
    await denied('$JS.API.DIRECT.GET.KV_actors.$KV.actors.counter.victim');
    await denied('$JS.API.DIRECT.GET.KV_actors', '{"last_by_subj":"$KV.actors.counter.victim"}');
    await denied('$JS.API.STREAM.MSG.GET.KV_actors', '{"last_by_subj":"$KV.actors.counter.victim"}');
    await denied('$JS.API.STREAM.PURGE.ACTORS');
    await denied('$JS.API.STREAM.PURGE.KV_actors');
    await denied('$JS.API.STREAM.DELETE.KV_actors');
    await denied('$JS.API.STREAM.DELETE.ACTORS');
    await denied('$JS.API.CONSUMER.CREATE.KV_actors', JSON.stringify({ stream_name: 'KV_actors', config: { deliver_policy: 'all' } }));
    await denied('$JS.API.CONSUMER.CREATE.ACTORS.spy', JSON.stringify({ stream_name: 'ACTORS', config: { name: 'spy' } }));
    await denied('$JS.API.INFO');
    expect(isPermissionViolation(await jetstreamManager(pub).then(() => null, (e: unknown) => e))).toBe(true);

    // Plain publishes into the buckets: refused (reported asynchronously), the record unchanged.
    const errors: string[] = [];
    const watching = (async () => {
      for await (const s of pub.status()) {
        if (s.type === 'error' && s.error instanceof natsErrors.PermissionViolationError) errors.push(s.error.subject);
      }
    })();
    const forged = ['$KV.actors.counter.victim', '$KV.actors_ctl.checkpoints.0', '$KV.actors_ctl.leases.0', 'actors_dlq.counter.victim.add'];
    for (const subject of forged) pub.publish(subject, enc.encode('{"state":0,"seq":1,"epoch":1}'));
    await pub.flush();
    await waitFor(() => forged.every((s) => errors.includes(s)), { timeoutMs: 5_000, message: 'a permission violation for each forged publish' });
    // The JetStream way to the same subject is refused as well.
    await denied('$KV.actors.counter.victim', '{"state":0}');

    // A forged reply header on an allowed operation: applied to nothing of the victim's, answered to nobody.
    const h = natsHeaders();
    h.set('Jetactor-Reply', '$KV.actors.counter.victim');
    const ack = await jetstream(pub).publish('actors.counter.lp-forger.add', enc.encode('1'), { headers: h });
    expect(await read('lp-forger', ack.seq)).toMatchObject({ state: 1 });

    expect(await read('victim')).toEqual(before);
    // (The record is written before the refusal is logged: wait for the line.)
    await waitFor(() => jsonLines(worker).some((l) => l.seq === ack.seq && String(l.msg).startsWith('reply header is not a literal inbox subject')), {
      timeoutMs: 5_000,
      message: 'the worker to log the refused reply header',
    });
    // The server logged each refusal for the publisher, and none for the others.
    expect(violations('publisher', since).length).toBeGreaterThanOrEqual(forged.length + 6);
    expect(violations('worker', since)).toEqual([]);
    expect(violations('gateway', since)).toEqual([]);
    void watching;
  }, 60_000);
});
