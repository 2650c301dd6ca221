import { createActorClient, createActorWatcher, type ActorClient, type ActorWatcher } from '@jetactor/actor-runtime/client';
import { assertServerVersion } from '@jetactor/actor-runtime/worker';
import { defaultNames, isJetStreamNotEnabled, watchActorTypes, type ActorTypeWatch, type ActorNames } from '@jetactor/actor-runtime/internal';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import type { Service } from '@nats-io/services';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { FastifyBaseLogger } from 'fastify';
import { watchedCatalog, type ActorCatalog } from '../catalog/actor-catalog.js';
import { serveCalls, type CallServiceOptions } from './call-service.js';

/** Options of {@link connectInBackground}. */
export interface NatsLinkOptions {
  /** NATS connection options, e.g. the runtime's `connectionOptionsFromEnv()`. `waitOnFirstConnect` and endless reconnects are forced on. */
  connectionOptions: ConnectionOptions;
  /** Stream, subject and bucket names (tests override them). */
  names?: Partial<ActorNames>;
  /** A service with no worker for this long is shown inactive in `/api/status`, ms. Default: the client's (1 hour). */
  serviceInactiveMs?: number;
  /** Logger for connection events. */
  log: FastifyBaseLogger;
  /** Serve `actors.call.<type>.<key>.<op>` requests; `false` to turn off. Default: on, with these options. */
  calls?: false | Omit<CallServiceOptions, 'log' | 'subjectPrefix' | 'inboxPrefix'>;
  /** Pause after a connection attempt that failed for good (bad credentials, old server), in ms. Default 2000. */
  retryDelayMs?: number;
  /** The NATS `connect` function; tests replace it. */
  connect?: (opts: ConnectionOptions) => Promise<NatsConnection>;
}

/** A NATS connection that is made, and remade, in the background. */
export interface NatsLink {
  /** The actor client once connected; `undefined` before. */
  client(): ActorClient | undefined;
  /** True while the connection is up (false before the first connect and while reconnecting). */
  isConnected(): boolean;
  /** The actor state watcher once connected; `undefined` before. */
  watcher(): ActorWatcher | undefined;
  /**
   * What is missing in JetStream: `JetStream` itself, the operations stream, the state or
   * control bucket. Empty when everything is there. Rejects while not connected.
   */
  checkProvisioned(): Promise<string[]>;
  /**
   * The actor types the workers registered (`types.<type>` in the control bucket), kept
   * current by a watch: a type registered later is served at once. Empty before the first
   * connect and while no worker has created the control bucket.
   */
  readonly catalog: ActorCatalog;
  /** Resolves at the first successful connect, once the types registered by then are read. */
  readonly firstConnect: Promise<void>;
  /** Stops serving calls, drains the connection (or gives up connecting). */
  close(): Promise<void>;
}

/**
 * Connects to NATS in the background, so the gateway can start and answer 503 while
 * NATS is down: it waits for the first connect, reconnects forever, and tracks the
 * connection's status for `/readyz`. Creates the actor client and the NATS call
 * service once connected.
 */
export function connectInBackground(opts: NatsLinkOptions): NatsLink {
  const { log } = opts;
  const connectFn = opts.connect ?? natsConnect;
  const retryDelayMs = opts.retryDelayMs ?? 2_000;
  let nc: NatsConnection | undefined;
  let client: ActorClient | undefined;
  let watcher: ActorWatcher | undefined;
  let jsm: { nc: NatsConnection; jsm: Promise<JetStreamManager> } | undefined;
  const names = defaultNames(opts.names);
  let calls: Service | undefined;
  let connected = false;
  let closing = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let onFirstConnect: () => void = () => undefined;
  const catalog = watchedCatalog();
  let types: ActorTypeWatch | undefined;
  let typesTimer: NodeJS.Timeout | undefined;

  /**
   * Watches the registered types on `c`. Until a worker has created the control bucket the
   * watch cannot start: tried again every `retryDelayMs / 2` (at most 1 s), as when it ends.
   */
  const followTypes = async (c: NatsConnection): Promise<void> => {
    if (closing || c.isClosed()) return;
    const again = (): void => {
      clearTimeout(typesTimer);
      typesTimer = setTimeout(() => void followTypes(c), Math.min(1_000, retryDelayMs / 2));
    };
    try {
      const w: ActorTypeWatch = await watchActorTypes(c, {
        names: opts.names,
        onError: (err) => {
          if (closing || types !== w) return;
          log.warn({ err }, 'actor type watch ended; watching again');
          types = undefined;
          again();
        },
      });
      if (closing) {
        w.stop();
        return;
      }
      types?.stop();
      types = w;
      await w.ready;
      catalog.follow(w);
      log.info({ types: catalog.entries().map((e) => e.type) }, 'actor types read');
    } catch (err) {
      log.debug({ err }, 'no actor types registered yet (control bucket missing); trying again');
      again();
    }
  };
  const firstConnect = new Promise<void>((resolve) => {
    onFirstConnect = resolve;
  });

  const watch = async (c: NatsConnection): Promise<void> => {
    for await (const s of c.status()) {
      if (s.type === 'disconnect') {
        connected = false;
        log.warn({ server: s.server }, 'disconnected from NATS; reconnecting');
      } else if (s.type === 'reconnect') {
        connected = true;
        log.info({ server: s.server }, 'reconnected to NATS');
      }
    }
  };

  const attempt = async (): Promise<void> => {
    if (closing) return;
    let c: NatsConnection;
    try {
      c = await connectFn({ ...opts.connectionOptions, waitOnFirstConnect: true, maxReconnectAttempts: -1 });
    } catch (err) {
      log.error({ err }, `cannot connect to NATS; retrying in ${retryDelayMs} ms`);
      retryTimer = setTimeout(() => void attempt(), retryDelayMs);
      return;
    }
    if (closing) {
      await c.close();
      return;
    }
    try {
      const version = assertServerVersion(c);
      nc = c;
      // No actor code here: types, schemas and initial states come from the registry.
      client = createActorClient(c, { names: opts.names, serviceInactiveMs: opts.serviceInactiveMs });
      watcher = createActorWatcher(c, { names: opts.names });
      if (opts.calls !== false) {
        calls = await serveCalls(c, client, { ...opts.calls, subjectPrefix: names.subjectPrefix, inboxPrefix: names.inboxPrefix, log, catalog });
      }
      await followTypes(c);
      connected = true;
      log.info({ server: c.getServer(), version }, 'connected to NATS');
      onFirstConnect();
    } catch (err) {
      log.error({ err }, `NATS server refused; retrying in ${retryDelayMs} ms`);
      await c.close();
      retryTimer = setTimeout(() => void attempt(), retryDelayMs);
      return;
    }
    void watch(c).catch((err: unknown) => log.error({ err }, 'NATS status watch failed'));
    void c.closed().then((err) => {
      connected = false;
      if (closing) return;
      // Closed for good (not a reconnect): e.g. the server revoked the credentials.
      log.error({ err }, 'NATS connection closed; connecting again');
      client?.close();
      client = undefined;
      watcher = undefined;
      types?.stop();
      types = undefined;
      clearTimeout(typesTimer);
      nc = undefined;
      calls = undefined;
      retryTimer = setTimeout(() => void attempt(), retryDelayMs);
    });
  };
  void attempt();

  return {
    client: () => client,
    watcher: () => watcher,
    catalog,
    async checkProvisioned(): Promise<string[]> {
      const c = nc;
      if (c === undefined || c.isClosed()) throw new Error('not connected to NATS');
      if (jsm?.nc !== c) {
        const pending = jetstreamManager(c);
        // A failed attempt (JetStream off) is not cached: it may be turned on later.
        pending.catch(() => {
          if (jsm?.jsm === pending) jsm = undefined;
        });
        jsm = { nc: c, jsm: pending };
      }
      let manager: JetStreamManager;
      try {
        manager = await jsm.jsm;
      } catch (err) {
        if (isJetStreamNotEnabled(err)) return ['JetStream'];
        throw err;
      }
      const wanted: Array<[stream: string, label: string]> = [
        [names.stream, `stream ${names.stream}`],
        [`KV_${names.stateBucket}`, `bucket ${names.stateBucket}`],
        [`KV_${names.controlBucket}`, `bucket ${names.controlBucket}`],
      ];
      const found = await Promise.all(
        wanted.map(async ([stream, label]) => {
          try {
            await manager.streams.info(stream);
            return undefined;
          } catch (err) {
            if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return label;
            throw err;
          }
        }),
      );
      return found.filter((label): label is string => label !== undefined);
    },
    isConnected: () => connected && nc !== undefined && !nc.isClosed(),
    firstConnect,
    async close(): Promise<void> {
      closing = true;
      clearTimeout(retryTimer);
      clearTimeout(typesTimer);
      types?.stop();
      // Stopping the service drains its subscription, which needs the server.
      if (connected) await calls?.stop().catch(() => undefined);
      client?.close();
      const c = nc;
      if (c === undefined || c.isClosed()) return;
      // Draining needs the server; when it is away, close at once instead of waiting.
      if (connected) await c.drain();
      else await c.close();
    },
  };
}
