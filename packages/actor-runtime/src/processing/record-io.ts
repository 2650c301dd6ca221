/** Reading and writing actor records through the commit store: CAS writes, fenced loads. */
import { FencedError } from '../protocol/index.js';
import { decodeJson, versionOfRecord, type StateRecord } from '../store/records.js';
import type { CommitterOptions } from './commit-types.js';
import type { CommitStore } from './commit-store/port.js';
import type { KeyFold } from './key-fold.js';
import type { CachedRecord } from './record-cache.js';

/**
 * Writes the records of `keys` with CAS; resolves with the guessed-new keys that existed after
 * all. A record refused for its size (the client's max_payload, the bucket's max_msg_size) goes
 * into `refused`, not thrown: that key's operations fail, the others' are committed.
 */
export async function writeRecords(o: CommitterOptions, keys: string[], folds: Map<string, KeyFold>, guessed: Set<string>, refused: Map<string, unknown>): Promise<string[]> {
  if (keys.length === 0 || o.aborted()) return [];
  if (!o.leaseValid()) throw new FencedError(`partition ${o.partition}: lease not held, refusing to write`);
  const { topology, partition, store, epoch } = o;
  const tail = `,"seq":`;
  const meta = `,"epoch":${epoch},"gen":${topology.controlCreated},"stream":${topology.streamCreated},"updatedAt":"${new Date().toISOString()}"`;
  const write = async (k: string): Promise<boolean> => {
    const rec = (folds.get(k) as KeyFold).rec;
    const fx = effectsJson(rec);
    // The version that wrote it (absent: 1): no worker of an older version overwrites it.
    const v = rec.version !== undefined && rec.version > 1 ? `,"version":${rec.version}` : '';
    const body = rec.json === null ? `{"state":null${tail}${rec.seq}${meta}${fx}${v},"deleted":true}` : `{"state":${rec.json}${tail}${rec.seq}${meta}${fx}${v}}`;
    try {
      // Revision 0 is a create: the CAS fails if the key has any entry at all.
      rec.revision = await store.writeRecord(k, encodeText(body), rec.revision, o.leaseValid);
      return true;
    } catch (err) {
      const kind = store.errorKind(err);
      if (guessed.has(k) && kind === 'conflict') return false; // the guess was wrong
      if (kind === 'too-large') {
        refused.set(k, err);
        return true;
      }
      throw conflictOr(store, err, `partition ${partition}: record ${k} was written by someone else`);
    }
  };
  const settled = await Promise.allSettled(keys.map(write));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    o.cache.dropPartition(partition);
    throw failed.reason;
  }
  return keys.filter((_, i) => (settled[i] as PromiseFulfilledResult<boolean>).value === false);
}

/** Reads records into `into` (and the cache); a record of a newer owner fences this one. */
export async function loadRecords(
  o: CommitterOptions,
  keys: string[],
  into: Map<string, CachedRecord>,
  /** Up to which seq a key's sends are known published (the checkpoint, or more after a take-over). */
  checkpointSeq: number | ((key: string) => number),
  staleTombstones: Map<string, number>,
  unsent: ReadonlySet<string>,
): Promise<void> {
  const { cache, topology, partition, epoch, store } = o;
  await Promise.all(
    keys.map(async (k) => {
      const entry = await store.readRecord(k);
      let rec: CachedRecord;
      if (!entry || entry.deleted) {
        rec = { json: null, seq: 0, revision: entry?.revision ?? 0, partition };
      } else {
        const stored = decodeJson<StateRecord>(entry.value);
        // Epochs are lease revisions, which only grow within one control bucket; `gen` tells
        // the bucket's incarnation, so a recreated bucket's small revisions still win.
        const gen = stored?.gen ?? 0;
        if (stored && (gen > topology.controlCreated || (gen === topology.controlCreated && stored.epoch > epoch))) {
          throw new FencedError(`partition ${partition}: record ${k} was written by a newer owner (epoch ${stored.epoch} > ${epoch})`);
        }
        // A seq of another incarnation of the operations stream says nothing about this one.
        const sameStream = stored?.stream === undefined || stored.stream === topology.streamCreated;
        const deleted = !stored || stored.deleted === true;
        rec = { json: deleted ? null : JSON.stringify(stored.state), seq: sameStream ? (stored?.seq ?? 0) : 0, revision: entry.revision, partition };
        if (stored && Array.isArray(stored.timers) && stored.timers.length > 0) rec.timers = stored.timers;
        if (stored && versionOfRecord(stored) > 1) rec.version = versionOfRecord(stored);
        // Sends the checkpoint has passed were published, unless the checkpoint lists the key as
        // unsent (a full stream refused them); later ones may not have been (a crash between the
        // record and the checkpoint): the committer publishes them again.
        const published = typeof checkpointSeq === 'number' ? checkpointSeq : checkpointSeq(k);
        const pending = sameStream && Array.isArray(stored?.outbox) ? (stored.outbox ?? []).filter((x) => x.seq > published || unsent.has(k)) : [];
        if (pending.length > 0) rec.outbox = pending;
        // Places of sends in another incarnation of the stream say nothing about this one.
        if (sameStream && stored?.received && typeof stored.received === 'object') rec.received = stored.received;
        if (deleted && stored && sameStream && stored.seq <= published && !rec.received && !rec.outbox && !unsent.has(k)) staleTombstones.set(k, entry.revision);
      }
      into.set(k, rec);
      cache.set(k, rec);
    }),
  );
}

/** The record's timers, outbox and received sends as the JSON fields that follow its metadata ('' when neither). */
function effectsJson(rec: CachedRecord): string {
  let out = '';
  if (rec.timers && rec.timers.length > 0) out += `,"timers":${JSON.stringify(rec.timers)}`;
  if (rec.outbox && rec.outbox.length > 0) out += `,"outbox":${JSON.stringify(rec.outbox)}`;
  if (rec.received) out += `,"received":${JSON.stringify(rec.received)}`;
  return out;
}

/**
 * UTF-8 bytes of a record or payload. `Buffer.from` takes short strings from Node's shared
 * pool slab; `TextEncoder#encode` allocates a new buffer for each, which showed up in a
 * worker's profile (the bytes are copied into the connection's buffer at publish).
 */
export function encodeText(s: string): Uint8Array {
  return Buffer.from(s);
}

/** A lost compare-and-set (someone else wrote) as a {@link FencedError}; any other error as it is. */
export function conflictOr(store: Pick<CommitStore, 'errorKind'>, err: unknown, message: string): unknown {
  return store.errorKind(err) === 'conflict' ? new FencedError(message, { cause: err }) : err;
}
