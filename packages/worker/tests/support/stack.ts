import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createActorClient, type ActorClient, type AnyActorDefinition } from '@jetactor/actor-runtime';
import { spawnWorker, startNatsServer, type ManagedProcess, type NatsServer, type NatsServerOptions, type SpawnWorkerOptions } from '@jetactor/testing';
import { counter } from '@jetactor/counter-actor';

/** A nats-server, a client connection and the worker processes a test file starts. */
export interface Stack {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  client: ActorClient;
  workers: ManagedProcess[];
  /** Starts a worker process (`spawnWorker` of @jetactor/testing) against this server; `stop()` stops it. */
  spawn(id: string, opts: Omit<SpawnWorkerOptions, 'id' | 'natsUrl'>): ManagedProcess;
  /** Stops the workers, the connection and the server. */
  stop(): Promise<void>;
}

/** Options of {@link startStack}. */
export interface StackOptions {
  /** The definitions the client knows (input validation, initial states). Default: the counter. */
  actors?: readonly AnyActorDefinition[];
  /** Options of the nats-server. */
  server?: NatsServerOptions;
  /** Reconnect forever (for tests that restart the server). Default `false`. */
  reconnect?: boolean;
}

/** Starts a nats-server and connects a client (of the counter, unless told) to it. */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const server = await startNatsServer(opts.server);
  const nc = await connect({ servers: server.url, ...(opts.reconnect ? { maxReconnectAttempts: -1, reconnectTimeWait: 250 } : {}) });
  const client = createActorClient(nc, { actors: opts.actors ?? [counter] });
  const workers: ManagedProcess[] = [];
  return {
    server,
    nc,
    js: jetstream(nc),
    jsm: await jetstreamManager(nc),
    client,
    workers,
    spawn(id, opts) {
      const w = spawnWorker({ ...opts, id, natsUrl: server.url });
      workers.push(w);
      return w;
    },
    async stop() {
      await Promise.all(workers.map((w) => w.stop()));
      client.close();
      await nc.close();
      await server.stop();
    },
  };
}
