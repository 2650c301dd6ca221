import {
  assertServerVersion,
  createActorClient,
  createActorWatcher,
  defaultNames,
  isJetStreamNotEnabled,
  type ActorClient,
  type ActorWatcher,
  type ActorNames,
  type AnyActorDefinition,
} from '@jetactor/actor-runtime';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import type { Service } from '@nats-io/services';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { FastifyBaseLogger } from 'fastify';
import { serveCalls, type CallServiceOptions } from './call-service.js';

/** Options of {@link connectInBackground}. */
export interface NatsLinkOptions {
  /** NATS connection options, e.g. the runtime's `connectionOptionsFromEnv()`. `waitOnFirstConnect` and endless reconnects are forced on. */
  connectionOptions: ConnectionOptions;
  /** Actor definitions the client knows. */
  actors: readonly AnyActorDefinition[];
  /** Stream, subject and bucket names (tests override them). */
  names?: Partial<ActorNames>;
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
  /** Resolves at the first successful connect. */
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
      client = createActorClient(c, { actors: opts.actors, names: opts.names });
      watcher = createActorWatcher(c, { actors: opts.actors, names: opts.names });
      if (opts.calls !== false) {
        calls = await serveCalls(c, client, { ...opts.calls, subjectPrefix: names.subjectPrefix, inboxPrefix: names.inboxPrefix, log });
      }
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
      nc = undefined;
      calls = undefined;
      retryTimer = setTimeout(() => void attempt(), retryDelayMs);
    });
  };
  void attempt();

  return {
    client: () => client,
    watcher: () => watcher,
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
