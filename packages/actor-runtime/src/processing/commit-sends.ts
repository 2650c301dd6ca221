/**
 * The sends a committer's records hold: published (and acknowledged) before the checkpoint
 * that passes the operations that made them. A send the operations stream refuses because it
 * is full stays in its record, and its key gets a marker `unsent.<p>.<key>` in the control
 * bucket before the checkpoint passes it (the checkpoint says markers exist, so a next owner
 * publishes them too): a full stream then drains, since what is applied can be purged, instead
 * of every partition with a send stopping at it for ever. They are published again, in order,
 * at each commit; a marker is deleted once its key's sends are all stored.
 */
import { DEFAULT_LANE, SEND_HEADER } from '../protocol/index.js';
import type { CommitterOptions } from './commit-types.js';
import type { UnsentState } from './commit-checkpoint.js';
import type { KeyFold } from './key-fold.js';
import type { CachedRecord } from './record-cache.js';
import { encodeText } from './record-io.js';
import { placeOf } from './send-dedup.js';
import { publishOutboxes, type Outbox } from './send-order.js';

/** How long one commit goes on publishing waiting sends one at a time once the stream has room again (ms). */
const WAITING_SENDS_MS = 250;
/** A state key as a checkpoint of an older version listed it (`<type>.<key>`, valid names). */
const STATE_KEY = /^[A-Za-z0-9_=-]{1,64}\.[A-Za-z0-9_=-]{1,128}$/;

/** Reads records not in the cache into `into`. */
export type RecordLoader = (keys: string[], into: Map<string, CachedRecord>) => Promise<void>;

/** Publishes a committer's sends and keeps the keys whose sends wait for room. */
export class CommitSends implements UnsentState {
  /** Keys whose records hold sends the stream refused because it was full. */
  readonly keys = new Set<string>();
  /** The unsent keys changed since the checkpoint was written. */
  changed = false;
  /** Keys whose sends are all stored now: their markers go before the next checkpoint. */
  private unmarked: string[] = [];

  constructor(private readonly o: CommitterOptions) {}

  get size(): number {
    return this.keys.size;
  }

  /**
   * At start, whatever the checkpoint says: a marker a crash left behind is taken up (and
   * removed once its sends are stored) now, not by some later owner whose checkpoint says
   * markers exist; keys an older checkpoint listed (`listed`) get their markers first.
   */
  async takeUp(listed: readonly unknown[]): Promise<void> {
    const { store, partition, log } = this.o;
    const duty = this.o.duty;
    // Markers of another lane's actors (ownership/placement.ts) are that lane's to take up.
    for (const k of await store.listMarkers(partition)) if (!duty || duty(k.slice(0, k.indexOf('.'))) !== 'skip') this.keys.add(k);
    const unmarkedKeys = listed.filter((k): k is string => typeof k === 'string' && STATE_KEY.test(k) && !this.keys.has(k));
    if (unmarkedKeys.length > 0) {
      // The next checkpoint only says markers exist: these keys get theirs first.
      await this.mark(unmarkedKeys);
      log.info({ partition, keys: unmarkedKeys.length }, 'keys listed as unsent by an older checkpoint got their markers');
    }
  }

  /** Writes the markers of keys whose sends wait for room (before the checkpoint that passes them). */
  private async mark(keys: readonly string[]): Promise<void> {
    const { store, partition } = this.o;
    await Promise.all(keys.map((k) => store.writeMarker(partition, k, this.o.leaseValid)));
    for (const k of keys) this.keys.add(k);
    this.changed = true;
  }

  /**
   * Publishes every send the batch's records hold, and those of records a full stream refused
   * before, and awaits the stream's acks, in the order send-order.ts tells (one sender's sends
   * are stored in order). A send refused because the stream is full stays in its record (the
   * key gets a marker) for the next commit; any other failure fails the commit. `lastSeq` is
   * the batch's last operation (0 for none), `checkpoint` the committed one.
   */
  async publish(folds: Map<string, KeyFold>, lastSeq: number, checkpoint: number, load: RecordLoader): Promise<void> {
    const { store, cache, log, partition } = this.o;
    const outboxes = new Map<string, CachedRecord>();
    for (const [k, f] of folds) if (f.rec.outbox && f.rec.outbox.length > 0) outboxes.set(k, f.rec);
    const retry = [...this.keys].filter((k) => !outboxes.has(k));
    if (retry.length > 0) {
      const recs = new Map<string, CachedRecord>();
      const missing = retry.filter((k) => {
        const hit = cache.get(k);
        if (hit) recs.set(k, hit);
        return !hit;
      });
      if (missing.length > 0) await load(missing, recs);
      for (const k of retry) {
        const rec = recs.get(k);
        if (rec?.outbox && rec.outbox.length > 0) outboxes.set(k, rec);
        else this.markSent(k);
      }
    }
    const list: Outbox[] = [...outboxes].map(([k, rec]) => ({ key: k, sends: [...(rec.outbox ?? [])], waiting: this.keys.has(k) }));
    // The floors declared cover this committer's sends only: a second committer of the same
    // partition (with its own checkpoint) needs a unit of its own, `<p>@<id>` (send-dedup.ts).
    // Each lane (service) is a committer of its own on the partition (ownership/placement.ts).
    const unit = this.o.lane === undefined || this.o.lane === DEFAULT_LANE ? String(partition) : `${partition}@${this.o.lane}`;
    const plan = { unit, cap: placeOf(Math.max(lastSeq, checkpoint) + 1, 0), waitingUntil: performance.now() + WAITING_SENDS_MS };
    const fatal = await publishOutboxes(
      list,
      plan,
      // The guard checks the lease right before each send goes out.
      (x, header) => store.publishSend(x.subject, x.input === undefined ? new Uint8Array(0) : encodeText(x.input), x.id, [[SEND_HEADER, header]], this.o.leaseValid),
      (err) => store.errorKind(err) === 'stream-full',
    );
    if (fatal !== undefined) {
      const err = fatal instanceof Error ? fatal : new Error(`a send could not be published: ${JSON.stringify(fatal)}`);
      // The partition restarts from its checkpoint and publishes them all again, in order.
      log.warn({ partition, err: err.message }, 'a send could not be published; the partition restarts from its checkpoint');
      cache.dropPartition(partition);
      throw err;
    }
    const waiting: string[] = [];
    for (const o of list) {
      const rec = outboxes.get(o.key) as CachedRecord;
      const cached = cache.get(o.key);
      if (o.sends.length === 0) {
        delete rec.outbox;
        if (cached) delete cached.outbox;
        this.markSent(o.key);
        continue;
      }
      // What is left waits (the stored ones are taken off, so this owner does not publish them
      // again); the next fold of this key appends to it, in order.
      rec.outbox = o.sends;
      if (cached) cached.outbox = o.sends;
      else cache.set(o.key, rec);
      if (!this.keys.has(o.key)) waiting.push(o.key);
    }
    if (waiting.length > 0) {
      // Markers before the checkpoint that passes these sends.
      await this.mark(waiting);
      log.warn({ partition, keys: this.keys.size }, 'the operations stream is full: sends wait in their records for room');
    }
    await this.unmark();
  }

  private markSent(k: string): void {
    if (!this.keys.delete(k)) return;
    this.changed = true;
    this.unmarked.push(k);
  }

  /**
   * Deletes the markers of keys whose sends are all stored, before the checkpoint that drops
   * them from the unsent set (a failed delete fails the commit): a marker left behind would
   * make a later owner publish that key's old outbox again, perhaps long after the duplicate
   * window. Fenced like every write: a late delete by a former owner could remove a marker
   * the new owner needs.
   */
  private async unmark(): Promise<void> {
    if (this.unmarked.length === 0) return;
    const keys = this.unmarked;
    this.unmarked = [];
    const { store, partition } = this.o;
    await Promise.all(keys.map((k) => store.deleteMarker(partition, k, this.o.leaseValid)));
  }
}
