/**
 * Retention of the operations stream by what has been applied, not by the clock: the stream
 * keeps every operation until its partition's checkpoint has passed it and it is older than
 * `retainMs` (at least the duplicate window, so a retried publish can be compared with its
 * original). The stream itself has no age limit and refuses new operations when full
 * (discard new), so nothing is ever dropped before it is applied. A stream at
 * {@link PRESSURE} of its byte bound keeps applied operations only for the duplicate window,
 * so it drains as soon as the workers catch up.
 */
import type { MsgRequest } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { type ActorNames, controlKeys } from '../protocol/index.js';
import type { Topology } from '../store/provision.js';
import { decodeJson, encodeJson, type Checkpoint, type LaneRecord, type RetentionRecord } from '../store/records.js';

/** Share of the stream's byte bound from which applied operations are kept only for the duplicate window. */
export const PRESSURE = 0.9;

/** A sample of the stream's last sequence at a time, to turn `retainMs` into a sequence. */
interface Sample {
  at: number;
  lastSeq: number;
}

/** Purges applied operations older than `retainMs`; call {@link tick} now and then from one worker. */
export class RetentionLoop {
  private readonly samples: Sample[] = [];
  private running = false;
  /** The stream incarnation (creation time) the samples belong to. */
  private samplesOf = 0;

  constructor(
    private readonly topology: () => Topology | null,
    private readonly names: ActorNames,
    private readonly retainMs: number,
    private readonly log: Logger,
    /** How long applied operations are kept while the stream is nearly full (the duplicate window). */
    private readonly pressedRetainMs = retainMs,
    /** The registered lanes' ids (each keeps what it has not applied). */
    private readonly lanes: () => readonly string[] = () => [],
  ) {}

  /**
   * The lowest sequence the stream must keep: for each partition, its first operation after
   * its checkpoint (none: the partition holds nothing unapplied); and nothing newer than
   * `retainMs`. Exposed for tests.
   */
  async floor(now = Date.now()): Promise<{ floor: number; firstSeq: number } | null> {
    const topo = this.topology();
    if (!topo) return null;
    const { jsm, control } = topo;
    const info = await jsm.streams.info(this.names.stream);
    // Samples of another incarnation of the stream say nothing about this one (its seqs restart).
    const created = Date.parse(info.created);
    if (created !== topo.streamCreated) return null;
    if (this.samplesOf !== created) {
      this.samples.length = 0;
      this.samplesOf = created;
    }
    this.samples.push({ at: now, lastSeq: info.state.last_seq });
    const maxBytes = info.config.max_bytes;
    const retainMs = maxBytes > 0 && info.state.bytes >= PRESSURE * maxBytes ? Math.min(this.pressedRetainMs, this.retainMs) : this.retainMs;
    // The newest sample at least retainMs old bounds what may go; older ones are not needed.
    let idx = -1;
    for (let i = 0; i < this.samples.length && (this.samples[i] as Sample).at <= now - retainMs; i++) idx = i;
    if (idx < 0) return { floor: 0, firstSeq: info.state.first_seq };
    // Never above what the stream holds now: a message stored after this read is kept.
    const byAge = Math.min((this.samples[idx] as Sample).lastSeq, info.state.last_seq) + 1;
    this.samples.splice(0, idx);
    let floor = byAge;
    // Every registered lane (service) keeps what it has not applied, live or not: a lane whose
    // workers are all gone holds its types' operations until one is back or an operator removes
    // the lane. Without any lane registered (a store of a version before lanes), the default lane.
    const lanes: Array<string | undefined> = [...this.lanes()];
    if (lanes.length === 0) lanes.push(undefined);
    // A lane with no checkpoint in a partition has applied nothing there: it stands for a
    // checkpoint at 0 listing its registered types (read once per round), so a lane whose
    // worker died before its first commit stops holding the partition once another lane
    // applies its types (firstUnapplied). Without its registration it holds everything.
    const registeredTypes = new Map<string | undefined, string[]>();
    for (const lane of lanes) {
      if (lane === undefined) continue;
      const entry = await control.get(controlKeys.lane(lane));
      const rec = entry && entry.operation === 'PUT' ? decodeJson<LaneRecord>(entry.value) : null;
      if (rec && typeof rec.types === 'object' && rec.types !== null) registeredTypes.set(lane, Object.keys(rec.types));
    }
    for (let p = 0; p < topo.partitions && floor > info.state.first_seq; p++) {
      const cks: Array<Pick<Checkpoint, 'seq' | 'duties'> | null> = [];
      for (const lane of lanes) {
        const entry = await control.get(controlKeys.checkpoint(p, lane));
        const ck = entry && entry.operation === 'PUT' ? decodeJson<Checkpoint>(entry.value) : null;
        const types = registeredTypes.get(lane);
        cks.push(ck && (ck.stream === undefined || ck.stream === topo.streamCreated) ? ck : types ? { seq: 0, duties: types } : null);
      }
      const from = firstUnapplied(cks);
      if (from >= floor) continue;
      const next = await nextMessageSeq(topo, this.names.stream, `${p}.>`, Math.max(from, info.state.first_seq));
      if (next !== null) floor = Math.min(floor, next);
    }
    return { floor, firstSeq: info.state.first_seq };
  }

  /** One round: purge below the floor (if it moved) and record it. Never throws. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const topo = this.topology();
      const f = await this.floor();
      if (!topo || !f || f.floor <= f.firstSeq) return;
      // Recorded before the purge, so a reader never sees a first sequence it cannot explain.
      const rec: RetentionRecord = { purgedBelow: f.floor, stream: topo.streamCreated, updatedAt: new Date().toISOString() };
      await topo.control.put(controlKeys.retention, encodeJson(rec));
      const res = await topo.jsm.streams.purge(this.names.stream, { seq: f.floor });
      this.log.debug({ purged: res.purged, below: f.floor }, 'purged applied operations');
    } catch (err) {
      this.log.warn({ err: String(err) }, 'retention: purge of applied operations failed; retrying later');
    } finally {
      this.running = false;
    }
  }
}

/**
 * The first sequence of a partition that some lane may not have applied, from the lanes'
 * checkpoints there (null: a lane with none and no registration, which holds everything). A
 * checkpoint is passed over when each type it lists is listed by another checkpoint that is at
 * least as far: what it has not applied, those lanes have (a lane's checkpoint lists a type only
 * once it has read it from where the previous home left it, processing/commit.ts). So the
 * checkpoints of a lane nobody runs any more (a worker's set of types changed, and with it its
 * derived lane id) stop holding the stream once live lanes apply its types (and its strays, `*`),
 * instead of holding it until it is full. A checkpoint that lists no types (written before
 * lanes) is never passed over, nor passes others over.
 */
export function firstUnapplied(cks: ReadonlyArray<Pick<Checkpoint, 'seq' | 'duties'> | null>): number {
  // Only a checkpoint ranked strictly higher (further, or as far and earlier in the list) passes
  // another over: two equal ones never pass each other over, and one that is itself passed over
  // is so by higher ones, which then list the type too.
  const higher = (j: number, i: number) => {
    const a = cks[j];
    const b = cks[i];
    return !!a && !!b && (a.seq > b.seq || (a.seq === b.seq && j < i));
  };
  let from = Infinity;
  for (const [i, ck] of cks.entries()) {
    if (!ck) return 1;
    const duties = ck.duties;
    const covered = duties !== undefined && duties.every((d) => cks.some((other, j) => higher(j, i) && other?.duties?.includes(d) === true));
    if (!covered) from = Math.min(from, ck.seq + 1);
  }
  return from;
}

/** Sequence of the first message at or after `seq` on `filter`, or null if there is none. */
async function nextMessageSeq(topo: Topology, stream: string, filter: string, seq: number): Promise<number | null> {
  // nats-server's STREAM.MSG.GET takes `next_by_subj` (wildcards too, since 2.9); nats.js's
  // type for this call lists only `seq` and `last_by_subj`.
  const query = { seq, next_by_subj: filter } as unknown as MsgRequest;
  const m = await topo.jsm.streams.getMessage(stream, query);
  return m ? m.seq : null;
}
