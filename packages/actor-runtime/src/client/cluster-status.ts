/**
 * What the control bucket tells a client: the cluster's status (members, services, owners,
 * checkpoints, partitions that wait), whether a partition's checkpoint passed an operation, and
 * the removal of a service.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { ActorError, ControlPrefix, controlKeys, DEFAULT_LANE, ErrorCode, parseControlKey, typeKey } from '../protocol/index.js';
import { decodeJson, type Checkpoint, type LaneRecord, type LeaseRecord, type MemberRecord } from '../store/records.js';

/** Member records older than this are treated as crashed in status reports. */
const MEMBER_STALE_MS = 15_000;

/** Ownership and progress of the partitions, as the control bucket shows it. */
export interface ClusterStatus {
  members: Array<{ id: string; partitions: number[]; host?: string; pid?: number; startedAt?: string; service?: string; types?: Record<string, number> }>;
  /** The partitions of the default service (or of the only one), as before services. */
  partitions: Array<{ partition: number; owner: string | null; checkpoint: number; lag: number | null }>;
  /**
   * Every registered service (lane): its types and versions, its live members, and its
   * partitions' owners and checkpoints. A service with no live member holds its types'
   * operations in the stream until one starts again (or an operator removes it).
   */
  services: Array<{
    id: string;
    types: Record<string, number>;
    registeredAt: string;
    /** When a worker of it last ran (about once a minute while one does). */
    seenAt?: string;
    live: boolean;
    /** No worker of it has run for the client's `serviceInactiveMs` (1 hour by default): retire it (removeService) unless it comes back. */
    inactive: boolean;
    members: string[];
    partitions: Array<{ partition: number; owner: string | null; checkpoint: number }>;
  }>;
  /** Partitions that wait at an operation their owner must not apply (a record a newer version wrote); absent when none. */
  blocked?: Array<NonNullable<Checkpoint['blocked']>>;
}

/**
 * Removes a service (lane) that has no live worker: its registration, its partitions'
 * checkpoints and leases, and the registrations of the types no other service hosts.
 */
export async function removeService(control: KV, partitions: number, id: string, status: () => Promise<ClusterStatus>): Promise<{ removed: string; types: string[] }> {
  if (typeof id !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(id)) throw new ActorError(ErrorCode.InvalidInput, `not a service id: ${JSON.stringify(id)}`);
  const entry = await control.get(controlKeys.lane(id));
  const lane = entry && entry.operation === 'PUT' ? decodeJson<LaneRecord>(entry.value) : null;
  if (!lane) throw new ActorError(ErrorCode.NotFound, `no service ${id} is registered`);
  const st = await status();
  const live = st.members.filter((m) => m.service === id).map((m) => m.id);
  if (live.length > 0) throw new ActorError(ErrorCode.ServiceLive, `service ${id} has live workers (${live.join(', ')}); stop them first`);
  // The registration first: from here on no worker counts the service in retention.
  await control.delete(controlKeys.lane(id));
  for (let p = 0; p < partitions; p++) {
    await control.purge(controlKeys.checkpoint(p, id));
    await control.purge(controlKeys.lease(p, id));
  }
  const others = st.services.filter((s) => s.id !== id);
  const orphaned = Object.keys(lane.types ?? {}).filter((t) => !others.some((s) => Object.hasOwn(s.types, t)));
  for (const t of orphaned) await control.delete(typeKey(t));
  return { removed: id, types: orphaned };
}


/** Ownership and progress of the partitions and services, read from the control bucket. */
export async function readClusterStatus(control: KV, partitions: number, serviceInactiveMs: number): Promise<ClusterStatus> {
  const members: ClusterStatus['members'] = [];
  const lagByPartition = new Map<number, number>();
  const owners = new Map<string, string>();
  const checkpoints = new Map<string, number>();
  const lanes: LaneRecord[] = [];
  const memberLane = new Map<string, string>();
  const unit = (u: { lane?: string; partition: number }): string => `${u.lane ?? DEFAULT_LANE}/${u.partition}`;
  const keys: string[] = [];
  const prefixes = [ControlPrefix.Member, ControlPrefix.Lease, ControlPrefix.Checkpoint, ControlPrefix.Lane].map((p) => `${p}>`);
  for await (const k of await control.keys(prefixes)) keys.push(k);
  const entries = await Promise.all(keys.map((k) => control.get(k)));
  for (const e of entries) {
    if (!e || e.operation !== 'PUT') continue;
    const key = parseControlKey(e.key);
    if (key?.kind === 'member') {
      const m = decodeJson<MemberRecord>(e.value);
      // A member that stopped heartbeating long ago crashed; its record is ignored.
      if (m && Date.now() - e.created.getTime() < MEMBER_STALE_MS) {
        members.push({ id: m.id, partitions: m.partitions, host: m.host, pid: m.pid, startedAt: m.startedAt, service: m.lane ?? DEFAULT_LANE, types: m.types });
        memberLane.set(m.id, m.lane ?? DEFAULT_LANE);
        for (const [p, lag] of Object.entries(m.lag)) lagByPartition.set(Number(p), lag);
      }
    } else if (key?.kind === 'lease') {
      const l = decodeJson<LeaseRecord>(e.value);
      if (l) owners.set(unit(key), l.owner);
    } else if (key?.kind === 'checkpoint') {
      const c = decodeJson<Checkpoint>(e.value);
      if (c) checkpoints.set(unit(key), c.seq);
    } else if (key?.kind === 'lane') {
      const lane = decodeJson<LaneRecord>(e.value);
      if (lane && typeof lane.types === 'object') lanes.push({ ...lane, id: key.id });
    }
  }
  members.sort((a, b) => a.id.localeCompare(b.id));
  lanes.sort((a, b) => a.id.localeCompare(b.id));
  // The top-level partitions are the default service's, or the only service's.
  const main = lanes.length === 1 && !lanes.some((l) => l.id === DEFAULT_LANE) ? (lanes[0] as LaneRecord).id : DEFAULT_LANE;
  const partitionsOf = (lane: string) =>
    Array.from({ length: partitions }, (_, p) => ({ partition: p, owner: owners.get(`${lane}/${p}`) ?? null, checkpoint: checkpoints.get(`${lane}/${p}`) ?? 0 }));
  const blocked = blockedOf(entries);
  return {
    ...(blocked.length > 0 ? { blocked } : {}),
    members,
    partitions: partitionsOf(main).map((x) => ({ ...x, lag: lagByPartition.get(x.partition) ?? null })),
    services: lanes.map((l) => {
      const ids = members.filter((m) => memberLane.get(m.id) === l.id).map((m) => m.id);
      const seen = Date.parse(l.seenAt ?? l.registeredAt);
      const inactive = ids.length === 0 && (!Number.isFinite(seen) || Date.now() - seen > serviceInactiveMs);
      return { id: l.id, types: l.types, registeredAt: l.registeredAt, ...(l.seenAt ? { seenAt: l.seenAt } : {}), live: ids.length > 0, inactive, members: ids, partitions: partitionsOf(l.id) };
    }),
  };
}


/** The checkpoint keys of partition `p` in every lane that hosts `type` (and the default lane's). */
export async function checkpointKeysOf(control: KV, type: string, p: number): Promise<string[]> {
  const keys = [controlKeys.checkpoint(p)];
  for await (const k of await control.keys(`${ControlPrefix.Lane}>`)) {
    const e = await control.get(k);
    const lane = e && e.operation === 'PUT' ? decodeJson<LaneRecord>(e.value) : null;
    if (lane && lane.types && Object.hasOwn(lane.types, type)) {
      const key = controlKeys.checkpoint(p, k.slice(ControlPrefix.Lane.length));
      if (!keys.includes(key)) keys.push(key);
    }
  }
  return keys;
}

/** True when a checkpoint of `keys` that applies `type` has passed `seq`. */
export async function passedBy(control: KV, keys: readonly string[], type: string, seq: number): Promise<boolean> {
  for (const key of keys) {
    const e = await control.get(key);
    const ck = e && e.operation === 'PUT' ? decodeJson<Checkpoint>(e.value) : null;
    if (ck && ck.seq >= seq && (!ck.duties || ck.duties.includes(type))) return true;
  }
  return false;
}

/** The waits the partitions' checkpoints report (see processing/commit.ts), by partition. */
function blockedOf(entries: ReadonlyArray<KvEntry | null>): Array<NonNullable<Checkpoint['blocked']>> {
  const out: Array<NonNullable<Checkpoint['blocked']>> = [];
  for (const e of entries) {
    if (!e || e.operation !== 'PUT' || parseControlKey(e.key)?.kind !== 'checkpoint') continue;
    const b = decodeJson<Checkpoint>(e.value)?.blocked;
    if (b && typeof b === 'object') out.push(b);
  }
  return out.sort((a, b) => a.partition - b.partition);
}
