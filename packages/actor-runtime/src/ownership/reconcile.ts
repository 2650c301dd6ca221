/**
 * The pure part of ownership: who is alive, which partitions this worker should own, and
 * what to do about the difference. No I/O; the worker carries the plan out.
 */
import type { LeaseRecord } from '../store/records.js';
import { assignPartitions } from './assignment.js';
import type { Seen } from './control-view.js';
import { laneGenerations, type LiveMember } from './placement.js';

/** Members whose last heartbeat (server time) is younger than `leaseTtlMs`; this worker counts as live unless it is leaving. */
export function liveMembers(members: ReadonlyMap<string, Seen>, serverNow: number, leaseTtlMs: number, selfId: string, leaving: boolean): string[] {
  const live = [...members.entries()].filter(([, s]) => serverNow - s.created < leaseTtlMs).map(([id]) => id);
  if (!leaving && !live.includes(selfId)) live.push(selfId);
  return live;
}

/** The partitions the assignment gives `selfId` among `live` (none while leaving). */
export function desiredPartitions(partitions: number, live: readonly string[], selfId: string, leaving: boolean): Set<number> {
  if (leaving) return new Set();
  return new Set(assignPartitions(partitions, live).get(selfId) ?? []);
}

/**
 * The partitions `selfId` takes among the live members of its lane (none while leaving). Workers
 * of the lane's newest generation (a rolling deploy's new version) take the first
 * `round(P * their share of the lane's workers)` partitions, balanced among them, the older ones
 * the rest: the first new worker of a fleet of N takes about P/N partitions, not all, and a
 * partition moves only from older to newer workers as the new ones start (the set the newest
 * take only grows while their share grows), so records written by new code are never handed
 * back to old code in a roll forward.
 */
export function desiredLanePartitions(partitions: number, lane: readonly LiveMember[], selfId: string, leaving: boolean): Set<number> {
  if (leaving) return new Set();
  const { newest, older, newestShare } = laneGenerations(lane);
  const k = older.length === 0 ? partitions : Math.max(1, Math.min(partitions, Math.round(partitions * newestShare)));
  // Partitions an older worker reports waiting for a newer version go to the newest too (a
  // rollback's version-2 records, an operation only version 2 knows), beside the first k.
  // Once there, they stay (the newest report owning them), or they would go back and wait again.
  const promoted = new Set<number>();
  if (older.length > 0) {
    const olderIds = new Set(older);
    const take = (p: number) => Number.isInteger(p) && p >= k && p < partitions && promoted.add(p);
    for (const m of lane) for (const p of (olderIds.has(m.id) ? m.waiting : m.owned) ?? []) take(p);
  }
  const toNewest = [...Array(k).keys(), ...[...promoted].sort((a, b) => a - b)];
  const toOlder = [...Array(partitions).keys()].filter((p) => p >= k && !promoted.has(p));
  const list = newest.includes(selfId) ? toNewest : toOlder;
  const ids = newest.includes(selfId) ? newest : older;
  return new Set((assignPartitions(list.length, ids).get(selfId) ?? []).map((i) => list[i] as number));
}

/** What the plan needs to know of a partition this worker holds. */
export interface HeldView {
  releasing: boolean;
  hasProcessor: boolean;
  /** performance.now() after which a failed processor may be restarted. */
  restartAt: number;
  /** performance.now() until which the lease is surely ours. */
  validUntil: number;
}

/** Input of {@link planReconcile}. */
export interface ReconcileInput {
  want: ReadonlySet<number>;
  held: ReadonlyMap<number, HeldView>;
  acquiring: ReadonlySet<number>;
  leases: ReadonlyMap<number, Seen>;
  selfId: string;
  leaseTtlMs: number;
  /** performance.now(). */
  now: number;
  /** The server's clock, ms. */
  serverNow: number;
  leaving: boolean;
}

/** The actions that bring what is held to what is wanted. */
export interface ReconcilePlan {
  /** Held partitions no longer wanted: commit, checkpoint, delete the lease. */
  release: number[];
  /** Held partitions whose processor failed and may start again. */
  restart: number[];
  /** Wanted partitions to take, with the lease revision seen (0: none seen; create). */
  acquire: Array<{ partition: number; observedRev: number }>;
}

/**
 * Plans one reconcile round. A wanted partition is acquired only when its lease is absent,
 * expired (by the server's timestamp of its last renewal) or already ours; the CAS on the
 * lease is what makes two workers never hold one partition, the plan only avoids trying in vain.
 */
export function planReconcile(i: ReconcileInput): ReconcilePlan {
  const plan: ReconcilePlan = { release: [], restart: [], acquire: [] };
  for (const [p, h] of i.held) {
    if (!i.want.has(p) && !h.releasing) plan.release.push(p);
    else if (!h.hasProcessor && !h.releasing && i.now >= h.restartAt && i.now < h.validUntil) plan.restart.push(p);
  }
  if (i.leaving) return plan;
  for (const p of i.want) {
    if (i.held.has(p) || i.acquiring.has(p)) continue;
    const lease = i.leases.get(p);
    const expired = lease ? i.serverNow - lease.created > i.leaseTtlMs : true;
    const ours = lease !== undefined && (lease.value as LeaseRecord | null)?.owner === i.selfId;
    if (!lease || expired || ours) plan.acquire.push({ partition: p, observedRev: lease?.revision ?? 0 });
  }
  return plan;
}
