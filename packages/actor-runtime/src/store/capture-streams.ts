/** The capture stream of each subject binding: its config, its creation or update, and its parking (see bindings.ts). */
import { DiscardPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { SubjectBinding } from '../definition/define-actor.js';
import { ConfigError } from '../protocol/index.js';
import { bindingTransform, captureStreamName, subjectsCollide } from './capture-names.js';
import type { TopologyOptions } from './topology-options.js';

/** nats-server's error code for a stream whose subjects overlap another stream's. */
const SUBJECTS_OVERLAP = 10065;
/** Room left in a message below the operations stream's limit (which is the payload bound + 4096) for the msg id a mover adds. */
const SOURCE_HEADER_ROOM = 2048;

/** The capture stream of one binding. */
export function captureConfig(opts: TopologyOptions, type: string, b: SubjectBinding): Partial<StreamConfig> & { name: string } {
  // Kept a little less long than the operations stream keeps what it applied (retainMs): once
  // the operations stream has purged every message it sourced from a capture, the capture holds
  // only what was never sourced, so a source that must start over from the capture's first
  // message (2.10 keeps no resume position once those messages are purged) applies nothing
  // twice. The cost: a message the operations stream refuses for that long (full) is lost.
  // nats-server's floor for max_age is 100 ms.
  const maxAgeMs = Math.max(100, opts.retainMs - Math.min(60_000, Math.floor(opts.retainMs / 10)));
  return {
    name: captureStreamName(opts.names, type, b.subject),
    description: `jetactor binding: ${b.subject} -> ${opts.names.subjectPrefix}.${type}.<token ${b.key}>.${b.op}`,
    subjects: [b.subject],
    subject_transform: bindingTransform(opts.names, type, b),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.New,
    max_age: nanos(maxAgeMs),
    max_bytes: opts.maxBytes > 0 ? opts.maxBytes : -1,
    max_msg_size: opts.maxPayloadBytes + SOURCE_HEADER_ROOM,
    num_replicas: opts.replicas,
    duplicate_window: nanos(Math.min(opts.duplicateWindowMs, maxAgeMs)),
    metadata: {
      'jetactor.binding.type': type,
      'jetactor.binding.subject': b.subject,
      'jetactor.binding.key': String(b.key),
      'jetactor.binding.op': b.op,
    },
  };
}

/** The fields of a capture's config that provisioning sets; a difference in any is updated. */
const MANAGED_FIELDS = ['description', 'subjects', 'subject_transform', 'discard', 'max_age', 'max_bytes', 'max_msg_size', 'num_replicas', 'duplicate_window', 'metadata'] as const;

function differs(have: Partial<StreamConfig>, want: Partial<StreamConfig>): boolean {
  return MANAGED_FIELDS.some((f) => JSON.stringify(have[f] ?? null) !== JSON.stringify(want[f] ?? null));
}
/**
 * Names the stream a refused binding overlaps (nats-server says only "subjects overlap with an
 * existing stream"). Asked only once the server refused, so a worker whose capture streams exist
 * needs no permission to list streams. Always throws.
 */
async function explainOverlap(jsm: JetStreamManager, { type, b }: { type: string; b: SubjectBinding }, own: string, cause: Error): Promise<never> {
  let other: { name: string; subject: string } | undefined;
  try {
    for await (const si of jsm.streams.list(b.subject)) {
      if (si.config.name === own) continue;
      const subjects = si.config.subjects ?? [];
      other = { name: si.config.name, subject: subjects.find((x) => subjectsCollide(x, b.subject)) ?? subjects.join(', ') };
      break;
    }
  } catch {
    // No permission to list streams: say what the server said.
  }
  const where = other ? `stream '${other.name}' (subject '${other.subject}')` : `an existing stream (${cause.message})`;
  throw new ConfigError(`binding '${b.subject}' of actor '${type}' overlaps ${where}: NATS stores a message in one stream only; remove the overlap or bind another subject`, undefined, { cause });
}

/** Creates the capture stream or brings its managed fields to `want`; resolves with its creation time (ms). */
export async function ensureCapture(jsm: JetStreamManager, binding: { type: string; b: SubjectBinding }, want: Partial<StreamConfig> & { name: string }, log?: Logger): Promise<number> {
  let have: StreamConfig | null = null;
  let created = 0;
  try {
    const info = await jsm.streams.info(want.name);
    have = info.config;
    created = Date.parse(info.created);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
  }
  if (!have) {
    try {
      const info = await jsm.streams.add(want);
      log?.info({ stream: want.name, subject: want.subjects?.[0] }, 'binding capture stream created');
      return Date.parse(info.created);
    } catch (err) {
      if (!(err instanceof JetStreamApiError)) throw err;
      if (err.code === SUBJECTS_OVERLAP) await explainOverlap(jsm, binding, want.name, err);
      const info = await jsm.streams.info(want.name);
      have = info.config;
      created = Date.parse(info.created);
    }
  }
  const subject = have.metadata?.['jetactor.binding.subject'];
  if (subject !== undefined && subject !== want.metadata?.['jetactor.binding.subject']) {
    throw new ConfigError(`stream ${want.name} belongs to the binding '${subject}', not '${want.metadata?.['jetactor.binding.subject']}' (a hash collision of the two subjects): rename one`);
  }
  if (differs(have, want)) {
    await jsm.streams.update(want.name, { ...have, ...want }).catch(async (err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === SUBJECTS_OVERLAP) await explainOverlap(jsm, binding, want.name, err);
      throw err;
    });
    log?.info({ stream: want.name, subject: want.subjects?.[0], transform: want.subject_transform }, 'binding capture stream updated');
  }
  return created;
}

/** Stops a capture stream listening (its subject becomes its own name); what it holds is still moved. */
export async function park(jsm: JetStreamManager, name: string, log?: Logger): Promise<boolean> {
  const have = (await jsm.streams.info(name)).config;
  if (have.subjects?.length === 1 && have.subjects[0] === name && !have.subject_transform) return false;
  await jsm.streams.update(name, { ...have, subjects: [name], subject_transform: undefined });
  log?.info({ stream: name, was: have.subjects }, 'binding removed: its capture stream no longer listens');
  return true;
}
