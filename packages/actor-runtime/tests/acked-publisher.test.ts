import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type NatsServer } from '@jetactor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckedPublisher, kvWriteSubject } from '../src/processing/acked-publisher.js';

let server: NatsServer;
let nc: NatsConnection;
const enc = new TextEncoder();

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe('AckedPublisher on a real nats-server', () => {
  it('writes KV entries with CAS: create (0), update (revision), and a lost CAS is 10071', async () => {
    const kv = await new Kvm(nc).create('ackpub_cas', { history: 1 });
    const pub = new AckedPublisher(nc);
    const subject = kvWriteSubject(kv, 'counter.a');
    expect(subject).toBe('$KV.ackpub_cas.counter.a');

    const first = await pub.publish(subject, enc.encode('1'), { expectedLastSubjectSequence: 0 });
    expect(first.seq).toBeGreaterThan(0);
    const second = await pub.publish(subject, enc.encode('2'), { expectedLastSubjectSequence: first.seq });
    expect(second.seq).toBeGreaterThan(first.seq);
    expect((await kv.get('counter.a'))?.string()).toBe('2');

    for (const stale of [0, first.seq]) {
      const err = await pub.publish(subject, enc.encode('3'), { expectedLastSubjectSequence: stale }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JetStreamApiError);
      expect((err as JetStreamApiError).code).toBe(JetStreamApiCodes.StreamWrongLastSequence);
    }
    expect((await kv.get('counter.a'))?.string()).toBe('2');
    pub.close();
  });

  it('pipelines many publishes within its window and answers each with its own seq', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'ACKPUB', subjects: ['ackpub.>'] });
    const pub = new AckedPublisher(nc, { window: 16 });
    const acks = await Promise.all(Array.from({ length: 500 }, (_, i) => pub.publish(`ackpub.k${i}`, enc.encode(String(i)))));
    expect(new Set(acks.map((a) => a.seq)).size).toBe(500);
    expect(acks.every((a) => a.stream === 'ACKPUB')).toBe(true);
    expect(pub.inFlight).toBe(0);
    pub.close();
  });

  it('fails a publish no stream stores, and every publish once closed', async () => {
    const pub = new AckedPublisher(nc, { timeoutMs: 2000 });
    await expect(pub.publish('nobody.stores.this', enc.encode('x'))).rejects.toThrow(/no stream stores nobody\.stores\.this/);
    pub.close();
    await expect(pub.publish('ackpub.closed', enc.encode('x'))).rejects.toThrow(/closed/);
  });
});

describe('AckedPublisher window order (fake connection)', () => {
  /** A connection that records publishes and lets the test ack them. */
  function fakeConnection() {
    const sent: Array<{ subject: string; reply: string }> = [];
    let onAck: ((err: Error | null, msg: unknown) => void) | undefined;
    let seq = 0;
    const nc = {
      closed: () => new Promise(() => undefined),
      subscribe: (_subject: string, opts: { callback: (err: Error | null, msg: unknown) => void }) => {
        onAck = opts.callback;
        return { unsubscribe: () => undefined };
      },
      publish: (subject: string, _data: Uint8Array, opts: { reply: string }) => {
        sent.push({ subject, reply: opts.reply });
      },
    };
    const ack = (i: number) => onAck?.(null, { subject: sent[i]!.reply, data: enc.encode(JSON.stringify({ stream: 'S', seq: ++seq })), headers: undefined });
    return { nc: nc as unknown as NatsConnection, sent, ack };
  }

  it('sends publishes that waited for a slot in the order they were made, before later ones', async () => {
    const { nc: fake, sent, ack } = fakeConnection();
    const pub = new AckedPublisher(fake, { window: 2 });
    const names = ['p1', 'p2', 'a', 'b', 'c'];
    const done = names.map((n) => pub.publish(n, enc.encode(n)));
    expect(sent.map((s) => s.subject)).toEqual(['p1', 'p2']);
    // Two slots free up, and two more publishes come in the same turn: they wait behind a, b, c.
    ack(0);
    ack(1);
    done.push(pub.publish('x', enc.encode('x')), pub.publish('y', enc.encode('y')));
    for (let i = 2; i < 7; i++) {
      await new Promise((r) => setImmediate(r));
      ack(i);
    }
    await Promise.all(done);
    expect(sent.map((s) => s.subject)).toEqual(['p1', 'p2', 'a', 'b', 'c', 'x', 'y']);
    pub.close();
  });

  it('gives the slot of a waiter refused by its guard to the next waiter', async () => {
    const { nc: fake, sent, ack } = fakeConnection();
    const pub = new AckedPublisher(fake, { window: 1 });
    const first = pub.publish('first', enc.encode('1'));
    const refused = pub.publish('refused', enc.encode('2'), { guard: () => false });
    const next = pub.publish('next', enc.encode('3'));
    ack(0);
    await expect(refused).rejects.toThrow(/lease not held/);
    await new Promise((r) => setImmediate(r));
    expect(sent.map((s) => s.subject)).toEqual(['first', 'next']);
    ack(1);
    await first;
    expect((await next).seq).toBe(2);
    pub.close();
  });
});
