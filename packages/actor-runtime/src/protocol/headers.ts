/**
 * Every header name on the wire: the runtime's own (`Jetactor-*`) on operations, dead letters
 * and replies, the query and call request headers, and the JetStream and KV headers the
 * runtime sets or reads.
 */

/** Header that carries the inbox a caller awaits the result on. */
export const REPLY_HEADER = 'Jetactor-Reply';
/** Header of a resubmitted dead letter's operation: the `dlqSeq` it was resubmitted from (decimal digits). */
export const RESUBMITTED_HEADER = 'Jetactor-Resubmitted';
/** Header of a send: `<sender type>.<sender key> <floor> <sender unit>` (the unit: `<p>` or `<p>@<id>`). */
export const SEND_HEADER = 'Jetactor-Send';
/** Header on the gateway's NATS call error replies: the HTTP status the same error would have. */
export const STATUS_HEADER = 'Jetactor-Status';

/**
 * Headers that make an operation message set a timer instead of being applied now: at the
 * timer's time the worker applies the operation (with the message's payload as input).
 * `At` is ms since the epoch or an ISO 8601 time; `DelayMs` counts from the message's time in
 * the stream; `Id` (default `t<seq>`) replaces a timer of the same id; `EveryMs` and `Cron`
 * (UTC) make it recurring.
 */
export const TimerHeaders = {
  Id: 'Jetactor-Timer-Id',
  At: 'Jetactor-Timer-At',
  DelayMs: 'Jetactor-Timer-Delay-Ms',
  EveryMs: 'Jetactor-Timer-Every-Ms',
  Cron: 'Jetactor-Timer-Cron',
} as const;

/** Headers of a dead letter. */
export const DeadLetterHeaders = {
  Seq: 'Jetactor-Seq',
  Subject: 'Jetactor-Subject',
  Code: 'Jetactor-Error-Code',
  Message: 'Jetactor-Error-Message',
  Time: 'Jetactor-Time',
  /** On a dead letter of a resubmitted operation that failed again: the dlqSeq it was resubmitted from. */
  Resubmitted: RESUBMITTED_HEADER,
} as const;

/** Request headers of a query. */
export const QueryHeaders = {
  /** Answer only from a state that includes the operation of this stream sequence (read-your-writes). */
  MinSeq: 'Min-Seq',
  /** How long the worker may wait for `Min-Seq`, in ms (default 5000, at most 60000). */
  TimeoutMs: 'Timeout-Ms',
} as const;

/** Request headers of the gateway's NATS calls (as their HTTP counterparts). */
export const CallHeaders = {
  /** The call's idempotency key (as HTTP's `Idempotency-Key`). */
  IdempotencyKey: 'Idempotency-Key',
  /** The call's timeout in ms (as HTTP's `?timeoutMs=`). */
  TimeoutMs: 'Timeout-Ms',
  /** The payload's encoding: only `identity` (or none) is accepted. */
  ContentEncoding: 'Content-Encoding',
} as const;

/** JetStream's de-duplication header; an operation that has one gets its outcome kept. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';
/** JetStream's compare-and-set header: the last sequence stored on the subject must be this. */
export const EXPECTED_LAST_SUBJECT_SEQ_HEADER = 'Nats-Expected-Last-Subject-Sequence';
/**
 * The header nats-server puts on every message a stream stores from one of its sources: the
 * operations stream sourced the bindings' capture streams before the binding movers
 * (processing/binding-mover.ts), so a message that has it is a bound operation (or a direct
 * publish that forged it, which is then plain too).
 */
export const STREAM_SOURCE_HEADER = 'Nats-Stream-Source';
/** Start of the msg id of every message a binding mover publishes (`$b.<mac>.<capture>.<seq>`). */
export const BOUND_MSG_ID_PREFIX = '$b.';
/** The KV header of a delete or purge marker (`DEL`, `PURGE`); absent on a put. */
export const KV_OPERATION_HEADER = 'KV-Operation';
