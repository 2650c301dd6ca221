import type { ActorClient, ActorWatcher } from '@jetactor/actor-runtime/client';
import { definitionsCatalog } from './catalog/definitions-catalog.js';
import type { ActorCatalog } from './catalog/actor-catalog.js';
import { DEADLINE_GRACE_MS } from './routes/handlers.js';
import { SSE_KEEPALIVE_MS } from './routes/live.js';
import { normalizeAuthTokens, type AuthToken } from './auth-config.js';
import type { FastifyBaseLogger } from 'fastify';
import type { LoggerOptions } from 'pino';

/** Logger options: pino's, as Fastify takes them (`level`, `stream`, `redact`, ...). */
export type GatewayLoggerOptions = LoggerOptions & { stream?: { write(msg: string): void } };

/** Options of {@link buildApp}. Defaults come from {@link resolveGatewayOptions}. */
export interface GatewayOptions {
  /**
   * The actor client, or a function that returns it once NATS is connected and
   * `undefined` until then (the gateway answers 503 `NATS_UNAVAILABLE` meanwhile).
   */
  client: ActorClient | (() => ActorClient | undefined);
  /**
   * The actor types served, their operations, input schemas and initial states. `runGateway`
   * passes the types the workers registered (`types.<type>` in the control bucket). Default:
   * the definitions the client knows (`client.definition(type)`), for an app that embeds the
   * gateway next to its actors.
   */
  catalog?: ActorCatalog;
  /**
   * Whether NATS is connected right now; requests that need NATS get 503 while it is false.
   * Default: true whenever a client is available.
   */
  isReady?: () => boolean;
  /** Largest accepted request body, in bytes. Default 65536 (64 KiB). */
  bodyLimit?: number;
  /** Timeout of `?wait=true` calls and `?minSeq` reads without `?timeoutMs`, in ms. Default 5000. */
  defaultTimeoutMs?: number;
  /** Largest accepted `?timeoutMs`, in ms. Default 60000. */
  maxTimeoutMs?: number;
  /**
   * Deadline of every other NATS round trip (signal, delete, plain read, list), in ms.
   * A request never waits longer: it fails with 504 `TIMEOUT` (503 if NATS went away). Default 5000.
   */
  requestTimeoutMs?: number;
  /**
   * Bearer tokens accepted in `Authorization: Bearer <token>` on `/api` routes: a string
   * has every scope, `{ token, scopes }` the listed ones (`read`, `write`, `admin`).
   * Empty or unset: no authentication. `runGateway` allows that only on loopback or with
   * `GATEWAY_AUTH=off`; `buildApp` leaves the policy to its caller.
   */
  authTokens?: readonly (string | AuthToken)[];
  /**
   * Requests per client per minute on `/api` routes, then 429 `RATE_LIMITED` with
   * `Retry-After`. A client is its bearer token, or its IP address without one. 0: off.
   * Default 0 (off): a backend service calling at a few hundred requests a second must not
   * be throttled out of the box; an operator sets a limit for gateways that untrusted
   * clients reach (it also bounds token guessing per address).
   */
  rateLimitPerMinute?: number;
  /** Fastify's logger: `false` (default: silent), `true`, or pino options. Authorization headers are always redacted. */
  logger?: boolean | GatewayLoggerOptions;
  /** A ready pino logger to use instead of {@link GatewayOptions.logger}. */
  loggerInstance?: FastifyBaseLogger;
  /**
   * Watches actor state for the Server-Sent Events routes (`/api/actors/:type/:key/watch`,
   * `/api/watch/:type`), or a function that returns it once NATS is connected. Unset:
   * those routes answer 503 `NATS_UNAVAILABLE`.
   */
  watcher?: ActorWatcher | (() => ActorWatcher | undefined);
  /**
   * Checks the stream and buckets for `GET /readyz`: resolves with what is missing
   * (empty when everything is there). Unset: `/readyz` checks the NATS connection only.
   */
  checkProvisioned?: () => Promise<readonly string[]>;
  /** Serve the OpenAPI document at `/docs/json` and its interactive page at `/docs`. Default true. */
  docs?: boolean;
  /** Serve the dashboard at `/`. Default true. */
  dashboard?: boolean;
  /**
   * Most bytes of changes one Server-Sent Events stream may hold while its client does not
   * read (they wait coalesced, the latest per actor): past it the gateway closes the stream and
   * counts it in `jetactor_gateway_sse_dropped_total`, instead of buffering without bound.
   * Default 262144 (256 KiB).
   */
  sseMaxBufferedBytes?: number;
  /**
   * How often an idle event stream sends a keep-alive comment, in ms. Default 15000
   * (`SSE_KEEPALIVE_MS`). `idleTimeoutMs` must exceed it; a shorter one allows a shorter idle timeout.
   */
  sseKeepAliveMs?: number;
  /**
   * Most ms a client may take to send a request's headers (Node's `headersTimeout`); a
   * connection that sends nothing is closed after it too. Default 10000, at most `receiveTimeoutMs`.
   */
  headersTimeoutMs?: number;
  /**
   * Most ms a client may take to send a whole request, headers and body (Fastify's
   * `requestTimeout`): a body trickled a byte at a time is cut off with 408 `REQUEST_TIMEOUT`.
   * Default 30000.
   */
  receiveTimeoutMs?: number;
  /**
   * A connection on which nothing is sent or received for this long is closed (Fastify's
   * `connectionTimeout`): a client that stops reading its response. Above the longest silent
   * wait (`maxTimeoutMs` plus a second, and `sseKeepAliveMs` between an event stream's
   * keep-alives). Default 120000, or more when those need it.
   */
  idleTimeoutMs?: number;
  /** How long a kept-alive connection may wait for its next request, in ms (Fastify's `keepAliveTimeout`). Default 72000. */
  keepAliveTimeoutMs?: number;
  /** Most open client connections (Node's `server.maxConnections`); more are closed at once and counted. 0: no cap. Default 10000. */
  maxConnections?: number;
}

/** {@link GatewayOptions} with every default filled in. */
export interface ResolvedGatewayOptions {
  readonly getClient: () => ActorClient | undefined;
  readonly catalog: ActorCatalog;
  readonly isReady: () => boolean;
  readonly bodyLimit: number;
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly authTokens: readonly AuthToken[];
  readonly rateLimitPerMinute: number;
  readonly logger: boolean | GatewayLoggerOptions;
  readonly loggerInstance: FastifyBaseLogger | undefined;
  readonly getWatcher: () => ActorWatcher | undefined;
  readonly checkProvisioned: (() => Promise<readonly string[]>) | undefined;
  readonly docs: boolean;
  readonly dashboard: boolean;
  readonly sseMaxBufferedBytes: number;
  readonly sseKeepAliveMs: number;
  readonly headersTimeoutMs: number;
  readonly receiveTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
}

/** The defaults of {@link GatewayOptions}. */
export const GATEWAY_DEFAULTS = {
  sseMaxBufferedBytes: 256 * 1024,
  bodyLimit: 64 * 1024,
  defaultTimeoutMs: 5_000,
  maxTimeoutMs: 60_000,
  requestTimeoutMs: 5_000,
  rateLimitPerMinute: 0,
  headersTimeoutMs: 10_000,
  receiveTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  keepAliveTimeoutMs: 72_000,
  maxConnections: 10_000,
} as const;

/** Paths pino always redacts from gateway logs. */
export const REDACTED_LOG_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
];

function positiveInteger(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`gateway option '${field}' must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function nonNegativeInteger(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`gateway option '${field}' must be an integer >= 0, got ${String(value)}`);
  }
  return value;
}

/** The connection deadlines and cap, checked against each other and against the longest wait of a request. */
function connectionLimits(
  opts: GatewayOptions,
  maxTimeoutMs: number,
  sseKeepAliveMs: number,
): Pick<ResolvedGatewayOptions, 'headersTimeoutMs' | 'receiveTimeoutMs' | 'idleTimeoutMs' | 'keepAliveTimeoutMs' | 'maxConnections'> {
  const receiveTimeoutMs = positiveInteger('receiveTimeoutMs', opts.receiveTimeoutMs, GATEWAY_DEFAULTS.receiveTimeoutMs);
  const headersTimeoutMs = positiveInteger('headersTimeoutMs', opts.headersTimeoutMs, Math.min(GATEWAY_DEFAULTS.headersTimeoutMs, receiveTimeoutMs));
  if (headersTimeoutMs > receiveTimeoutMs) {
    throw new RangeError(`gateway option 'headersTimeoutMs' (${headersTimeoutMs}) must not exceed 'receiveTimeoutMs' (${receiveTimeoutMs})`);
  }
  // A connection is silent while a call or a ?minSeq read waits, and between keep-alives of an event stream.
  const longestSilence = Math.max(maxTimeoutMs + DEADLINE_GRACE_MS, sseKeepAliveMs);
  const idleTimeoutMs = positiveInteger('idleTimeoutMs', opts.idleTimeoutMs, Math.max(GATEWAY_DEFAULTS.idleTimeoutMs, 2 * longestSilence));
  if (idleTimeoutMs <= longestSilence) {
    throw new RangeError(
      `gateway option 'idleTimeoutMs' (${idleTimeoutMs}) must exceed ${longestSilence} ms: 'maxTimeoutMs' (${maxTimeoutMs}) plus ${DEADLINE_GRACE_MS} ms, and the ${sseKeepAliveMs} ms between event-stream keep-alives ('sseKeepAliveMs')`,
    );
  }
  return {
    headersTimeoutMs,
    receiveTimeoutMs,
    idleTimeoutMs,
    keepAliveTimeoutMs: positiveInteger('keepAliveTimeoutMs', opts.keepAliveTimeoutMs, GATEWAY_DEFAULTS.keepAliveTimeoutMs),
    maxConnections: nonNegativeInteger('maxConnections', opts.maxConnections, GATEWAY_DEFAULTS.maxConnections),
  };
}

function watcherGetter(watcher: GatewayOptions['watcher']): () => ActorWatcher | undefined {
  if (watcher === undefined) return () => undefined;
  if (typeof watcher === 'function') return watcher;
  if (watcher !== null && typeof watcher === 'object' && typeof watcher.watch === 'function') return () => watcher;
  throw new TypeError("gateway option 'watcher' must be an ActorWatcher or a function returning one");
}

function optionalFunction<F>(field: string, value: F | undefined): F | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`gateway option '${field}' must be a function`);
  return value;
}

function optionalBoolean(field: string, value: boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`gateway option '${field}' must be a boolean`);
  return value;
}

/**
 * Validates {@link GatewayOptions} once and fills in the defaults. Throws a
 * `TypeError` or `RangeError` that names the offending field.
 */
export function resolveGatewayOptions(opts: GatewayOptions): ResolvedGatewayOptions {
  if (opts === null || typeof opts !== 'object') throw new TypeError('gateway options must be an object');
  const { client } = opts;
  let getClient: () => ActorClient | undefined;
  if (typeof client === 'function') getClient = client;
  else if (client !== null && typeof client === 'object') getClient = () => client;
  else throw new TypeError("gateway option 'client' must be an ActorClient or a function returning one");

  if (opts.isReady !== undefined && typeof opts.isReady !== 'function') {
    throw new TypeError("gateway option 'isReady' must be a function");
  }
  const isReady = opts.isReady ?? (() => getClient() !== undefined);

  const bodyLimit = positiveInteger('bodyLimit', opts.bodyLimit, GATEWAY_DEFAULTS.bodyLimit);
  const maxTimeoutMs = positiveInteger('maxTimeoutMs', opts.maxTimeoutMs, GATEWAY_DEFAULTS.maxTimeoutMs);
  const defaultTimeoutMs = positiveInteger(
    'defaultTimeoutMs',
    opts.defaultTimeoutMs,
    Math.min(GATEWAY_DEFAULTS.defaultTimeoutMs, maxTimeoutMs),
  );
  if (defaultTimeoutMs > maxTimeoutMs) {
    throw new RangeError(
      `gateway option 'defaultTimeoutMs' (${defaultTimeoutMs}) must not exceed 'maxTimeoutMs' (${maxTimeoutMs})`,
    );
  }
  const requestTimeoutMs = positiveInteger('requestTimeoutMs', opts.requestTimeoutMs, GATEWAY_DEFAULTS.requestTimeoutMs);
  const sseKeepAliveMs = positiveInteger('sseKeepAliveMs', opts.sseKeepAliveMs, SSE_KEEPALIVE_MS);

  const authTokens = normalizeAuthTokens(opts.authTokens ?? []);
  const rateLimitPerMinute = nonNegativeInteger('rateLimitPerMinute', opts.rateLimitPerMinute, GATEWAY_DEFAULTS.rateLimitPerMinute);

  if (opts.catalog !== undefined && (opts.catalog === null || typeof opts.catalog.get !== 'function')) {
    throw new TypeError("gateway option 'catalog' must be an ActorCatalog");
  }
  return {
    getClient,
    catalog: opts.catalog ?? definitionsCatalog(getClient),
    isReady,
    bodyLimit,
    defaultTimeoutMs,
    maxTimeoutMs,
    requestTimeoutMs,
    authTokens: Object.freeze(authTokens),
    rateLimitPerMinute,
    logger: opts.logger ?? false,
    loggerInstance: opts.loggerInstance,
    getWatcher: watcherGetter(opts.watcher),
    checkProvisioned: optionalFunction('checkProvisioned', opts.checkProvisioned),
    docs: optionalBoolean('docs', opts.docs, true),
    dashboard: optionalBoolean('dashboard', opts.dashboard, true),
    sseMaxBufferedBytes: positiveInteger('sseMaxBufferedBytes', opts.sseMaxBufferedBytes, GATEWAY_DEFAULTS.sseMaxBufferedBytes),
    sseKeepAliveMs,
    ...connectionLimits(opts, maxTimeoutMs, sseKeepAliveMs),
  };
}
