/** The lock in the control bucket that serializes the provisioning of subject bindings. */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { BINDINGS_LOCK_KEY, ConfigError } from '../protocol/index.js';
import { encodeJson } from './records.js';

/** A lock whose revision has not changed for this long is taken over (its holder died). */
const LOCK_STALE_MS = 10_000;

/**
 * Takes the provisioning lock in the control bucket for `fn`: capture streams are created and
 * updated, and the operations stream's sources are read, changed and written back (nats-server has
 * no compare-and-set for a stream update). A lock whose revision stays the
 * same for {@link LOCK_STALE_MS} (its holder died) is taken over.
 */
export async function withLock<T>(control: KV, owner: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const value = encodeJson({ owner, at: new Date().toISOString() });
  const deadline = performance.now() + timeoutMs;
  let seen = null as { rev: number; since: number } | null;
  let rev = 0;
  for (;;) {
    rev = await control.create(BINDINGS_LOCK_KEY, value).catch((err: unknown) => {
      if (err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)) return 0;
      throw err;
    });
    if (rev > 0) break;
    const e = await control.get(BINDINGS_LOCK_KEY);
    const now = performance.now();
    if (e && e.operation === 'PUT') {
      if (seen?.rev !== e.revision) seen = { rev: e.revision, since: now };
      else if (now - seen.since >= LOCK_STALE_MS) rev = await control.update(BINDINGS_LOCK_KEY, value, e.revision).catch(() => 0);
    }
    if (rev > 0) break;
    if (now > deadline) {
      throw new ConfigError(`the subject bindings could not be provisioned: ${BINDINGS_LOCK_KEY} in the control bucket is held (${e ? new TextDecoder().decode(e.value) : 'released'})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Held for long (a hand-over scans the operations stream's headers): renewed, so that nobody
  // takes it over as stale meanwhile.
  let renewing = Promise.resolve();
  const renew = setInterval(() => {
    renewing = renewing.then(async () => {
      rev = await control.update(BINDINGS_LOCK_KEY, value, rev).catch(() => rev);
    });
  }, LOCK_STALE_MS / 4);
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    await renewing;
    await control.delete(BINDINGS_LOCK_KEY, { previousSeq: rev }).catch(() => undefined);
  }
}
