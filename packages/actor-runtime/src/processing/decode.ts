import type { JsMsg } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/nats-core';
import { ActorError, BOUND_MSG_ID_PREFIX, InvalidInputError, isValidReplySubject, MSG_ID_HEADER, REPLY_HEADER, RESUBMITTED_HEADER, SEND_HEADER, STREAM_SOURCE_HEADER, parseStoredSubject, stateKey, TimerHeaders, validateName, type ActorNames } from '../protocol/index.js';
import type { TimerRequest } from '../effects/effects.js';

/** One stored operation, decoded; no reference to the message is kept. */
export interface DecodedOp {
  /** False for a message whose subject has not the operation shape (skipped, logged). */
  valid: boolean;
  /** Another lane applies it (ownership/placement.ts): the checkpoint passes it, nothing else. */
  skip?: true;
  seq: number;
  type: string;
  key: string;
  op: string;
  subject: string;
  data: Uint8Array;
  /** Time the operation was stored (ms since the epoch). */
  time: number;
  /** A reply subject that passed {@link isValidReplySubject}; undefined when there is none or it was refused. */
  reply: string | undefined;
  /** The reply header's value when it was refused (truncated), for the log. */
  refusedReply?: string;
  /** True when the operation was published with a `Nats-Msg-Id` (an idempotency key) that is not the runtime's own. */
  hasMsgId: boolean;
  /** The timer headers ({@link TimerHeaders}) when the message sets a timer instead of being applied now. */
  timer?: TimerRequest;
  /** A runtime send's msg id and {@link SEND_HEADER} (checked by the fold against the workers' salt). */
  send?: { id: string; header: string };
  /** The {@link RESUBMITTED_HEADER}: the dead letter (`dlqSeq`) this operation was resubmitted from. */
  resubmitted?: string;
  /** What {@link decodeOperation} found of the subject: the state key and the name check (null: valid names). */
  names?: { stateKey: string; error: ActorError | null };
}

/** A stored subject parsed and its names checked, once per distinct subject. */
interface SubjectInfo {
  parsed: ReturnType<typeof parseStoredSubject>;
  names: { stateKey: string; error: ActorError | null };
}

/**
 * The subjects seen last: a worker reads the same actors' subjects again and again, and
 * splitting and checking each (three regular expressions) was ~5% of its CPU. Bounded: it is
 * cleared when full, so a key space larger than it costs what it cost before.
 */
const subjectCache = new Map<string, SubjectInfo>();
const SUBJECT_CACHE_SIZE = 16_384;
/** Longer subjects are not cached: a publisher could otherwise fill the cache with 4 KB ones. */
const CACHED_SUBJECT_LENGTH = 256;

function subjectInfo(subject: string): SubjectInfo {
  let info = subjectCache.get(subject);
  if (info !== undefined) return info;
  const parsed = parseStoredSubject(subject);
  const names = parsed === null ? { stateKey: '', error: null } : { stateKey: stateKey(parsed.type, parsed.key), error: nameError(parsed) ?? null };
  info = { parsed, names };
  if (subject.length > CACHED_SUBJECT_LENGTH) return info;
  if (subjectCache.size >= SUBJECT_CACHE_SIZE) subjectCache.clear();
  subjectCache.set(subject, info);
  return info;
}

/** Reads the timer headers; undefined when the message sets no timer. */
function timerRequest(h: MsgHdrs): TimerRequest | undefined {
  const at = h.get(TimerHeaders.At);
  const delayMs = h.get(TimerHeaders.DelayMs);
  const everyMs = h.get(TimerHeaders.EveryMs);
  const cron = h.get(TimerHeaders.Cron);
  if (!at && !delayMs && !everyMs && !cron) return undefined;
  const id = h.get(TimerHeaders.Id);
  return { ...(id ? { id } : {}), ...(at ? { at } : {}), ...(delayMs ? { delayMs } : {}), ...(everyMs ? { everyMs } : {}), ...(cron ? { cron } : {}) };
}

/** Writes a timer request back as the headers it was read from (a dead letter keeps them). */
export function setTimerHeaders(h: MsgHdrs, t: TimerRequest): void {
  if (t.id !== undefined) h.set(TimerHeaders.Id, t.id);
  if (t.at !== undefined) h.set(TimerHeaders.At, t.at);
  if (t.delayMs !== undefined) h.set(TimerHeaders.DelayMs, t.delayMs);
  if (t.everyMs !== undefined) h.set(TimerHeaders.EveryMs, t.everyMs);
  if (t.cron !== undefined) h.set(TimerHeaders.Cron, t.cron);
}

const EMPTY_PAYLOAD = new Uint8Array(0);

/**
 * Decodes a stored operation. The reply header comes from whoever published the operation
 * (plain `nats pub` can set any header), so it is kept only if it is a literal inbox subject:
 * a worker answers with its own credentials and must never publish into a bucket, a stream API
 * or another actor's subject, nor under its own inboxes (`ownInboxes`: where its writes are acknowledged).
 *
 * An operation captured from a bound subject is a plain operation: its publisher may be allowed
 * that subject only, so the runtime's headers on it (`Jetactor-Reply`, `Jetactor-Timer-*`) and
 * its `Nats-Msg-Id` mean nothing to the worker: no timer is set, no reply sent, no outcome kept.
 */
export function decodeOperation(m: JsMsg, names: Pick<ActorNames, 'inboxPrefix' | 'subjectPrefix'>, ownInboxes?: readonly string[]): DecodedOp {
  const subject = m.subject;
  const { parsed, names: checked } = subjectInfo(subject);
  const data = m.data;
  let reply: string | undefined;
  let refusedReply: string | undefined;
  let hasMsgId = false;
  let timer: TimerRequest | undefined;
  let send: { id: string; header: string } | undefined;
  let resubmitted: string | undefined;
  try {
    // nats.js parses headers on first access and throws on a malformed block (a name with a
    // space, a bare newline in a value), which a raw-protocol publisher can store.
    const h = m.headers;
    const id = h ? h.get(MSG_ID_HEADER) : '';
    // Not for a bound operation: one a binding mover published (its msg id starts with `$b.`), or
    // one nats-server sourced before the movers (a source header). A forged `$b.` id or source
    // header on a direct publish only makes that operation plain too.
    if (h && !id.startsWith(BOUND_MSG_ID_PREFIX) && !h.has(STREAM_SOURCE_HEADER)) {
      const r = h.get(REPLY_HEADER);
      if (r) {
        if (isValidReplySubject(r, names) && !(ownInboxes ?? []).some((p) => r.startsWith(`${p}.`))) reply = r;
        else refusedReply = r.length > 128 ? `${r.slice(0, 128)}…` : r;
      }
      // The runtime's own ids (sends, timer firings) start with `$`; no caller retries them.
      hasMsgId = id !== '' && !id.startsWith('$');
      const sender = id.startsWith('$s.') ? h.get(SEND_HEADER) : '';
      if (sender) send = { id, header: sender };
      timer = timerRequest(h);
      const again = h.get(RESUBMITTED_HEADER);
      if (again && /^[0-9]{1,16}$/.test(again)) resubmitted = again;
    }
  } catch {
    refusedReply = '<malformed headers>';
  }
  return {
    valid: parsed !== null,
    seq: m.seq,
    type: parsed?.type ?? '',
    key: parsed?.key ?? '',
    op: parsed?.op ?? '',
    subject,
    data: data.length === 0 ? EMPTY_PAYLOAD : new Uint8Array(data), // a copy (Buffer#slice would be a view)
    time: Math.floor(m.info.timestampNanos / 1e6),
    reply,
    ...(refusedReply !== undefined ? { refusedReply } : {}),
    hasMsgId,
    ...(timer ? { timer } : {}),
    ...(send ? { send } : {}),
    ...(resubmitted ? { resubmitted } : {}),
    names: checked,
  };
}

/** The error of an operation whose type, key or op is not a valid name, or undefined. */
export function nameError(op: Pick<DecodedOp, 'type' | 'key' | 'op'>): ActorError | undefined {
  try {
    validateName('type', op.type);
    validateName('key', op.key);
    validateName('op', op.op);
    return undefined;
  } catch (err) {
    return err instanceof ActorError ? err : new InvalidInputError(String(err));
  }
}
