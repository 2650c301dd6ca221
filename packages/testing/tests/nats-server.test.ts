import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { freePort, startNatsServer, waitFor } from '../src/index.js';
import type { NatsServer } from '../src/index.js';
import { uniqueName } from './helpers.js';

async function streamMessages(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

/** Creates a stream with `count` messages on `server`; returns its name. */
async function fillStream(server: NatsServer, count: number): Promise<string> {
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const stream = uniqueName('S');
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    const js = jetstream(nc);
    for (let i = 1; i <= count; i++) {
      const ack = await js.publish(`${stream}.x`, String(i));
      expect(ack.seq).toBe(i);
    }
    return stream;
  } finally {
    await nc.close();
  }
}

async function countOn(server: NatsServer, stream: string): Promise<number> {
  const nc = await connect({ servers: server.url });
  try {
    return await streamMessages(await jetstreamManager(nc), stream);
  } finally {
    await nc.close();
  }
}

describe('startNatsServer', () => {
  it('starts JetStream on a free port and reports where', async () => {
    const server = await startNatsServer({ monitor: true });
    try {
      expect(server.running).toBe(true);
      expect(server.port).toBeGreaterThan(0);
      expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
      expect(server.pid).toBeGreaterThan(0);
      const nc = await connect({ servers: server.url });
      try {
        expect(nc.info?.jetstream).toBe(true);
        expect(nc.info?.port).toBe(server.port);
      } finally {
        await nc.close();
      }
      const jsz = await server.monitor<{ config: { store_dir: string } }>('/jsz');
      expect(jsz.config.store_dir.startsWith(server.storeDir)).toBe(true);
      expect(server.logs.some((l) => l.includes('Server is ready'))).toBe(true);
    } finally {
      await server.stop();
    }
    expect(server.running).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
  });

  it('restart() keeps the port and the JetStream store', async () => {
    const server = await startNatsServer();
    try {
      const stream = await fillStream(server, 5);
      const { port, pid } = server;
      await server.restart();
      expect(server.port).toBe(port);
      expect(server.pid).not.toBe(pid);
      expect(await countOn(server, stream)).toBe(5);
    } finally {
      await server.stop();
    }
  });

  it('kill() is a crash: nothing cleaned up, and restart() recovers the data', async () => {
    const server = await startNatsServer();
    try {
      const stream = await fillStream(server, 3);
      const exit = await server.kill();
      expect(exit.signal).toBe('SIGKILL');
      expect(server.running).toBe(false);
      expect(existsSync(server.storeDir)).toBe(true);
      await server.restart();
      expect(server.running).toBe(true);
      expect(await countOn(server, stream)).toBe(3);
    } finally {
      await server.stop();
    }
  });

  it('a new server on the storeDir of a kept one sees its streams', async () => {
    const first = await startNatsServer({ keep: true });
    let second: NatsServer | undefined;
    try {
      const stream = await fillStream(first, 4);
      await first.stop();
      expect(existsSync(first.storeDir)).toBe(true);
      second = await startNatsServer({ storeDir: first.storeDir });
      expect(await countOn(second, stream)).toBe(4);
      await second.stop();
      // A store passed in belongs to the caller: stop() must leave it.
      expect(existsSync(first.storeDir)).toBe(true);
    } finally {
      await second?.stop();
      await first.stop();
      await rm(first.dir, { recursive: true, force: true });
    }
  });

  it('listens on a fixed port when asked', async () => {
    const port = await freePort();
    const server = await startNatsServer({ port });
    try {
      expect(server.port).toBe(port);
      const nc = await connect({ servers: `127.0.0.1:${port}` });
      expect(nc.info?.port).toBe(port);
      await nc.close();
    } finally {
      await server.stop();
    }
  });

  it('applies extra config text (token auth)', async () => {
    const server = await startNatsServer({ config: 'authorization { token: "s3cret" }' });
    try {
      await expect(connect({ servers: server.url, reconnect: false })).rejects.toThrow(/Authorization/i);
      const nc = await connect({ servers: server.url, token: 's3cret' });
      expect(nc.info?.auth_required).toBe(true);
      await nc.close();
    } finally {
      await server.stop();
    }
  });

  it('fails start-up with the server log when the config is bad', async () => {
    const started = startNatsServer({ config: 'jetstream { max_memory_store: "lots" } }}}' });
    await expect(started).rejects.toThrow(/exited during start-up[\s\S]*last log lines/);
  });

  it('fails fast with a clear error when the binary cannot run', async () => {
    await expect(startNatsServer({ bin: '/nonexistent/nats-server' })).rejects.toThrow(/could not be started: .*ENOENT/);
  });

  it('pause() freezes the server and resume() thaws it', async () => {
    const server = await startNatsServer();
    try {
      const nc = await connect({ servers: server.url });
      try {
        await server.pause();
        // While frozen a request cannot be answered within its timeout.
        await expect(nc.request('$JS.API.INFO', undefined, { timeout: 300 })).rejects.toThrow();
        server.resume();
        const reply = await waitFor(() => nc.request('$JS.API.INFO', undefined, { timeout: 1000 }), { message: 'JS API reply after resume' });
        expect(reply.json<{ type: string }>().type).toBe('io.nats.jetstream.api.v1.account_info_response');
      } finally {
        await nc.close();
      }
    } finally {
      await server.stop();
    }
  });
});
