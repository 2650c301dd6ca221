/**
 * A receiver recognises a send it has applied, whatever the stream's duplicate window.
 *
 * A send's `Nats-Msg-Id` (`$s.<mac>.<stream>.<seq>.<i>`, see `sendMsgId`) names its place among its sender's
 * sends: the stream seq of the operation that made it and its index, here one number
 * `seq * 1000 + i` (an operation makes at most 100 sends). The stream drops a send published
 * again inside its duplicate window; one published again later (a partition stuck longer, a
 * lost checkpoint) is stored a second time. So each send also carries, in the
 * {@link SEND_HEADER} header, its sender's state key and the sender's floor: the place of the
 * oldest send in the sender's outbox when it was published; every send before the floor was
 * acknowledged by the stream earlier, so its receiver has seen it.
 *
 * The receiving record keeps per sender the highest floor seen and the places applied at or
 * above it (`received`). A send below the floor or among those places is a duplicate, skipped.
 * One sender's sends are published in order, so what is kept per sender is about one outbox;
 * at most {@link MAX_SENDERS} senders are kept (the least recently heard from goes first).
 *
 * Only a send whose msg id the workers' salt made is trusted: a publisher that cannot read
 * the control bucket cannot make a receiver drop a real send.
 */
import type { StoredSend } from '../store/records.js';
import { sendMac } from './effects.js';

/** Header of a send: `<sender type>.<sender key> <floor>`. */
export const SEND_HEADER = 'Jetactor-Send';
/** Senders a receiving record remembers. */
export const MAX_SENDERS = 128;
/** Places kept per sender above its floor. */
const MAX_PLACES = 64;

/** What a receiver needs of a send: who sent it, its place, and the sender's floor. */
export interface SendMark {
  from: string;
  pos: number;
  floor: number;
}

/** Per sender state key: `[floor, ...places applied at or above it]`, ascending. */
export type Received = Readonly<Record<string, readonly number[]>>;

/** The place of a stored send. */
export function sendPos(x: Pick<StoredSend, 'id' | 'seq'>): number {
  return x.seq * 1000 + Number(x.id.slice(x.id.lastIndexOf('.') + 1));
}

/** The {@link SEND_HEADER} value of the sends of `from`, whose unacknowledged outbox is `outbox`. */
export function sendHeader(from: string, outbox: readonly StoredSend[]): string {
  return `${from} ${outbox.length > 0 ? sendPos(outbox[0] as StoredSend) : 0}`;
}

const HEADER = /^([A-Za-z0-9_=-]{1,64}\.[A-Za-z0-9_=-]{1,128}) (\d{1,18})$/;

const SEND_ID = /^\$s\.([A-Za-z0-9_-]{1,64})\.(\d{1,15})\.(\d{1,15})\.(\d{1,3})$/;

/**
 * The send a message carries, if its msg id is the runtime's own (made with this salt, for this
 * stream); else undefined. An id of an older version, with the salt itself in place of the mac,
 * is the runtime's own too: sends it stored or left in outboxes before an upgrade are still
 * recognised when they are published again (trusting it costs nothing: whoever read the salt
 * in such an id can make the mac as well).
 */
export function trustedSend(raw: { id: string; header: string }, salt: string, stream: number): SendMark | undefined {
  const id = SEND_ID.exec(raw.id);
  if (!id || id[2] !== String(stream)) return undefined;
  if (id[1] !== salt && id[1] !== sendMac(salt, stream, id[3] as string, id[4] as string)) return undefined;
  const h = HEADER.exec(raw.header);
  if (!h) return undefined;
  const pos = Number(id[3]) * 1000 + Number(id[4]);
  const floor = Number(h[2]);
  return floor <= pos ? { from: h[1] as string, pos, floor } : undefined;
}

/** True when the record has applied this send already. */
export function isDuplicateSend(received: Received | undefined, s: SendMark): boolean {
  const seen = received?.[s.from];
  if (!seen) return false;
  return s.pos < (seen[0] as number) || seen.indexOf(s.pos, 1) > 0;
}

/** `received` with `s` applied (a new object: the cached record's must not change before the commit). */
export function withSend(received: Received | undefined, s: SendMark): Received {
  const seen = received?.[s.from];
  const floor = Math.max(seen?.[0] ?? 0, s.floor);
  let places = (seen ?? []).slice(1).filter((p) => p >= floor && p !== s.pos);
  places.push(s.pos);
  places.sort((a, b) => a - b);
  // Bounded: the oldest places go, and the floor rises to the oldest kept.
  const overflow = places.length > MAX_PLACES;
  if (overflow) places = places.slice(-MAX_PLACES);
  const next: Record<string, readonly number[]> = { ...received };
  // Re-inserted last: the first key is the least recently heard from.
  delete next[s.from];
  next[s.from] = [overflow ? (places[0] as number) : floor, ...places];
  const senders = Object.keys(next);
  for (let i = 0; i < senders.length - MAX_SENDERS; i++) delete next[senders[i] as string];
  return next;
}

/** Most bytes of `received` in a record. */
const MAX_RECEIVED_BYTES = 16 * 1024;
/**
 * Of the record's headroom (its bound is the state bound plus 1 KiB for metadata and headers),
 * what `received` may use even beside a state at its bound.
 */
const RECEIVED_SLACK = 512;

/**
 * `rec.received` trimmed (least recently heard senders first) so the record still fits one
 * message: it takes the room the state, timers and sends leave, at most {@link MAX_RECEIVED_BYTES}.
 * Its JSON is ASCII (state keys and numbers), so characters are bytes.
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
  const next: Record<string, readonly number[]> = { ...received };
  for (const k of Object.keys(next)) {
    if (size <= room) break;
    size -= JSON.stringify(k).length + JSON.stringify(next[k]).length + 2;
    delete next[k];
  }
  return Object.keys(next).length > 0 ? next : undefined;
}
