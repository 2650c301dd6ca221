/**
 * Dead letters: a failed operation is published to `<prefix>_dlq.<type>.<key>.<op>` (names
 * that are not valid: `<prefix>_dlq._invalid._._`) with its payload and the
 * {@link DeadLetterHeaders}, and the timer headers of a message that set a timer.
 */
import type { MsgHdrs } from '@nats-io/nats-core';
import { DeadLetterHeaders, TimerHeaders } from './headers.js';

/** A failed operation kept in the dead-letter stream. */
export interface DeadLetter {
  /** Sequence in the dead-letter stream (the id to resubmit). */
  dlqSeq: number;
  /** Sequence of the failed operation in the operations stream. */
  seq: number;
  /** The operation's subject, `actors.<type>.<key>.<op>`. */
  subject: string;
  type: string;
  key: string;
  op: string;
  /** Error code and message of the failure. */
  code: string;
  message: string;
  /** The original payload, as text. */
  payload: string;
  /** When the operation was stored, ISO 8601. */
  time: string;
  /**
   * The timer headers of a message that set a timer and failed (`Jetactor-Timer-At` as `at`,
   * `-Delay-Ms` as `delayMs`, …, as they were sent): `ActorClient.resubmit` sends them
   * again, so the timer is asked for again. Absent for an operation applied at once, and for a
   * timer's firing (its dead letter is the operation it applied).
   */
  timer?: { id?: string; at?: string; delayMs?: string; everyMs?: string; cron?: string };
  /** Set when the operation was resubmitted from an earlier dead letter and failed again: that dead letter's `dlqSeq`. */
  resubmitted?: number;
}

/** {@link DeadLetter.timer}'s fields and the headers they come from. */
export const DEAD_LETTER_TIMER = [
  ['id', TimerHeaders.Id],
  ['at', TimerHeaders.At],
  ['delayMs', TimerHeaders.DelayMs],
  ['everyMs', TimerHeaders.EveryMs],
  ['cron', TimerHeaders.Cron],
] as const;

const dec = new TextDecoder();

/**
 * Decodes a message of the dead-letter stream: `dlqSeq` and `nanos` (its time) from the stream,
 * `subject` its own subject, `h` and `data` its headers and payload.
 */
export function decodeDeadLetter(dlqSeq: number, subject: string, h: MsgHdrs | undefined, data: Uint8Array, nanos: number): DeadLetter {
  // The original subject names the actor; the dead letter's own subject does not when the
  // names were invalid (those are all kept under `<prefix>_dlq._invalid._._`).
  const original = h?.get(DeadLetterHeaders.Subject) ?? '';
  const tokens = original.split('.');
  const [, type = '', key = '', op = ''] = tokens.length === 4 ? tokens : subject.split('.');
  const resubmitted = Number(h?.get(DeadLetterHeaders.Resubmitted) || 0);
  let timer: DeadLetter['timer'];
  for (const [field, header] of DEAD_LETTER_TIMER) {
    const value = h?.get(header) ?? '';
    if (value !== '') (timer ??= {})[field] = value;
  }
  return {
    dlqSeq,
    seq: Number(h?.get(DeadLetterHeaders.Seq) ?? 0),
    subject: h?.get(DeadLetterHeaders.Subject) ?? '',
    type,
    key,
    op,
    code: h?.get(DeadLetterHeaders.Code) ?? '',
    message: h?.get(DeadLetterHeaders.Message) ?? '',
    payload: dec.decode(data),
    time: h?.get(DeadLetterHeaders.Time) ?? new Date(Math.floor(nanos / 1e6)).toISOString(),
    ...(timer ? { timer } : {}),
    ...(resubmitted > 0 ? { resubmitted } : {}),
  };
}
