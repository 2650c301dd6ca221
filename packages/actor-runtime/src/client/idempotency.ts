/**
 * What a publish that JetStream dropped as a duplicate (same `Nats-Msg-Id` inside the
 * duplicate window) means: the original must be the same operation with the same input, and a
 * retried call answers with the original's outcome.
 */
import { isDeepStrictEqual } from 'node:util';
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { ActorError, ErrorCode, outcomeKey, parseOperationReply, type OperationReply, parseOperationSubject, parseStoredSubject, type ActorNames } from '../protocol/index.js';
import { saltedMac, sharedSalt } from '../store/salt.js';

const dec = new TextDecoder();

/** The operation an idempotency key was first used for. */
interface OriginalOperation {
  type: string;
  key: string;
  op: string;
  data: Uint8Array;
}

/** The input as it travels: JSON, so `{a: undefined}` and `{}` are the same input. */
function normalized(input: unknown): unknown {
  return input === undefined ? undefined : (JSON.parse(JSON.stringify(input)) as unknown);
}

/** A stored payload as input: empty is no input, anything that is not JSON stays text. */
function decodedPayload(data: Uint8Array): unknown {
  const text = dec.decode(data);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { unparsable: text };
  }
}

async function original(jsm: JetStreamManager, names: ActorNames, seq: number): Promise<OriginalOperation | null> {
  const m = await jsm.streams.getMessage(names.stream, { seq });
  if (!m) return null;
  // Stored as `<p>.<prefix>.<type>.<key>.<op>` by the partition transform; a stream without it keeps the subject.
  const parsed = parseStoredSubject(m.subject) ?? parseOperationSubject(m.subject, names);
  return parsed ? { type: parsed.type, key: parsed.key, op: parsed.op, data: m.data } : null;
}

/**
 * Throws an {@link ActorError} with {@link ErrorCode.IdempotencyKeyReused} unless the operation
 * the stream holds at `seq` (the original a duplicate ack points to) is `type/key/op` with the
 * same input (compared as decoded JSON). An original that is no longer in the stream (applied
 * and purged, or aged out) cannot be compared and is taken as the same.
 */
export async function assertSameOperation(
  jsm: JetStreamManager,
  names: ActorNames,
  seq: number,
  sent: { type: string; key: string; op: string; input: unknown; idempotencyKey: string },
): Promise<void> {
  const first = await original(jsm, names, seq);
  if (!first) return;
  const same =
    first.type === sent.type && first.key === sent.key && first.op === sent.op && isDeepStrictEqual(decodedPayload(first.data), normalized(sent.input));
  if (same) return;
  throw new ActorError(
    ErrorCode.IdempotencyKeyReused,
    `Idempotency-Key '${sent.idempotencyKey}' was already used for operation '${first.op}' on ${first.type}/${first.key} ` +
      `with ${first.op === sent.op ? 'another input' : 'another operation'} (seq ${seq}); use a new key for a new operation`,
  );
}

/**
 * The `Nats-Msg-Id`s of what clients publish with a de-duplication id: an operation with an
 * idempotency key, a resubmitted dead letter. Each is an HMAC of what names it, keyed with the
 * deployment's salt (control key `salt`, as the workers' ids of sends and timer firings): a
 * retry gets the same id, and a publisher that may publish operations but not read the control
 * bucket cannot publish a predictable id first and have the stream drop the real one as its
 * duplicate (before, the ids were `<type>.<key>.<Idempotency-Key>` and `resubmit-<stream>-<dlqSeq>`).
 */
export class ClientMsgIds {
  private salt: Promise<string> | null = null;

  constructor(private readonly control: () => Promise<KV>) {}

  private async sign(kind: string, parts: readonly string[]): Promise<string> {
    this.salt ??= this.control()
      .then(sharedSalt)
      .catch((err: unknown) => {
        this.salt = null;
        throw err;
      });
    // Type, key and stream names hold no NUL, so the parts cannot run into each other.
    return `${kind}.${saltedMac(await this.salt, [kind, ...parts])}`;
  }

  /** The msg id of an operation on `type/key` published with `idempotencyKey`. */
  idempotent(type: string, key: string, idempotencyKey: string): Promise<string> {
    return this.sign('i', [type, key, idempotencyKey]);
  }

  /** The msg id of dead letter `dlqSeq` of `dlqStream` published again. */
  resubmit(dlqStream: string, dlqSeq: number): Promise<string> {
    return this.sign('resubmit', [dlqStream, String(dlqSeq)]);
  }
}

/** Reads the outcomes the workers keep for operations published with an idempotency key. */
export class OutcomeReader {
  private bucket: Promise<KV> | null = null;

  constructor(
    private readonly js: JetStreamClient,
    private readonly names: ActorNames,
  ) {}

  /**
   * The outcome of the operation at `seq`, exactly as its reply was; null when the bucket or
   * the entry is missing (a worker that keeps no outcomes, or one older than the duplicate window).
   */
  async get(seq: number): Promise<OperationReply | null> {
    let entry;
    try {
      this.bucket ??= new Kvm(this.js).open(this.names.outcomeBucket);
      entry = await (await this.bucket).get(outcomeKey(seq));
    } catch (err) {
      this.bucket = null;
      // The workers create the bucket when they start (an older worker keeps no outcomes).
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return null;
      throw err;
    }
    if (!entry || entry.operation !== 'PUT') return null;
    const outcome = parseOperationReply(entry.value);
    return outcome && outcome.seq === seq ? outcome : null;
  }
}
