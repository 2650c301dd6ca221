/**
 * In what order a partition publishes the sends its records hold, and which floor each declares
 * (send-dedup.ts). Pure but for the `publish` it is given, so the order can be tested alone.
 *
 * - The floor of a round is the place of the oldest send of the partition not yet acknowledged:
 *   the first of each outbox here (a refused one included), and at most `cap`, the first place
 *   of an operation not yet folded (a record's sends from before a crash may wait there).
 * - Sends that waited for room in a full stream go one at a time per sender, stopping at the
 *   first refusal, so one sender's sends are stored in order. Pipelined, a full stream could
 *   refuse one and take the next.
 * - Other sends go pipelined, at most {@link MAX_PLACES} to one receiver in a round: the next
 *   round declares a floor above the acknowledged ones, so a receiver never has to keep more
 *   than that many places above a floor.
 * - Waiting sends go out first in each round (on one connection, in order), so when a full
 *   stream has room again they take it before the batch's new sends do.
 */
import type { StoredSend } from '../store/records.js';
import { MAX_PLACES, minPlace, sendHeader, sendPos, type Place } from './send-dedup.js';

/** One sender's sends not yet acknowledged, in order; the publisher updates it as acks come. */
export interface Outbox {
  /** The sender's state key. */
  key: string;
  sends: StoredSend[];
  /** Its sends waited for room before: one at a time. */
  waiting: boolean;
  /** The stream refused one of its sends for being full: nothing more of it this time. */
  full?: boolean;
}

/** Where a round of publishes stands. */
export interface PublishPlan {
  /** The sender unit whose floor this is (send-dedup.ts): `<p>`. */
  unit: string;
  /** The first place of the operation after the last one folded (see above). */
  cap: Place;
  /** After this time (`performance.now()`) no new round starts for waiting sends (they wait for the next commit). */
  waitingUntil: number;
}

/**
 * Publishes the outboxes in rounds as above; `publish` resolves when the stream stored (or
 * already held) the send. Resolves with the first failure other than a full stream, if any;
 * the outboxes then hold what is still unacknowledged.
 */
export async function publishOutboxes(
  outboxes: readonly Outbox[],
  plan: PublishPlan,
  publish: (send: StoredSend, header: string) => Promise<unknown>,
  isFull: (err: unknown) => boolean,
): Promise<unknown> {
  const ordered = [...outboxes.filter((o) => o.waiting), ...outboxes.filter((o) => !o.waiting)];
  let fatal: unknown;
  for (let first = true; fatal === undefined; first = false) {
    const late = !first && performance.now() > plan.waitingUntil;
    const active = ordered.filter((o) => !o.full && o.sends.length > 0 && !(late && o.waiting));
    if (active.length === 0) break;
    let floor = plan.cap;
    for (const o of outboxes) if (o.sends.length > 0) floor = minPlace(floor, sendPos(o.sends[0] as StoredSend));
    const perReceiver = new Map<string, number>();
    const round = active.map((o) => {
      const take: StoredSend[] = [];
      for (const s of o.sends) {
        if (o.waiting && take.length === 1) break;
        const to = s.subject.slice(0, s.subject.lastIndexOf('.'));
        const n = perReceiver.get(to) ?? 0;
        if (n >= MAX_PLACES) break; // the rest of this sender's waits for the next round, in order
        perReceiver.set(to, n + 1);
        take.push(s);
      }
      const header = sendHeader(o.key, floor, plan.unit);
      return { o, take, done: Promise.allSettled(take.map((s) => publish(s, header))) };
    });
    for (const { o, take, done } of round) {
      const results = await done;
      const acked = new Set(take.filter((_, i) => results[i]?.status === 'fulfilled'));
      if (acked.size > 0) o.sends = o.sends.filter((s) => !acked.has(s));
      for (const r of results) {
        if (r.status === 'fulfilled') continue;
        if (isFull(r.reason)) o.full = true;
        else fatal ??= r.reason;
      }
    }
  }
  return fatal;
}
