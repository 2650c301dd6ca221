/**
 * NATS failures as error codes of the table, classified once for the gateway and the CLI: a
 * lost or missing connection is `NATS_UNAVAILABLE`, a request NATS did not answer in time
 * `TIMEOUT`, a missing stream or bucket (or no JetStream) `NOT_PROVISIONED`.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
// JetStreamNotEnabled is exported by nats.js only from its internal entry (3.x);
// tests/nats-internals.test.ts pins that nats.js raises it.
import { jserrors } from '@nats-io/jetstream/internal';
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError as NatsTimeoutError,
} from '@nats-io/nats-core';

/** True for the error nats.js raises when the server or account has no JetStream. */
export function isJetStreamNotEnabled(err: unknown): boolean {
  return err instanceof jserrors.JetStreamNotEnabled;
}

/** A classified NATS failure. */
export interface NatsFailure {
  code: 'NATS_UNAVAILABLE' | 'TIMEOUT' | 'NOT_PROVISIONED';
  message: string;
}

/** True for a closed, draining or failed connection, or a request nobody listens to. */
export function isNatsConnectionError(err: unknown): boolean {
  return (
    err instanceof ClosedConnectionError ||
    err instanceof ConnectionError ||
    err instanceof DrainingConnectionError ||
    err instanceof NoRespondersError ||
    (err instanceof RequestError && err.isNoResponders())
  );
}

/** No stream captures the subject (no responders to a publish) or the stream/bucket is missing. */
export function isNotProvisioned(err: unknown): boolean {
  return isJetStreamNotEnabled(err) || (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound);
}

/** The message of `NATS_UNAVAILABLE`. */
export const NATS_UNAVAILABLE_MESSAGE = 'not connected to NATS; retry later';

/**
 * The code and message of a NATS failure; undefined for anything else (a runtime error with a
 * code of its own, a bug). Branches on classes and codes only.
 */
export function classifyNatsError(err: unknown): NatsFailure | undefined {
  if (isNatsConnectionError(err)) return { code: 'NATS_UNAVAILABLE', message: NATS_UNAVAILABLE_MESSAGE };
  if (err instanceof NatsTimeoutError) return { code: 'TIMEOUT', message: 'NATS did not answer in time' };
  if (isNotProvisioned(err)) {
    return {
      code: 'NOT_PROVISIONED',
      // In a cluster, a stream whose leader is being elected answers like a missing one.
      message:
        'no JetStream stream answered: JetStream is off, the actors stream or buckets do not exist yet (start a worker, which creates them), or a cluster is electing their leader; retry later',
    };
  }
  return undefined;
}
