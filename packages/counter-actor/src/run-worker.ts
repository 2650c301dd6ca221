import { connect } from '@nats-io/transport-node';
import {
  connectionOptionsFromEnv,
  createWorker,
  type AnyActorDefinition,
  type Worker,
} from '@jetactor/actor-runtime';
import { pino, type Logger } from 'pino';
import { counter } from './counter.js';

/** Options of {@link runWorker}; everything else comes from the environment. */
export interface RunWorkerOptions {
  actors?: readonly AnyActorDefinition[];
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

function intEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got '${v}'`);
  return n;
}

/**
 * Connects to NATS from the environment and runs a worker until SIGINT/SIGTERM, then
 * hands its partitions over and exits. Environment: `NATS_URL` and credentials,
 * `ACTORS_PARTITIONS`, `ACTORS_REPLICAS`, `WORKER_ID`, `LEASE_TTL_MS`, `HEARTBEAT_MS`,
 * `MAX_BATCH`, `MAX_CACHED_RECORDS`, `LOG_LEVEL`.
 */
export async function runWorker(opts: RunWorkerOptions = {}): Promise<Worker> {
  const env = opts.env ?? process.env;
  const log = opts.logger ?? pino({ level: env.LOG_LEVEL ?? 'info', base: { service: 'worker' } });
  const nc = await connect(connectionOptionsFromEnv(env, 'jetactor-worker'));
  log.info({ server: nc.getServer() }, 'connected to NATS');
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ status: s.type }, `NATS ${s.type}`);
    }
  })();
  const worker = createWorker({
    nc,
    actors: opts.actors ?? [counter],
    id: env.WORKER_ID || undefined,
    partitions: intEnv(env, 'ACTORS_PARTITIONS'),
    replicas: intEnv(env, 'ACTORS_REPLICAS'),
    leaseTtlMs: intEnv(env, 'LEASE_TTL_MS'),
    heartbeatMs: intEnv(env, 'HEARTBEAT_MS'),
    maxBatch: intEnv(env, 'MAX_BATCH'),
    maxCachedRecords: intEnv(env, 'MAX_CACHED_RECORDS'),
    logger: log,
  });
  await worker.start();
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    try {
      await worker.stop();
      await nc.drain();
    } finally {
      clearTimeout(force);
      process.exit(0);
    }
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  return worker;
}
