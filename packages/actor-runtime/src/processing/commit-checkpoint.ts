/**
 * A committer's checkpoint: read at start (with the floors of types taken over from another
 * lane), written after the batch's records, sends and timer index, with a compare-and-set
 * on its revision (a lost one: another owner wrote, this one is fenced).
 */
import { FencedError, type BlockedAt, DEFAULT_LANE } from '../protocol/index.js';
import { decodeJson, encodeJson, type Checkpoint } from '../store/records.js';
import type { CommitterOptions } from './commit-types.js';
import type { CommitStore } from './commit-store/port.js';
import { conflictOr } from './record-io.js';

/** What the checkpoint says of sends waiting for room (commit-sends.ts). */
export interface UnsentState {
  /** Keys with sends waiting. */
  readonly size: number;
  /** The set changed since the checkpoint was written. */
  changed: boolean;
}

/** Holds the committed checkpoint of one partition and lane. */
export class CheckpointKeeper {
  /** The last committed checkpoint. */
  seq = 0;
  private rev = 0;
  /** Where the partition waits, as its checkpoint says. */
  blocked: Checkpoint['blocked'];
  /** Per type, the highest checkpoint of a lane that lists it, when this lane took types over (see {@link typeFloor}). */
  private typeFloors = new Map<string, number>();

  constructor(private readonly o: CommitterOptions) {}

  /**
   * Reads the partition's checkpoint; one written for another incarnation of the stream counts
   * as none. Resolves with the keys an older version listed as unsent in the checkpoint itself.
   */
  async load(): Promise<unknown[]> {
    const { store, topology, partition, log } = this.o;
    const entry = await store.readCheckpoint(partition, this.o.lane);
    this.rev = entry?.revision ?? 0;
    this.seq = 0;
    let covered = false;
    let listed: unknown[] = [];
    if (entry && !entry.deleted) {
      const ck = decodeJson<Checkpoint>(entry.value);
      covered = coversDuties(ck, this.o.lane, this.o.duties);
      if (ck && ck.stream !== undefined && ck.stream !== topology.streamCreated) {
        log.warn({ partition, checkpoint: ck.seq }, 'the operations stream was recreated since this checkpoint: reading the new stream from its start');
      } else {
        this.seq = ck?.seq ?? 0;
        // An older version listed the keys in the checkpoint itself.
        if (Array.isArray(ck?.unsent)) listed = ck.unsent;
        this.blocked = ck?.blocked;
      }
    }
    if (this.o.duties && !covered) {
      // This lane now applies types its checkpoint does not cover (it took them over from a lane
      // that stopped, or its set changed): read from the lowest checkpoint of any lane, so their
      // operations are read from where their previous home left them (what this lane applied
      // already is skipped by its records' seqs).
      const { low, floors } = await laneCheckpoints(store, topology.streamCreated, partition, this.o.lanes?.() ?? []);
      // Below these, a type's operations were applied (or failed) by a lane whose checkpoint lists
      // it: skipped, never applied, dead-lettered or their sends republished a second time.
      this.typeFloors = floors;
      if (low < this.seq) {
        log.info({ partition, lane: this.o.lane, checkpoint: this.seq, from: low, duties: this.o.duties }, 'lane took over types: reading from the lowest checkpoint of the partition');
        this.seq = low;
      }
    }
    return listed;
  }

  /**
   * The seq up to which operations of `type` were already processed by some lane (0: none
   * known): a lane reading again from a lower checkpoint to take a type over skips them.
   */
  typeFloor(type: string): number {
    return this.typeFloors.get(type) ?? 0;
  }

  /** Up to which seq a key's sends are known published: the checkpoint, or its type's floor after a take-over. */
  readonly publishedThrough = (key: string): number => Math.max(this.seq, this.typeFloor(key.slice(0, key.indexOf('.'))));

  /** Records where the partition waits; true when it is news (else it was known already). */
  block(at: BlockedAt): boolean {
    const known = this.blocked;
    if (known && known.seq === at.seq && known.reason === at.reason) return false;
    this.blocked = { ...at, partition: this.o.partition, since: new Date().toISOString() };
    return true;
  }

  /** Writes checkpoint `seq` (compare-and-set on the last one's revision). */
  async write(seq: number, unsent: UnsentState): Promise<void> {
    if (this.o.aborted()) return;
    const { store, topology, partition, epoch } = this.o;
    if (!this.o.leaseValid()) throw new FencedError(`partition ${partition}: lease not held, refusing to checkpoint`);
    // A checkpoint that passes the operation the partition waited at ends the wait.
    if (this.blocked && seq >= this.blocked.seq) this.blocked = undefined;
    const ck: Checkpoint = {
      seq,
      epoch,
      stream: topology.streamCreated,
      updatedAt: new Date().toISOString(),
      ...(unsent.size > 0 ? { unsent: true } : {}),
      ...(this.o.duties ? { duties: [...this.o.duties] } : {}),
      ...(this.blocked ? { blocked: this.blocked } : {}),
    };
    unsent.changed = false;
    try {
      this.rev = await store.writeCheckpoint(partition, this.o.lane, encodeJson(ck), this.rev, this.o.leaseValid);
    } catch (err) {
      throw conflictOr(store, err, `partition ${partition}: checkpoint was written by someone else`);
    }
    this.seq = seq;
  }
}

/**
 * True when checkpoint `ck` covers `duties`: it lists each of them, or it was written before
 * lanes by the default lane (which then applied every type).
 */
function coversDuties(ck: Checkpoint | null, lane: string | undefined, duties: readonly string[] | undefined): boolean {
  if (!duties || !ck) return !duties;
  if (!ck.duties) return lane === undefined || lane === DEFAULT_LANE;
  const listed = new Set(ck.duties);
  return duties.every((d) => listed.has(d));
}

/**
 * The checkpoints of partition `p` among `lanes` (and the default lane's, of a store from before
 * lanes), of this incarnation of the stream: the lowest (0 when a registered lane has none: it
 * may have been the home of a type this lane takes over, a worker of it heartbeat, then died
 * before its first commit, and every other lane's checkpoint passed that type's operations
 * meanwhile; the default lane's key, when the default lane is not registered, counts only if
 * present), and per type the highest checkpoint that lists it (its operations up to there were
 * processed by that lane). Reads each key (no key listing: nats.js's multi-filter key listing
 * waited for a heartbeat, 30 s, when the only match was a delete marker).
 */
async function laneCheckpoints(store: CommitStore, streamCreated: number, p: number, lanes: readonly string[]): Promise<{ low: number; floors: Map<string, number> }> {
  // The default lane's key is the key of lane undefined (store/records.ts `controlKeys.checkpoint`).
  const all: Array<string | undefined> = [undefined, ...new Set(lanes.filter((l) => l !== DEFAULT_LANE))];
  const registered = new Set<string | undefined>(lanes.map((l) => (l === DEFAULT_LANE ? undefined : l)));
  let low = Infinity;
  const floors = new Map<string, number>();
  for (const lane of all) {
    const e = await store.readCheckpoint(p, lane);
    const ck = e && !e.deleted ? decodeJson<Checkpoint>(e.value) : null;
    if (ck && (ck.stream === undefined || ck.stream === streamCreated)) {
      low = Math.min(low, ck.seq);
      for (const d of Array.isArray(ck.duties) ? ck.duties : []) if (typeof d === 'string' && ck.seq > (floors.get(d) ?? 0)) floors.set(d, ck.seq);
    } else if (registered.has(lane)) low = 0;
  }
  return { low: Number.isFinite(low) ? low : 0, floors };
}
