/**
 * A receiver recognises a send it has applied, whatever the stream's duplicate window.
 *
 * A send's `Nats-Msg-Id` (`$s.<mac>.<stream>.<seq>.<i>`, see `sendMsgId`) names its place among the sends of
 * its sender's partition: the stream seq of the operation that made it and its index
 * ({@link placeOf}). The stream drops a send published again inside its duplicate window; one
 * published again later (a partition stuck longer, a lost checkpoint, an outbox that waited in
 * a full stream) is stored a second time. So each send also carries, in the {@link SEND_HEADER}
 * header, its sender's partition and that partition's floor: a place below every send of the
 * partition not yet acknowledged by the stream when it was published. Every send below the
 * floor was stored before this one, so its receiver has seen it.
 *
 * The receiving record keeps, per sender partition (at most the partition count, so no sender
 * is ever forgotten for another), the highest floor declared and the places applied at or above
 * it (`received`). Precisely: per sender *unit*, the committer that publishes the partition's
 * sends and declares its floors: `<p>`. Two committers of one partition (services reading the
 * same partition for different types, each with its own checkpoint) must name distinct units,
 * `<p>@<id>`: one's floor says nothing of the other's unacknowledged sends. A send below the floor or among those places is a duplicate, skipped. The
 * floor only ever comes from a declaration: when more than {@link MAX_PLACES} places pile up
 * above it, the oldest places go but the floor stays. Raising it to the oldest place kept
 * assumed the sends were stored in order, and a full stream can refuse one send and take the
 * next: the refused one, stored later, fell below such a floor and was skipped (lost). The
 * sender keeps the pile small: it publishes at most {@link MAX_PLACES} sends to one receiver
 * before awaiting their acks, which lets the next ones declare a higher floor (see commit.ts).
 *
 * Records written before the per-partition form hold entries per sender state key
 * (`"<type>.<key>"`, the key has a dot, a partition's has none); they are still consulted, and
 * one is dropped once its partition's floor has passed everything it holds.
 *
 * Only a send whose msg id the workers' salt made is trusted: a publisher that cannot read
 * the control bucket cannot make a receiver drop a real send.
 */
import { partitionOf } from '../protocol/index.js';
import type { StoredSend } from '../store/records.js';
import { sendMac } from './msg-ids.js';

/** Places kept per sender partition above its floor; also the most sends to one receiver published before awaiting their acks. */
export const MAX_PLACES = 64;

/**
 * A send's place: `seq * 1000 + i` while that is a safe integer (every record written so far
 * holds these), else the text `"<seq>.<i>"` (past seq ~9e12, where the product would lose
 * precision and two sends could share a place). Compare with {@link comparePlaces}.
 */
export type Place = number | string;

/** Largest seq whose places are numbers. */
const MAX_NUMERIC_SEQ = Math.floor((Number.MAX_SAFE_INTEGER - 999) / 1000);

/** The place of send `i` of the operation at `seq`. */
export function placeOf(seq: number, i: number): Place {
  return seq <= MAX_NUMERIC_SEQ ? seq * 1000 + i : `${seq}.${i}`;
}

function seqAndIndex(p: Place): [number, number] {
  if (typeof p === 'number') return [Math.floor(p / 1000), p % 1000];
  const dot = p.indexOf('.');
  return [Number(p.slice(0, dot)), Number(p.slice(dot + 1))];
}

/** Negative, zero or positive as place `a` comes before, at or after `b`. */
export function comparePlaces(a: Place, b: Place): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const [sa, ia] = seqAndIndex(a);
  const [sb, ib] = seqAndIndex(b);
  return sa - sb || ia - ib;
}

/** The earlier of two places. */
export function minPlace(a: Place, b: Place): Place {
  return comparePlaces(a, b) <= 0 ? a : b;
}

/** What a receiver needs of a send: who sent it, from which partition and unit, its place, and the floor declared with it. */
export interface SendMark {
  from: string;
  partition: number;
  /** The sender unit (`<p>` or `<p>@<id>`): the key of its entry in `received`. */
  unit: string;
  pos: Place;
  /** Undefined for a send of an older version, whose floor was its sender key's, not its partition's. */
  floor: Place | undefined;
}

/** Per sender partition (or, in older records, per sender state key): `[floor, ...places applied at or above it]`, ascending. */
export type Received = Readonly<Record<string, readonly Place[]>>;

/** The place of a stored send. */
export function sendPos(x: Pick<StoredSend, 'id' | 'seq'>): Place {
  return placeOf(x.seq, Number(x.id.slice(x.id.lastIndexOf('.') + 1)));
}

/** The {@link SEND_HEADER} value of a send of `from` published by sender unit `unit` while its floor is `floor`. */
export function sendHeader(from: string, floor: Place, unit: string): string {
  return `${from} ${floor} ${unit}`;
}

const SEND_ID = /^\$s\.([A-Za-z0-9_-]{1,64})\.(\d{1,15})\.(\d{1,15})\.(\d{1,3})$/;
const HEADER = /^(([A-Za-z0-9_=-]{1,64})\.([A-Za-z0-9_=-]{1,128})) (\d{1,16})(?:\.(\d{1,3}))?(?: ((\d{1,4})(?:@[A-Za-z0-9_-]{1,64})?))?$/;

/**
 * The send a message carries, if its msg id is the runtime's own (made with this salt, for this
 * stream); else undefined. An id of an older version, with the salt itself in place of the mac,
 * is the runtime's own too: sends it stored or left in outboxes before an upgrade are still
 * recognised when they are published again (trusting it costs nothing: whoever read the salt
 * in such an id can make the mac as well). A header of an older version (no partition) still
 * counts, without its floor.
 */
export function trustedSend(raw: { id: string; header: string }, salt: string, stream: number, partitions: number): SendMark | undefined {
  const id = SEND_ID.exec(raw.id);
  if (!id || id[2] !== String(stream)) return undefined;
  if (id[1] !== salt && id[1] !== sendMac(salt, stream, id[3] as string, id[4] as string)) return undefined;
  const h = HEADER.exec(raw.header);
  if (!h) return undefined;
  const pos = placeOf(Number(id[3]), Number(id[4]));
  const from = h[1] as string;
  const n = Number(h[4]);
  if (!Number.isSafeInteger(n)) return undefined;
  if (h[6] === undefined) {
    // An older sender's header: its floor was its own key's, which says nothing of its partition's other keys.
    if (h[5] !== undefined) return undefined;
    const partition = partitionOf(h[2] as string, h[3] as string, partitions);
    return { from, partition, unit: String(partition), pos, floor: undefined };
  }
  const partition = Number(h[7]);
  if (partition >= partitions) return undefined;
  // Either form of the floor, read back as the one place it names.
  const floor = h[5] === undefined ? placeOf(Math.floor(n / 1000), n % 1000) : placeOf(n, Number(h[5]));
  return comparePlaces(floor, pos) <= 0 ? { from, partition, unit: h[6], pos, floor } : undefined;
}

function seenIn(entry: readonly Place[] | undefined, pos: Place): boolean {
  if (!entry || entry.length === 0) return false;
  return comparePlaces(pos, entry[0] as Place) < 0 || entry.indexOf(pos, 1) > 0;
}

/** True when the record has applied this send already. */
export function isDuplicateSend(received: Received | undefined, s: SendMark): boolean {
  if (!received) return false;
  return seenIn(received[s.unit], s.pos) || seenIn(received[s.from], s.pos);
}

/** True for an entry of an older record, kept per sender state key. */
function isLegacyEntry(key: string): boolean {
  return key.includes('.');
}

/** `received` with `s` applied (a new object: the cached record's must not change before the commit). */
export function withSend(received: Received | undefined, s: SendMark, partitions: number): Received {
  const key = s.unit;
  const seen = received?.[key];
  let floor: Place = seen?.[0] ?? 0;
  if (s.floor !== undefined && comparePlaces(s.floor, floor) > 0) floor = s.floor;
  let places = (seen ?? []).slice(1).filter((p) => p !== s.pos && comparePlaces(p, floor) >= 0);
  places.push(s.pos);
  places.sort(comparePlaces);
  // Bounded: the oldest places go, and the floor stays where the sender declared it (see above).
  if (places.length > MAX_PLACES) places = places.slice(-MAX_PLACES);
  const next: Record<string, readonly Place[]> = { ...received, [key]: [floor, ...places] };
  // Entries of older records were kept by senders of the partition's only committer, `<p>`.
  for (const k of key === String(s.partition) ? Object.keys(next) : []) {
    if (!isLegacyEntry(k)) continue;
    const old = next[k] as readonly Place[];
    // Everything it holds is below its partition's floor now: that floor says it all.
    if (old.length > 0 && comparePlaces(old[old.length - 1] as Place, floor) < 0 && partitionOfStateKey(k, partitions) === s.partition) delete next[k];
  }
  return next;
}

function partitionOfStateKey(stateKey: string, partitions: number): number {
  const dot = stateKey.indexOf('.');
  return partitionOf(stateKey.slice(0, dot), stateKey.slice(dot + 1), partitions);
}

/** Most bytes of `received` in a record. */
const MAX_RECEIVED_BYTES = 16 * 1024;
/**
 * Of the record's headroom (its bound is the state bound plus 1 KiB for metadata and headers),
 * what `received` may use even beside a state at its bound.
 */
const RECEIVED_SLACK = 512;

/**
 * `rec.received` trimmed so the record still fits one message: it takes the room the state,
 * timers and sends leave, at most {@link MAX_RECEIVED_BYTES}. What goes first is what is least
 * needed: entries of older records, then the oldest places of the partitions with the most,
 * and only beside a state at its bound whole partitions (the lowest floor first). Its JSON is
 * ASCII (digits, dots and state keys), so characters are bytes.
 */
export function fitReceived(rec: { json: string | null; timers?: unknown; outbox?: unknown; received?: Received }, maxStateBytes: number): Received | undefined {
  const received = rec.received;
  if (!received) return undefined;
  let size = JSON.stringify(received).length;
  // The state with its timers and sends is within the bound (the fold checks it): the slack is always there.
  if (size <= RECEIVED_SLACK) return received;
  const json = rec.json ?? 'null';
  const effects = (rec.timers ? JSON.stringify(rec.timers) : '') + (rec.outbox ? JSON.stringify(rec.outbox) : '');
  // At most 3 bytes per UTF-16 unit; count bytes only when that bound leaves too little room.
  let used = (json.length + effects.length) * 3;
  if (maxStateBytes - used + RECEIVED_SLACK < MAX_RECEIVED_BYTES) used = Buffer.byteLength(json) + Buffer.byteLength(effects);
  const room = Math.min(MAX_RECEIVED_BYTES, maxStateBytes - used + RECEIVED_SLACK);
  if (size <= room) return received;
  const next: Record<string, Place[]> = {};
  for (const [k, v] of Object.entries(received)) next[k] = [...v];
  const entrySize = (k: string) => JSON.stringify(k).length + JSON.stringify(next[k]).length + 1;
  for (const k of Object.keys(next)) {
    if (size <= room) break;
    if (!isLegacyEntry(k)) continue;
    size -= entrySize(k);
    delete next[k];
  }
  while (size > room) {
    let most: Place[] | undefined;
    for (const v of Object.values(next)) if (v.length > 1 && (!most || v.length > most.length)) most = v;
    if (!most) break;
    size -= JSON.stringify(most.splice(1, 1)[0]).length + 1;
  }
  const byFloor = Object.keys(next).sort((a, b) => comparePlaces((next[a] as Place[])[0] as Place, (next[b] as Place[])[0] as Place));
  for (const k of byFloor) {
    if (size <= room) break;
    size -= entrySize(k);
    delete next[k];
  }
  return Object.keys(next).length > 0 ? next : undefined;
}
