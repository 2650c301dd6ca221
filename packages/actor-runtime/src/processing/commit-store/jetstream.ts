/**
 * The commit's storage port on JetStream: records in the state bucket, outcomes in the
 * outcomes bucket, dead letters and sends as stream publishes with msg ids, unsent markers
 * and checkpoints in the control bucket, the timer index in the timers bucket. Writes go
 * through the acked publisher (compare-and-set by expected last subject sequence).
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { type ActorNames, controlKeys } from '../../protocol/index.js';
import type { Topology } from '../../store/provision.js';
import { scanLastValues } from '../../store/kv-scan.js';
import { kvWriteSubject, type AckedPublisher } from '../acked-publisher.js';
import type { CommitStore, StoreEntry, StoreErrorKind } from './port.js';

/** JetStream's "message size exceeds maximum allowed" (err_code 10054). */
const MESSAGE_TOO_LARGE = 10054;
/** JetStream's "store failed" (err_code 10077): the stream is at its byte bound (discard new). */
const STREAM_STORE_FAILED = 10077;

/** The commit store of `topology`, writing through `publisher`. */
export function jetStreamCommitStore(topology: Topology, names: ActorNames, publisher: AckedPublisher): CommitStore {
  const { state, control, outcomes, timers, js, jsm } = topology;
  const entryOf = (e: { revision: number; value: Uint8Array; operation: string } | null): StoreEntry | null =>
    e ? { revision: e.revision, value: e.value, deleted: e.operation !== 'PUT' } : null;
  return {
    readRecord: async (key) => entryOf(await state.get(key)),
    writeRecord: async (key, body, expectedRevision, guard) => (await publisher.publish(kvWriteSubject(state, key), body, { expectedLastSubjectSequence: expectedRevision, guard })).seq,
    purgeRecord: async (key, revision) => {
      await jsm.streams.purge(`KV_${names.stateBucket}`, { filter: kvWriteSubject(state, key), seq: revision + 1 });
    },
    writeOutcome: async (seq, body) => {
      await publisher.publish(kvWriteSubject(outcomes, String(seq)), body);
    },
    publishDeadLetter: async (subject, data, headers, msgId) => {
      await js.publish(subject, data, { headers, msgID: msgId });
    },
    publishSend: async (subject, data, msgId, headers, guard) => {
      await publisher.publish(subject, data, { msgId, headers: [...headers], guard });
    },
    listMarkers: async (p) => {
      // One STREAM.INFO when there are none (no marker was ever written in the partition), else a scan.
      const prefix = controlKeys.unsent(p, '').slice(0, -1);
      const info = await jsm.streams.info(`KV_${names.controlBucket}`, { subjects_filter: `$KV.${names.controlBucket}.${prefix}.>` });
      if (Object.keys(info.state.subjects ?? {}).length === 0) return [];
      const keys: string[] = [];
      await scanLastValues(js, names.controlBucket, prefix, (k, deleted) => (deleted ? undefined : keys.push(k)));
      return keys;
    },
    writeMarker: async (p, key, guard) => {
      await publisher.publish(kvWriteSubject(control, controlKeys.unsent(p, key)), new Uint8Array(0), { guard });
    },
    deleteMarker: async (p, key, guard) => {
      await publisher.publish(kvWriteSubject(control, controlKeys.unsent(p, key)), new Uint8Array(0), { headers: [['KV-Operation', 'DEL']], guard });
    },
    scanTimerEntries: (p, each) => scanLastValues(js, names.timerBucket, String(p), (stateKey, deleted, m) => each(stateKey, m.seq, deleted ? null : m.data)),
    writeTimerEntry: async (p, stateKey, value, expectedRevision, guard) =>
      (await publisher.publish(kvWriteSubject(timers, `${p}.${stateKey}`), value, { expectedLastSubjectSequence: expectedRevision, guard })).seq,
    readCheckpoint: async (p, lane) => entryOf(await control.get(controlKeys.checkpoint(p, lane))),
    writeCheckpoint: async (p, lane, value, expectedRevision, guard) =>
      (await publisher.publish(kvWriteSubject(control, controlKeys.checkpoint(p, lane)), value, { expectedLastSubjectSequence: expectedRevision, guard })).seq,
    errorKind: jetStreamErrorKind,
  };
}

/** What a JetStream publish error means for the commit. */
export function jetStreamErrorKind(err: unknown): StoreErrorKind | undefined {
  if (err instanceof JetStreamApiError) {
    if (err.code === JetStreamApiCodes.StreamWrongLastSequence) return 'conflict';
    if (err.code === MESSAGE_TOO_LARGE) return 'too-large';
    if (err.code === STREAM_STORE_FAILED) return 'stream-full';
    return undefined;
  }
  // The client refuses a message over the server's max_payload before sending it.
  return /max_payload/.test(String(err)) ? 'too-large' : undefined;
}
