/** How a binding mover publishes one captured message: the headers it keeps, and retries until the operations stream stores it. */
import { JetStreamApiError, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { FencedError } from '../protocol/index.js';
import type { AckedPublisher } from './acked-publisher.js';

/** Longest pause between two tries of a refused publish (ms). */
const MAX_BACKOFF_MS = 1000;

/** The mover was stopped: what it was doing ends quietly. */
export class Stopped extends Error {}

/**
 * The headers a moved message keeps: the publisher's own, less every `Nats-*` header (those the
 * capture stream honoured already: msg id, expectations; and those the operations stream would
 * honour or refuse: a source, a TTL, a rollup, a schedule). Malformed headers (a raw-protocol
 * publisher's) are left out whole.
 */
export function keptHeaders(m: JsMsg): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  try {
    const h = m.headers;
    if (!h) return out;
    for (const k of h.keys()) {
      if (k.toLowerCase().startsWith('nats-')) continue;
      for (const v of h.values(k)) out.push([k, v]);
    }
  } catch {
    return [];
  }
  return out;
}

/**
 * Publishes a captured message until the operations stream stores it (same msg id each time):
 * full (10077), no answer, no stream for a moment, the message waits in the capture. Ends with
 * {@link Stopped} once the mover stops, and with the {@link FencedError} of a lost lease.
 */
export async function publishUntilStored(
  publisher: AckedPublisher,
  subject: string,
  data: Uint8Array,
  opts: { msgId: string; headers: Array<readonly [string, string]>; guard: () => boolean },
  mover: { capture: string; log: Logger; stopped: () => boolean },
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    if (mover.stopped()) throw new Stopped();
    try {
      await publisher.publish(subject, data, opts);
      return;
    } catch (err) {
      if (err instanceof FencedError) throw err;
      // Full (10077), no answer, no stream for a moment: the message waits in the capture.
      if (attempt === 0 || attempt % 20 === 0) {
        const code = err instanceof JetStreamApiError ? err.code : undefined;
        mover.log.warn({ capture: mover.capture, subject, code, err: String(err), attempt }, 'binding mover: the operations stream refused a captured message; retrying');
      }
      await new Promise((r) => setTimeout(r, Math.min(MAX_BACKOFF_MS, 25 * 2 ** Math.min(attempt, 6))));
    }
  }
}
