/**
 * A hostile publisher against replies and dead letters, on a real nats-server (issue 9 §1):
 * a forged reply in a caller's inbox cannot make a call resolve, a forged reply subject on a
 * NATS call cannot make the gateway write into a bucket, and a forged dead letter cannot make
 * a resubmit publish anywhere but to a valid operation subject.
 */
import { createActorClient, type ActorClient } from '@jetactor/actor-runtime/client';
import { createWorker } from '@jetactor/actor-runtime/worker';
import { REPLY_HEADER, type OperationReply } from '@jetactor/actor-runtime/internal';
import { counter } from '@jetactor/counter-actor';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { headers } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { InjectOptions } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGateway } from '../src/run-gateway.js';
import { errorOf } from './support/http.js';
import { startInProcessStack, type InProcessStack } from './support/in-process-stack.js';
import { registerTypes, waitForTypes } from './support/registry.js';

/** Log lines of the worker and the gateway, parsed. */
const logLines: Array<Record<string, unknown>> = [];
const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });

describe('a forged reply in a caller inbox', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let attacker: NatsConnection;
  let jsm: JetStreamManager;
  let client: ActorClient;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    attacker = await connect({ servers: server.url, name: 'attacker' });
    jsm = await jetstreamManager(nc);
    // No worker: the test plays the worker, so it decides when the genuine reply comes.
    await jsm.streams.add({ name: 'HOSTILE_OPS', subjects: ['hostile.*.*.*'] });
    client = createActorClient(nc, { names: { stream: 'HOSTILE_OPS', subjectPrefix: 'hostile' } });
  });

  afterAll(async () => {
    client?.close();
    await attacker?.close();
    await nc?.close();
    await server?.stop();
  });

  /** Resolves with the reply header of the next operation the attacker sees on `hostile.>`. */
  function nextInbox(): Promise<string> {
    return new Promise((resolve) => {
      const sub = attacker.subscribe('hostile.>', {
        callback: (_err, m) => {
          const inbox = m.headers?.get(REPLY_HEADER);
          if (!inbox) return;
          sub.unsubscribe();
          resolve(inbox);
        },
      });
    });
  }

  it('is ignored: the call resolves only with the reply that carries its own seq', async () => {
    const earlier = await client.signal('counter', 'k', 'add', 1);
    await attacker.flush();
    const learned = nextInbox();
    await attacker.flush();
    const calling = client.call('counter', 'k', 'add', 2, { timeoutMs: 10_000 });
    const inbox = await learned;
    expect(inbox.startsWith('_INBOX.')).toBe(true);
    // A replay of an earlier genuine reply, a guess of the next seq, and malformed bodies.
    const forged: unknown[] = [
      { result: 1_000_000, seq: earlier.seq },
      { result: 1_000_000, seq: earlier.seq + 2 },
      { error: { code: 'HANDLER_ERROR', message: 'forged' }, seq: earlier.seq },
      { result: 1_000_000 },
      { result: 1_000_000, seq: '2' },
      'not json',
    ];
    for (const body of forged) attacker.publish(inbox, typeof body === 'string' ? body : JSON.stringify(body));
    await attacker.flush();

    // Now the genuine reply, as a worker sends it once the state is committed.
    const stored = await jsm.streams.getMessage('HOSTILE_OPS', { last_by_subj: 'hostile.counter.k.add' });
    expect(stored?.seq).toBe(earlier.seq + 1);
    const genuine: OperationReply = { result: 3, seq: stored!.seq };
    nc.publish(inbox, JSON.stringify(genuine));
    await expect(calling).resolves.toEqual({ result: 3, seq: earlier.seq + 1 });
  });

  it('keeps a genuine reply that arrives before the publish ack, and only that one', async () => {
    // The inbox is under names.inboxPrefix, and replies are matched per call.
    const tenant = createActorClient(nc, { names: { stream: 'HOSTILE_OPS', subjectPrefix: 'hostile', inboxPrefix: 'tenant.inbox' } });
    try {
      const next = (await jsm.streams.info('HOSTILE_OPS')).state.last_seq + 1;
      const learned = nextInbox();
      await attacker.flush();
      const calling = tenant.call('counter', 'early', 'add', 1, { timeoutMs: 10_000 });
      const inbox = await learned;
      expect(inbox.startsWith('tenant.inbox.')).toBe(true);
      // Both may land before the ack: the forged one with another seq must not win.
      attacker.publish(inbox, JSON.stringify({ result: 'forged', seq: next + 1 }));
      await attacker.flush();
      nc.publish(inbox, JSON.stringify({ result: 'genuine', seq: next }));
      await expect(calling).resolves.toEqual({ result: 'genuine', seq: next });
    } finally {
      tenant.close();
    }
  });
});

describe('the gateway, against a hostile NATS client', () => {
  let stack: InProcessStack;
  let attacker: NatsConnection;
  let state: KV;
  let control: KV;
  const inject = (opts: InjectOptions) => stack.gateway.app.inject(opts);

  beforeAll(async () => {
    stack = await startInProcessStack(log);
    attacker = await connect({ servers: stack.server.url, name: 'attacker' });
    const kvm = new Kvm(jetstream(stack.nc));
    state = await kvm.open('actors');
    control = await kvm.open('actors_ctl');
    expect((await inject({ method: 'POST', url: '/api/actors/counter/victim/add?wait=true', payload: '5', headers: { 'content-type': 'application/json' } })).statusCode).toBe(200);
  });

  afterAll(async () => {
    await attacker?.close();
    await stack?.stop();
  });

  const victimRecord = async () => {
    const e = await state.get('counter.victim');
    return e ? { revision: e.revision, value: e.string() } : null;
  };

  it('does not answer a NATS call on a forged reply subject (nor apply it)', async () => {
    const before = await victimRecord();
    expect(before?.value).toContain('"state":5');
    const forgedReplies = ['$KV.actors.counter.victim', '$KV.actors_ctl.checkpoints.0', 'actors.counter.victim.reset', '_INBOX.*', '_INBOX.caf\u00e9', '_INBOX', ''];
    const since = logLines.length;
    for (const reply of forgedReplies) {
      attacker.publish('actors.call.counter.victim.add', '1', reply === '' ? {} : { reply });
      attacker.publish('actors.call.counter.bystander.add', '1', reply === '' ? {} : { reply });
    }
    await attacker.flush();
    const dropped = await waitFor(
      () => {
        const lines = logLines.slice(since).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('NATS call dropped'));
        return lines.length >= forgedReplies.length * 2 ? lines : null;
      },
      { timeoutMs: 10_000, message: 'the gateway to log every forged call as dropped' },
    );
    expect(dropped.map((l) => l.reply).sort()).toEqual([...forgedReplies, ...forgedReplies].sort());

    // A genuine call after them all still works, and nothing was written anywhere.
    const ok = await attacker.request('actors.call.counter.other.add', '2', { timeout: 5_000 });
    expect(ok.json<{ result: number }>().result).toBe(2);
    expect(await victimRecord()).toEqual(before);
    expect(await state.get('counter.bystander')).toBeNull();
    for (let p = 0; p < 4; p++) {
      const ck = await control.get(`checkpoints.${p}`);
      if (ck) expect(Number.isSafeInteger(ck.json<{ seq: number }>().seq)).toBe(true);
    }
    expect((await inject({ method: 'GET', url: '/api/counter/victim' })).json()).toEqual({ value: 5 });
  });

  it('refuses to resubmit a dead letter whose stored subject is no valid operation subject', async () => {
    const before = await victimRecord();
    const js = jetstream(attacker);
    const forgedSubjects = [
      '$KV.actors.counter.victim',
      '$JS.API.STREAM.PURGE.ACTORS',
      'actors.counter.victim.add.more',
      'actors.counter.*.add',
      'actors.counter.victim',
      'actors.call.victim.add',
      'other.counter.victim.add',
      undefined,
    ];
    const jsm = await jetstreamManager(stack.nc);
    const opsLastSeq = (await jsm.streams.info('ACTORS')).state.last_seq;
    for (const subject of forgedSubjects) {
      const h = headers();
      if (subject !== undefined) h.set('Jetactor-Subject', subject);
      h.set('Jetactor-Seq', '1');
      h.set('Jetactor-Error-Code', 'HANDLER_ERROR');
      h.set('Jetactor-Error-Message', 'forged');
      const ack = await js.publish('actors_dlq.counter.victim.add', '{"state":0,"seq":999999999,"epoch":999999}', { headers: h });
      const res = await inject({ method: 'POST', url: `/api/dlq/${ack.seq}/resubmit` });
      expect({ subject, status: res.statusCode, code: errorOf(res).code }).toEqual({ subject, status: 422, code: 'INVALID_DEAD_LETTER' });
    }
    expect((await jsm.streams.info('ACTORS')).state.last_seq).toBe(opsLastSeq);
    expect(await victimRecord()).toEqual(before);
  });

  it('still resubmits a genuine dead letter to its operation subject', async () => {
    stack.nc.publish('actors.counter.poison.add', '"seven"');
    const dlqSeq = await waitFor(
      async () => {
        const res = await inject({ method: 'GET', url: '/api/dlq?limit=1000' });
        const items = res.json<{ items: Array<{ dlqSeq: number; key: string; code: string }> }>().items;
        return items.find((d) => d.key === 'poison')?.dlqSeq;
      },
      { timeoutMs: 10_000, message: 'the poison operation to become a dead letter' },
    );
    const res = await inject({ method: 'POST', url: `/api/dlq/${dlqSeq}/resubmit` });
    expect(res.statusCode).toBe(202);
    const { seq } = res.json<{ seq: number }>();
    const jsm = await jetstreamManager(stack.nc);
    const stored = await jsm.streams.getMessage('ACTORS', { seq });
    expect(stored?.subject).toMatch(/^\d+\.actors\.counter\.poison\.add$/);
    expect(stored?.string()).toBe('"seven"');
  });
});

describe('another inbox prefix (ACTORS_INBOX_PREFIX)', () => {
  it('is what the gateway creates its inboxes under and answers NATS calls on', async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    const worker = createWorker({ nc, actors: [counter], partitions: 2, leaseTtlMs: 2000, heartbeatMs: 400, logger: log, names: { inboxPrefix: 'tenant.inbox' } });
    const gateway = await runGateway({ env: { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1', ACTORS_INBOX_PREFIX: 'tenant.inbox' }, logger: log });
    const tenant = await connect({ servers: server.url, inboxPrefix: 'tenant.inbox' });
    try {
      await worker.start();
      await registerTypes(nc, worker.id, [counter]);
      await waitFor(() => worker.settled(), { timeoutMs: 15_000, message: 'the worker to own its partitions' });
      await gateway.nats.firstConnect;
      await waitForTypes(gateway.app, [counter.type]);
      // The worker replies only under tenant.inbox: a call through the gateway resolves only if its inbox is there.
      const res = await gateway.app.inject({ method: 'POST', url: '/api/actors/counter/t1/add?wait=true', payload: '4', headers: { 'content-type': 'application/json' } });
      expect(res.json()).toMatchObject({ result: 4 });
      const reply = await tenant.request('actors.call.counter.t1.add', '1', { timeout: 5_000 });
      expect(reply.json<{ result: number }>().result).toBe(5);
      await expect(runGateway({ env: { NATS_URL: server.url, PORT: '0', ACTORS_INBOX_PREFIX: 'bad.*' }, logger: log })).rejects.toThrow(/ACTORS_INBOX_PREFIX/);
    } finally {
      await tenant.close();
      await gateway.close();
      await worker.stop();
      await nc.close();
      await server.stop();
    }
  });
});
