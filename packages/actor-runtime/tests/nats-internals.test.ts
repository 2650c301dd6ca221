/**
 * Pins what src/connection/nats-internals.ts relies on in nats.js, on a real server: if an
 * upgrade changes it, this fails and nothing else needs to be searched.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type NatsServer } from '@jetactor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isJetStreamNotEnabled, kvWriteSubject, watchConsumerOf } from '../src/internal.js';
import { publishHeaders } from '../src/connection/nats-internals.js';

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe('nats.js internals the runtime relies on', () => {
  it('kvWriteSubject is where a KV bucket stores a key: a plain publish there is what kv.get reads', async () => {
    const kv = await new Kvm(jetstream(nc)).create('pin_kv');
    expect(kvWriteSubject(kv, 'a.b')).toBe('$KV.pin_kv.a.b');
    await jetstream(nc).publish(kvWriteSubject(kv, 'a.b'), '42');
    expect((await kv.get('a.b'))?.string()).toBe('42');
  });

  it('watchConsumerOf names the live consumer behind a KV watch', async () => {
    const kv = await new Kvm(jetstream(nc)).create('pin_watch');
    const it = await kv.watch({ key: '>' });
    const c = watchConsumerOf(it);
    expect(c?.stream).toBe('KV_pin_watch');
    const jsm = await jetstreamManager(nc);
    expect((await jsm.consumers.info(c!.stream, c!.name)).name).toBe(c!.name);
    it.stop();
  });

  it('publishHeaders are headers nats.js publishes as they are: CAS, msg ids and values arrive', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'PIN_HDRS', subjects: ['pinhdrs.>'] });
    const js = jetstream(nc);
    const sub = nc.subscribe('pinhdrs.>', { max: 1 });
    const first = await js.publish('pinhdrs.a', 'x', { headers: publishHeaders([['Nats-Expected-Last-Subject-Sequence', '0'], ['Nats-Msg-Id', 'id-1'], ['X-Pin', 'v 1']]) });
    for await (const m of sub) {
      expect(m.headers?.get('Nats-Msg-Id')).toBe('id-1');
      expect(m.headers?.get('X-Pin')).toBe('v 1');
    }
    // The same msg id is a duplicate; a stale expected sequence is refused (10071).
    const dup = await js.publish('pinhdrs.b', 'y', { headers: publishHeaders([['Nats-Msg-Id', 'id-1']]) });
    expect(dup.duplicate).toBe(true);
    expect(dup.seq).toBe(first.seq);
    const stale = await js.publish('pinhdrs.a', 'z', { headers: publishHeaders([['Nats-Expected-Last-Subject-Sequence', '0']]) }).catch((e: unknown) => e);
    expect((stale as { code?: number }).code).toBe(10071);
    expect((await jsm.streams.info('PIN_HDRS')).state.messages).toBe(1);
    expect(() => publishHeaders([['X-Bad', 'a\r\nNats-Msg-Id: forged']])).toThrow(/CR or LF/);
  });

  it('isJetStreamNotEnabled recognizes a server without JetStream', async () => {
    const plain = await startNatsServer({ jetstream: false });
    const pc = await connect({ servers: plain.url });
    try {
      const err = await jetstreamManager(pc).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isJetStreamNotEnabled(err)).toBe(true);
      expect(isJetStreamNotEnabled(new Error('other'))).toBe(false);
    } finally {
      await pc.close();
      await plain.stop();
    }
  });
});
