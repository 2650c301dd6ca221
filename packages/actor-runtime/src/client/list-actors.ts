/**
 * Listing the actors of a type at O(page): read the state bucket's own stream
 * (`KV_<bucket>`, history 1, so one message per live key) from a cursor, instead of reading
 * every key and sorting for each page.
 */
import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import { validateName, type ActorNames } from '../protocol/index.js';
import { decodeJson, versionOfRecord, type StateRecord } from '../store/records.js';
import type { ActorSnapshot } from './results.js';

/** Options of a listing. */
export interface ListOptions {
  /** Only keys that start with this. */
  prefix?: string;
  /** Most items per page, 1-1000. Default 100. */
  limit?: number;
  /** The `nextCursor` of the previous page (digits); unset for the first page. */
  cursor?: string;
  /**
   * The newest version of the type the caller knows registered: a client without the type's
   * definition shows records older than it migrated by a worker (see `ActorClient.read`).
   */
  version?: number;
}

/** One page of a listing. */
export interface ListPage {
  items: ActorSnapshot[];
  /** Pass as `cursor` for the next page; null when the listing is complete. */
  nextCursor: string | null;
}

/** Largest `limit` of one page. */
export const MAX_PAGE_LIMIT = 1000;
/**
 * Most records one page reads, per item asked for: a rare `prefix` (or many deleted records)
 * makes a page return fewer items and a cursor to go on, never scan the whole bucket at once.
 */
export const SCAN_PER_ITEM = 10;
/** How long a page's consumer waits for messages the server said are there, in ms. */
const FETCH_EXPIRES_MS = 2_000;
/** An abandoned page consumer (a client that died mid-page) is removed by the server after this, in ms. */
const CONSUMER_INACTIVE_MS = 30_000;

const CURSOR = /^[0-9]{1,16}$/;

/** Parses a cursor: a stream sequence in digits. Throws a `RangeError` for anything else. */
export function parseCursor(cursor: string | undefined): number {
  if (cursor === undefined || cursor === '') return 0;
  const n = Number(cursor);
  if (!CURSOR.test(cursor) || !Number.isSafeInteger(n)) throw new RangeError(`cursor must be the nextCursor of a previous page (digits), got '${cursor.slice(0, 64)}'`);
  return n;
}

const KV_OPERATION = 'KV-Operation';

/**
 * Lists the live actors of `type`, in the order of their last update. A page reads at most
 * `limit * SCAN_PER_ITEM` records, whatever the number of actors; what grows with them is only
 * nats-server counting the type's records after the cursor when it creates the page's
 * consumer (its `num_pending`, tens of ns per record), which says whether a next page exists.
 *
 * The cursor is the last stream sequence read. An actor updated while you page moves to the end
 * of the bucket's stream, so it may appear again on a later page; none that lives throughout
 * is missed. Deleted actors (tombstone records and KV delete or purge markers) are skipped.
 */
export async function listActors(js: JetStreamClient, names: ActorNames, type: string, opts: ListOptions = {}): Promise<ListPage> {
  validateName('type', type);
  const limit = Math.max(1, Math.min(MAX_PAGE_LIMIT, Math.floor(opts.limit ?? 100)));
  const after = parseCursor(opts.cursor);
  const prefix = opts.prefix ?? '';
  const subjectPrefix = `$KV.${names.stateBucket}.${type}.`;
  const consumer = await js.consumers.get(`KV_${names.stateBucket}`, {
    filter_subjects: [`${subjectPrefix}>`],
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: after + 1,
    inactive_threshold: CONSUMER_INACTIVE_MS,
  });
  const items: ActorSnapshot[] = [];
  let pending = (await consumer.info(true)).num_pending;
  let lastSeq = after;
  try {
    const maxScan = limit * SCAN_PER_ITEM;
    let scanned = 0;
    while (pending > 0 && items.length < limit && scanned < maxScan) {
      // Ask for what is missing (more when a prefix filters), so the server sends about a page.
      const want = Math.min(maxScan - scanned, pending, prefix ? Math.max(limit - items.length, 100) : limit - items.length);
      const batch = await consumer.fetch({ max_messages: want, expires: FETCH_EXPIRES_MS });
      let got = 0;
      for await (const m of batch) {
        got++;
        scanned++;
        lastSeq = m.seq;
        pending = m.info.pending;
        const key = m.subject.slice(subjectPrefix.length);
        const snapshot = key.startsWith(prefix) && !m.headers?.get(KV_OPERATION) ? liveSnapshot(type, key, m.data, m.seq) : null;
        if (snapshot) items.push(snapshot);
        if (items.length >= limit || pending === 0) break;
      }
      // Fewer than the server counted: records removed meanwhile; what is left is for the next page.
      if (got === 0) break;
    }
  } finally {
    consumer.delete().catch(() => undefined);
  }
  return { items, nextCursor: pending > 0 ? String(lastSeq) : null };
}

/** The snapshot of a stored record, or null for a deleted actor or a key that is no valid name. */
function liveSnapshot(type: string, key: string, data: Uint8Array, revision: number): ActorSnapshot | null {
  try {
    validateName('key', key);
  } catch {
    return null;
  }
  const rec = decodeJson<StateRecord>(data);
  if (!rec || rec.deleted === true) return null;
  const version = versionOfRecord(rec);
  return { type, key, state: rec.state, seq: rec.seq, revision, exists: true, ...(version > 1 ? { version } : {}) };
}

