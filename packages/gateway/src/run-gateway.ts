import { connectionOptionsFromEnv, type ActorNames } from '@jetactor/actor-runtime';
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from './app.js';
import { WEAK_TOKEN_LENGTH, decideAuth } from './auth-config.js';
import { connectInBackground, type NatsLink } from './nats/connection.js';
import { gatewayEnv } from './env.js';
import { GATEWAY_DEFAULTS, REDACTED_LOG_PATHS } from './options.js';

/** Options of {@link runGateway}; everything else comes from the environment. */
export interface RunGatewayOptions {
  /** Environment to read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
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

/**
 * Starts the gateway from the environment: `PORT` (3000), `HOST` (127.0.0.1),
 * `LOG_LEVEL` (info), `GATEWAY_AUTH_TOKENS` (`tokenA:read,write;tokenB:read`, or a
 * plain comma list of all-scope tokens), `GATEWAY_AUTH` (`off` to run without auth on
 * purpose; without tokens and without it, only a loopback `HOST` may start, with auth
 * off and a loud warning), `GATEWAY_RATE_LIMIT` (requests per client per minute; default
 * 0 = off), the connection deadlines and cap (`GATEWAY_HEADERS_TIMEOUT_MS`,
 * `GATEWAY_RECEIVE_TIMEOUT_MS`, `GATEWAY_IDLE_TIMEOUT_MS`, `GATEWAY_KEEP_ALIVE_TIMEOUT_MS`,
 * `GATEWAY_MAX_CONNECTIONS`), `ACTORS_INBOX_PREFIX` (the inbox prefix calls are answered under, as the
 * workers'; default `_INBOX`), and `NATS_URL` plus credentials as the runtime's `connectionOptionsFromEnv()`
 * reads them. Listens at once; NATS connects in the background and the API answers
 * 503 until it does. The gateway has no actor code: it serves the actor types that running
 * workers registered in the control bucket (404 `UNKNOWN_ACTOR` for any other type).
 */
export async function runGateway(opts: RunGatewayOptions = {}): Promise<RunningGateway> {
  const env = opts.env ?? process.env;
  const settings = gatewayEnv(env);
  const log =
    opts.logger ??
    pino({
      level: settings.LOG_LEVEL,
      base: { service: 'gateway' },
      redact: { paths: [...REDACTED_LOG_PATHS], censor: '[redacted]' },
    });
  const listenPort = settings.PORT;
  const host = settings.HOST;
  const authDecision = decideAuth(env, host);
  const authTokens = authDecision.mode === 'tokens' ? authDecision.tokens : [];
  const rateLimitPerMinute = settings.GATEWAY_RATE_LIMIT ?? GATEWAY_DEFAULTS.rateLimitPerMinute;
  // Unset ones keep the gateway's defaults.
  const limits = {
    headersTimeoutMs: settings.GATEWAY_HEADERS_TIMEOUT_MS,
    receiveTimeoutMs: settings.GATEWAY_RECEIVE_TIMEOUT_MS,
    idleTimeoutMs: settings.GATEWAY_IDLE_TIMEOUT_MS,
    keepAliveTimeoutMs: settings.GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
    maxConnections: settings.GATEWAY_MAX_CONNECTIONS,
  };
  if (authDecision.mode === 'off') {
    log.warn(
      { auth: 'off', host, reason: authDecision.reason },
      authDecision.reason === 'explicit'
        ? 'AUTH IS OFF (GATEWAY_AUTH=off): anyone who can reach this gateway can read and change every actor'
        : `AUTH IS OFF: listening on loopback (${host}) only, so only this machine can call it; set GATEWAY_AUTH_TOKENS to require bearer tokens`,
    );
  } else {
    log.info({ auth: 'tokens', tokens: authTokens.map((t, i) => ({ id: `token-${i + 1}`, scopes: t.scopes })) }, 'bearer-token auth is on');
    const weak = authTokens.filter((t) => t.token.length < WEAK_TOKEN_LENGTH).length;
    if (weak > 0) log.warn({ weak }, `${weak} auth token(s) shorter than ${WEAK_TOKEN_LENGTH} characters: use long random tokens`);
  }

  const nats = connectInBackground({
    // noAsyncTraces: nats.js would otherwise build two Errors per request (a RequestError and
    // a TimeoutError, for their stack traces) whether or not the request fails: a third of the
    // gateway's CPU per signal. A failed request keeps its error class, code and cause (what
    // the gateway answers from); only the stack of a NATS error in the log loses the caller.
    connectionOptions: { ...connectionOptionsFromEnv(env, 'jetactor-gateway'), noAsyncTraces: true, ...opts.connectionOptions },
    names: settings.ACTORS_INBOX_PREFIX === undefined ? opts.names : { ...opts.names, inboxPrefix: settings.ACTORS_INBOX_PREFIX },
    serviceInactiveMs: settings.JETACTOR_SERVICE_INACTIVE_MS,
    log,
    connect: opts.connect,
  });
  let app: FastifyInstance;
  try {
    app = await buildApp({
      client: () => nats.client(),
      catalog: nats.catalog,
      isReady: () => nats.isConnected(),
      watcher: () => nats.watcher(),
      checkProvisioned: () => nats.checkProvisioned(),
      authTokens,
      rateLimitPerMinute,
      ...limits,
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
