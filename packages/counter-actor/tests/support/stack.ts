import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createActorClient, type ActorClient } from '@jetactor/actor-runtime';
import { startNatsServer, type NatsServer } from '@jetactor/testing';
import { counter } from '../../src/index.js';
import type { WorkerProcess } from './workers.js';

/** A nats-server, a client connection and the worker processes a test file starts. */
export interface Stack {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  client: ActorClient;
  workers: WorkerProcess[];
  /** Stops the workers, the connection and the server. */
  stop(): Promise<void>;
}

/** Starts a nats-server and connects a counter client to it. */
export async function startStack(): Promise<Stack> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const client = createActorClient(nc, { actors: [counter] });
  const workers: WorkerProcess[] = [];
  return {
    server,
    nc,
    js: jetstream(nc),
    jsm: await jetstreamManager(nc),
    client,
    workers,
    async stop() {
      await Promise.all(workers.map((w) => w.proc.stop()));
      client.close();
      await nc.close();
      await server.stop();
    },
  };
}
