import { ActorError } from '@jetactor/actor-runtime';
import { connectionOptionsFromEnv, createActorClient, createActorWatcher, type ActorClient, type ActorSnapshot } from '@jetactor/actor-runtime/client';
import { classifyNatsError } from '@jetactor/actor-runtime/protocol';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { Backend, Snapshot } from '../backend.js';
import { CliError } from '../errors.js';

/** Options of {@link createNatsBackend}. */
export interface NatsBackendOptions {
  /** Server URL(s), comma-separated; overrides `NATS_URL`. */
  url?: string;
  /** Environment for `NATS_URL` and credentials (`NATS_CREDS`, `NATS_USER`/`NATS_PASS`, `NATS_TOKEN`, TLS files). */
  env: NodeJS.ProcessEnv;
  /** Connect timeout, in ms. */
  timeoutMs: number;
}

function snapshotOf(s: ActorSnapshot): Snapshot {
  return { type: s.type, key: s.key, state: s.state, seq: s.seq, revision: s.revision };
}

/** Maps runtime and NATS errors to {@link CliError}s with stable codes. */
function mapError(err: unknown): unknown {
  if (err instanceof CliError) return err;
  if (err instanceof ActorError) return new CliError(err.code, err.message, { cause: err });
  // NATS failures get the gateway's codes (the one classification of protocol/nats-errors.ts).
  const nats = classifyNatsError(err);
  return nats === undefined ? err : new CliError(nats.code, nats.message, { cause: err });
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw mapError(err);
  }
}

/** A backend on NATS: the runtime's actor client and state watcher. */
export async function createNatsBackend(opts: NatsBackendOptions): Promise<Backend> {
  const env = opts.url === undefined ? opts.env : { ...opts.env, NATS_URL: opts.url };
  let nc: NatsConnection;
  try {
    // Fail fast when no server answers: a command line should not wait forever.
    nc = await connect({ ...connectionOptionsFromEnv(env, 'jetactor-cli'), waitOnFirstConnect: false, timeout: opts.timeoutMs });
  } catch (err) {
    const servers = env.NATS_URL ?? 'nats://127.0.0.1:4222';
    throw new CliError('NATS_UNAVAILABLE', `cannot connect to NATS at ${servers}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const client: ActorClient = createActorClient(nc, {});
  const watcher = createActorWatcher(nc);

  return {
    signal: (type, key, op, input, o) => guarded(() => client.signal(type, key, op, input, o)),
    call: (type, key, op, input, o) =>
      guarded(async () => {
        const r = await client.call(type, key, op, input, o);
        return { result: r.result ?? null, seq: r.seq, duplicate: r.duplicate === true };
      }),
    get: (type, key, o) => guarded(async () => snapshotOf(await client.read(type, key, o))),
    list: (type, o) =>
      guarded(async () => {
        const page = await client.list(type, o);
        return { items: page.items.map(snapshotOf), nextCursor: page.nextCursor };
      }),
    watch: (type, key, o) => guarded(() => watcher.watch(type, key, o)),
    status: () => guarded(() => client.status()),
    deadLetters: (o) =>
      guarded(() => {
        if (typeof client.deadLetters !== 'function') {
          throw new CliError('NOT_AVAILABLE', 'dead letters are not available in this version of @jetactor/actor-runtime');
        }
        return client.deadLetters(o);
      }),
    resubmit: (dlqSeq) => guarded(() => client.resubmit(dlqSeq)),
    removeService: (id) => guarded(() => client.removeService(id)),
    schedule: (type, key, op, input, o) => guarded(() => client.schedule(type, key, op, input, o)),
    timers: (type, key) => guarded(() => client.timers(type, key)),
    cancelTimer: (type, key, id, o) => guarded(() => client.cancelTimer(type, key, id, o)),
    async close() {
      client.close();
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
