import { connectionOptionsFromEnv, type AnyActorDefinition, type ActorNames } from '@jetactor/actor-runtime';
import { counter } from '@jetactor/counter-actor';
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from './app.js';
import { connectInBackground, type NatsLink } from './nats/connection.js';
import { REDACTED_LOG_PATHS } from './options.js';

/** Options of {@link runGateway}; everything else comes from the environment. */
export interface RunGatewayOptions {
  /** Environment to read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Actor types served. Default: the counter. */
  actors?: readonly AnyActorDefinition[];
  /** Stream, subject and bucket names (tests override them). */
  names?: Partial<ActorNames>;
  /** Logger. Default: pino at `LOG_LEVEL` (info), JSON to stdout. */
  logger?: FastifyBaseLogger;
  /** Extra NATS connection options on top of the environment's. */
  connectionOptions?: Partial<ConnectionOptions>;
  /** The NATS `connect` function; tests replace it. */
  connect?: (opts: ConnectionOptions) => Promise<NatsConnection>;
}

/** A listening gateway. */
export interface RunningGateway {
  /** The Fastify app. */
  readonly app: FastifyInstance;
  /** The background NATS connection. */
  readonly nats: NatsLink;
  /** `http://<host>:<port>` it listens on. */
  readonly url: string;
  /** Stops listening (waiting for in-flight requests), then drains NATS. */
  close(): Promise<void>;
}

function port(env: NodeJS.ProcessEnv): number {
  const raw = env.PORT ?? '3000';
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new RangeError(`PORT must be an integer from 0 to 65535, got '${raw}'`);
  }
  return n;
}

/**
 * Starts the gateway from the environment: `PORT` (3000), `HOST` (127.0.0.1),
 * `LOG_LEVEL` (info), `GATEWAY_AUTH_TOKENS` (comma-separated bearer tokens; unset: no
 * auth), and `NATS_URL` plus credentials as the runtime's `connectionOptionsFromEnv()`
 * reads them. Listens at once; NATS connects in the background and the API answers
 * 503 until it does.
 */
export async function runGateway(opts: RunGatewayOptions = {}): Promise<RunningGateway> {
  const env = opts.env ?? process.env;
  const log =
    opts.logger ??
    pino({
      level: env.LOG_LEVEL ?? 'info',
      base: { service: 'gateway' },
      redact: { paths: [...REDACTED_LOG_PATHS], censor: '[redacted]' },
    });
  const listenPort = port(env);
  const host = env.HOST ?? '127.0.0.1';
  const authTokens = (env.GATEWAY_AUTH_TOKENS ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);

  const nats = connectInBackground({
    connectionOptions: { ...connectionOptionsFromEnv(env, 'jetactor-gateway'), ...opts.connectionOptions },
    actors: opts.actors ?? [counter],
    names: opts.names,
    log,
    connect: opts.connect,
  });
  let app: FastifyInstance;
  try {
    app = await buildApp({
      client: () => nats.client(),
      isReady: () => nats.isConnected(),
      watcher: () => nats.watcher(),
      checkProvisioned: () => nats.checkProvisioned(),
      authTokens,
      loggerInstance: log,
    });
    await app.listen({ port: listenPort, host });
  } catch (err) {
    await nats.close();
    throw err;
  }
  const address = app.server.address();
  const url = typeof address === 'object' && address !== null ? `http://${host}:${address.port}` : `http://${host}:${listenPort}`;
  return {
    app,
    nats,
    url,
    async close() {
      await app.close();
      await nats.close();
    },
  };
}
