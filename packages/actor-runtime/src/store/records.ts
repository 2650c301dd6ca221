import { type BlockedAt, type ActorNames } from '../protocol/index.js';

/**
 * The state record of one actor in the state bucket, key `<type>.<key>`.
 * `seq` is the stream sequence of the last operation applied; an operation with a
 * sequence <= `seq` is already in the state and is skipped on replay.
 */
export interface StateRecord<S = unknown> {
  state: S;
  seq: number;
  /** Fencing epoch (lease revision) of the owner that wrote it. */
  epoch: number;
  updatedAt: string;
  /** Set when the actor was deleted; the state is then the initial state. */
  deleted?: true;
  /** Incarnation of the control bucket the epoch belongs to (its stream's creation time, ms). */
  gen?: number;
  /** Incarnation of the operations stream `seq` belongs to (its creation time, ms). */
  stream?: number;
  /** The actor's timers (absent when none). */
  timers?: StoredTimer[];
  /**
   * Sends of the operations up to `seq` that were not yet known published when the record was
   * written; those after the partition's checkpoint are published again by the next owner.
   */
  outbox?: StoredSend[];
  /**
   * Sends this actor applied, per sender partition (records of earlier versions: per sender
   * state key): `[floor, ...places]`, a place a number or `"<seq>.<i>"` (see
   * processing/send-dedup.ts), so a send stored again after the duplicate window is skipped.
   */
  received?: Record<string, Array<number | string>>;
  /** The version of the actor definition that wrote the record (`defineActor({ version })`); absent: 1. */
  version?: number;
}

/** A timer as its actor's record keeps it. */
export interface StoredTimer {
  id: string;
  /** When it fires next, ms since the epoch. */
  at: number;
  /** Seq of the operation that set it: a fire message must name it, so a replaced timer never fires for an old one. */
  n: number;
  op: string;
  /** Target actor; the timer's own actor when equal. */
  type: string;
  key: string;
  /** The input as JSON text; absent for none. */
  input?: string;
  /** Recurring every this many ms. */
  every?: number;
  /** Recurring by this cron expression (UTC). */
  cron?: string;
}

/** A send waiting to be published (or known published once the checkpoint passes `seq`). */
export interface StoredSend {
  /** Its `Nats-Msg-Id`: deterministic, so a republish is a duplicate the stream drops. */
  id: string;
  /** Operation subject `actors.<type>.<key>.<op>` (validated when it was made). */
  subject: string;
  /** The input as JSON text; absent for none. */
  input?: string;
  /** Seq of the operation that made it. */
  seq: number;
}

/** A partition's checkpoint: every operation of the partition up to `seq` is applied. */
export interface Checkpoint {
  seq: number;
  epoch: number;
  updatedAt: string;
  /** Incarnation of the operations stream `seq` belongs to (its creation time, ms). */
  stream?: number;
  /**
   * Some records hold sends a full stream refused: their keys have markers `unsent.<p>.<key>`
   * in the control bucket, and their sends are published again whatever their seq. (Markers
   * are listed at every start anyway. Checkpoints of an older version list the keys here.)
   */
  unsent?: true | string[];
  /**
   * The types the lane's processor applied (`*`: it dead-lettered strays), when the lane is not
   * the only one: a lane that becomes the home of a type not listed here starts that partition
   * from where the type's previous home left it. Absent in a checkpoint written before lanes.
   */
  duties?: string[];
  /**
   * The partition waits at an operation it must not apply or dead-letter (a record written by a
   * newer version, see processing/commit.ts); cleared by the next checkpoint that passes it.
   */
  blocked?: BlockedAt & { partition: number; since: string };
}

/** What the retention loop purged: every operation below `purgedBelow` was applied (or belonged to no unapplied partition). */
export interface RetentionRecord {
  purgedBelow: number;
  stream: number;
  updatedAt: string;
}

/** A worker's heartbeat in the control bucket. */
export interface MemberRecord {
  id: string;
  /** Partitions the member owns right now. */
  partitions: number[];
  /** Operations stored but not yet applied, per owned partition. */
  lag: Record<string, number>;
  startedAt: string;
  host: string;
  pid: number;
  /** The lane (service) the member belongs to; absent: a worker of a version before lanes (the default lane). */
  lane?: string;
  /** The actor types it hosts, with their versions. */
  types?: Record<string, number>;
  /** Partitions it owns that wait for a newer version of a type (the lane's newest workers take them). */
  waiting?: number[];
}

/** A lane (service) as registered in the control bucket (`lanes.<id>`); see ownership/placement.ts. */
export interface LaneRecord {
  id: string;
  /** The types its workers host, with the version of each. */
  types: Record<string, number>;
  /** When a worker of the lane registered it with these types (ISO 8601). */
  registeredAt: string;
  /** When a live worker of the lane last said it runs (about once a minute; ISO 8601). */
  seenAt?: string;
}

/** A partition lease; the KV revision at acquisition is the owner's fencing epoch. */
export interface LeaseRecord {
  owner: string;
  epoch: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Encodes a JSON value for KV. */
export function encodeJson(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

/** Decodes a JSON KV value; null for an empty value. */
export function decodeJson<T>(data: Uint8Array): T | null {
  if (data.length === 0) return null;
  return JSON.parse(dec.decode(data)) as T;
}

/** The names bundle is passed around with the topology; re-exported for convenience. */
export type { ActorNames };

/** The version of the actor definition that wrote a record: its `version` when a valid one above 1, else 1. */
export function versionOfRecord(rec: Pick<StateRecord, 'version'>): number {
  return Number.isSafeInteger(rec.version) && (rec.version as number) > 1 ? (rec.version as number) : 1;
}
