/**
 * The whole stack in this process: a real nats-server, a worker hosting the counter (or given actors)
 * (4 partitions, short lease) and the gateway as `npm run gateway` starts it.
 */
import { type AnyActorDefinition } from '@jetactor/actor-runtime';
import { createWorker, type Worker, type WorkerHooks } from '@jetactor/actor-runtime/worker';
import { counter } from '@jetactor/counter-actor';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { runGateway, type RunningGateway } from '../../src/run-gateway.js';
import { registerTypes, waitForTypes } from './registry.js';

/** What {@link startInProcessStack} started. */
export interface InProcessStack {
  server: NatsServer;
  /** The worker's connection; it reconnects by itself when the server restarts. */
  nc: NatsConnection;
  worker: Worker;
  gateway: RunningGateway;
  /** Closes the gateway, stops the worker, closes the connection and stops the server. */
  stop(): Promise<void>;
}

/** Starts server, worker (settled, hosting `actors`) and gateway (connected, serving them). */
export async function startInProcessStack(log: Logger, hooks?: WorkerHooks, actors: readonly AnyActorDefinition[] = [counter]): Promise<InProcessStack> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const worker = createWorker({ nc, actors, partitions: 4, leaseTtlMs: 2000, heartbeatMs: 400, logger: log, hooks });
  await worker.start();
  await registerTypes(nc, worker.id, actors);
  await waitFor(() => worker.settled(), { timeoutMs: 15_000, message: 'the worker to own its partitions' });
  const gateway = await runGateway({ env: { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1' }, logger: log });
  await gateway.nats.firstConnect;
  await waitForTypes(gateway.app, actors.map((a) => a.type));
  return {
    server,
    nc,
    worker,
    gateway,
    async stop() {
      await gateway.close();
      await worker.stop();
      await nc.close();
      await server.stop();
    },
  };
}
