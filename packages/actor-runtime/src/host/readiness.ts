/** The worker host's `/readyz` check. */
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { defaultNames, type ActorNames } from '../protocol/index.js';
import type { Readiness } from './metrics-server.js';

/** How long `/readyz` waits for the stream and bucket check, in ms. */
const READINESS_TIMEOUT_MS = 2_000;

/** What the host knows of itself: connected to NATS (per the status events) and started. */
export interface HostState {
  connected: boolean;
  started: boolean;
}

/** `/readyz` of the worker: connected, started, and the stream and both buckets exist. */
export function readinessCheck(nc: NatsConnection, state: HostState, partialNames?: Partial<ActorNames>): () => Promise<Readiness> {
  const names = defaultNames(partialNames);
  const wanted = [names.stream, `KV_${names.stateBucket}`, `KV_${names.controlBucket}`];
  return async () => {
    if (nc.isClosed() || !state.connected) return { ready: false, reason: 'not connected to NATS' };
    if (!state.started) return { ready: false, reason: 'worker starting' };
    try {
      const jsm = await jetstreamManager(nc, { timeout: READINESS_TIMEOUT_MS });
      const missing: string[] = [];
      for (const stream of wanted) {
        try {
          await jsm.streams.info(stream);
        } catch (err) {
          if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) missing.push(stream);
          else throw err;
        }
      }
      return missing.length === 0 ? { ready: true } : { ready: false, reason: `missing in JetStream: ${missing.join(', ')}` };
    } catch (err) {
      return { ready: false, reason: `JetStream check failed: ${err instanceof Error ? err.message : String(err)}` };
    }
  };
}
