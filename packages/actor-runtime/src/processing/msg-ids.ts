/** The `Nats-Msg-Id`s the runtime gives sends and timer firings: deterministic, keyed with the workers' salt. */
import { saltedMac } from '../store/salt.js';
import type { StoredTimer } from '../store/records.js';

/** Characters of the HMAC in the runtime's msg ids of sends and timer firings (132 bits). */
const MSG_ID_MAC_CHARS = 22;

/**
 * The `Nats-Msg-Id` of send `i` of the operation at stream seq `seq`: `$s.<mac>.<stream>.<seq>.<i>`,
 * the mac an HMAC of the other three keyed with the workers' salt. The same on every replay of
 * the operation, unique in the stream, and made only by who can read the salt; the salt is not
 * in it (ids before were `$s.<salt>.<stream>.<seq>.<i>`: anyone who could subscribe to the
 * operations read it).
 */
export function sendMsgId(salt: string, stream: number, seq: number, i: number): string {
  return `$s.${sendMac(salt, stream, seq, i)}.${stream}.${seq}.${i}`;
}

/** The mac part of {@link sendMsgId}. */
export function sendMac(salt: string, stream: number, seq: number | string, i: number | string): string {
  return saltedMac(salt, ['$s', String(stream), String(seq), String(i)], MSG_ID_MAC_CHARS);
}


/**
 * The `Nats-Msg-Id` of a timer's firing: the same for every attempt at one occurrence, an HMAC
 * keyed with the workers' salt (was `$f.<salt>.<stream>.<stateKey>.<id>.<n>.<at>`, which showed
 * the salt). Nothing parses it: the fold matches a firing by its payload.
 */
export function fireMsgId(salt: string, stream: number, stateKey: string, t: Pick<StoredTimer, 'id' | 'n' | 'at'>): string {
  return `$f.${saltedMac(salt, ['$f', String(stream), stateKey, t.id, String(t.n), String(t.at)], MSG_ID_MAC_CHARS)}`;
}
