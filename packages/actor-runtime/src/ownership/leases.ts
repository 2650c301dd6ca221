/**
 * Partition leases and every fencing rule, in one place.
 *
 * - A lease `leases.<p>` is taken with CAS (create, or update of the revision seen expired),
 *   so two workers can never both win it; the revision at acquisition is the owner's fencing
 *   epoch, written into every record and checkpoint.
 * - It is renewed with `update(rev)`: one renewal in flight per lease, never two with one
 *   revision. A renewal that loses its CAS means someone took the lease: the partition is
 *   lost at once.
 * - The owner writes only while the lease is surely valid: until the send time of the last
 *   successful renewal plus the TTL less a margin (the other side judges expiry by the
 *   server's timestamp of that renewal, which is later than our send time).
 * - Release: no renewal may change the revision under the delete (`letGo`), and the delete
 *   is a CAS on the last revision.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { FencedError, controlKeys } from '../protocol/index.js';
import type { PartitionProcessor } from '../processing/partition-processor.js';
import { encodeJson, type LeaseRecord } from '../store/records.js';

/** A partition this worker holds the lease of. */
export interface Owned {
  partition: number;
  /** The lane (service) the lease belongs to. */
  lane: string;
  /** The duties its processor was started with (see placement.ts `dutiesOf`), joined. */
  duties: string;
  leaseRev: number;
  epoch: number;
  /** performance.now() until which the lease is surely ours. */
  validUntil: number;
  proc: PartitionProcessor | null;
  /** The processor has read its checkpoint and is consuming. */
  running: boolean;
  releasing: boolean;
  /** The renewal in flight, if any; never send two with the same revision. */
  renewing: Promise<void> | null;
  /** Set once the final commit is done: no more renewals, the lease is being deleted. */
  letGo: boolean;
  restartAt: number;
  failures: number;
  /** Seq of the operation its processor waits at for a newer version of its type (a record or an operation it cannot apply); 0: none. */
  waitsForNewer?: number;
}

/** How long after sending a renewal (or the acquiring write) the lease is surely still ours, ms. */
export function leaseValidity(leaseTtlMs: number): number {
  return leaseTtlMs - Math.min(1000, leaseTtlMs / 5);
}

/** True while `o` may write: its lease is surely valid and it is still the owned entry. */
export function mayWrite(o: Owned, current: Owned | undefined, now = performance.now()): boolean {
  return now < o.validUntil && current === o;
}

/** True for a CAS that lost: wrong last (subject) sequence, 10071. */
export function isLostCas(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}

/**
 * Takes the lease of `p` (create if no lease was seen, else update of the expired revision
 * seen); resolves with the new owner state, or null if someone else won.
 */
export async function acquireLease(control: KV, p: number, observedRev: number, owner: string, leaseTtlMs: number, lane: string): Promise<Owned | null> {
  const t0 = performance.now();
  const value = encodeJson({ owner, epoch: 0 } satisfies LeaseRecord);
  let rev: number;
  try {
    rev = observedRev > 0 ? await control.update(controlKeys.lease(p, lane), value, observedRev) : await control.create(controlKeys.lease(p, lane), value);
  } catch (err) {
    if (isLostCas(err)) return null;
    throw err;
  }
  return { partition: p, lane, duties: '', leaseRev: rev, epoch: rev, validUntil: t0 + leaseValidity(leaseTtlMs), proc: null, running: false, releasing: false, renewing: null, letGo: false, restartAt: 0, failures: 0 };
}

/**
 * Renews `o`'s lease unless a renewal is in flight or it is being let go. Resolves with a
 * {@link FencedError} if the lease was taken over, undefined otherwise (a renewal that fails
 * for another reason is retried on the next beat; the validity bound keeps writes safe).
 */
export function renewLease(control: KV, o: Owned, owner: string, leaseTtlMs: number, onOtherError: (err: unknown) => void): Promise<FencedError | undefined> {
  if (o.letGo) return Promise.resolve(undefined);
  if (o.renewing) return o.renewing.then(() => undefined);
  let lost: FencedError | undefined;
  o.renewing = (async () => {
    const sent = performance.now();
    try {
      o.leaseRev = await control.update(controlKeys.lease(o.partition, o.lane), encodeJson({ owner, epoch: o.epoch } satisfies LeaseRecord), o.leaseRev);
      o.validUntil = sent + leaseValidity(leaseTtlMs);
    } catch (err) {
      if (isLostCas(err)) lost = new FencedError(`lease of partition ${o.partition} was taken over`, { cause: err });
      else onOtherError(err);
    }
  })().finally(() => {
    o.renewing = null;
  });
  return o.renewing.then(() => lost);
}

/** Deletes `o`'s lease after its final commit (CAS on its last revision); no renewal may run after this starts. */
export async function releaseLease(control: KV, o: Owned): Promise<void> {
  o.letGo = true;
  await o.renewing;
  await control.delete(controlKeys.lease(o.partition, o.lane), { previousSeq: o.leaseRev });
}
