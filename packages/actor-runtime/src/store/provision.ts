import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import { assertServerVersion } from '../connection/connect.js';
import { ConfigError, ErrorCode } from '../protocol/index.js';
import { sharedSalt } from './salt.js';
import type { TopologyOptions } from './topology-options.js';

/** Handles of a provisioned topology. */
export interface Topology {
  /** The connection the topology was provisioned on. */
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  state: KV;
  control: KV;
  /** Outcomes of operations published with an idempotency key, by stream seq. */
  outcomes: KV;
  /** Timer index: `<p>.<type>.<key>` -> the actor's timers, for a partition's next owner. */
  timers: KV;
  partitions: number;
  serverVersion: string;
  /** Creation time (ms) of the operations stream: tells one incarnation of it from the next. */
  streamCreated: number;
  /** Creation time (ms) of the control bucket's stream: lease revisions restart when it is recreated. */
  controlCreated: number;
  /**
   * A random token shared by the workers (control key `salt`), part of the `Nats-Msg-Id` of
   * every send and timer firing: a publisher that cannot read the control bucket cannot
   * forge an id that would make the stream drop a real send as a duplicate.
   */
  salt: string;
}

const PARTITION_RE = /\{\{\s*partition\(\s*(\d+)\s*,/i;

/** The subject transform that maps `<prefix>.<type>.<key>.<op>` to `<p>.<prefix>.<type>.<key>.<op>`. */
export function partitionTransform(prefix: string, partitions: number): { src: string; dest: string } {
  return {
    src: `${prefix}.*.*.*`,
    dest: `{{partition(${partitions},1,2)}}.${prefix}.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}`,
  };
}

/** Reads the partition count from an existing stream's subject transform, or null. */
export function partitionsOfStream(config: Pick<StreamConfig, 'subject_transform'>): number | null {
  const m = config.subject_transform?.dest ? PARTITION_RE.exec(config.subject_transform.dest) : null;
  return m?.[1] ? Number(m[1]) : null;
}

/**
 * Creates the operations stream and the state and control buckets if they are missing
 * (idempotent), and checks an existing stream: a different partition count is an error,
 * never a silent re-map.
 */
export async function provisionTopology(nc: NatsConnection, opts: TopologyOptions): Promise<Topology> {
  const serverVersion = assertServerVersion(nc);
  if (!Number.isInteger(opts.partitions) || opts.partitions < 1 || opts.partitions > 4096) {
    throw new ConfigError(`partitions must be an integer between 1 and 4096, got ${opts.partitions}`);
  }
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const { names } = opts;
  const transform = partitionTransform(names.subjectPrefix, opts.partitions);
  const config: Partial<StreamConfig> & { name: string } = {
    name: names.stream,
    description: 'jetactor operations, partitioned by actor',
    subjects: [transform.src],
    subject_transform: transform,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    // Never drop an operation by age or to make room: refuse new ones when full, and let the
    // workers purge what is applied (the retention loop in ownership/retention.ts).
    discard: DiscardPolicy.New,
    max_age: 0,
    max_bytes: opts.maxBytes > 0 ? opts.maxBytes : -1,
    num_replicas: opts.replicas,
    duplicate_window: nanos(opts.duplicateWindowMs),
    max_msg_size: opts.maxPayloadBytes + 4096,
    allow_direct: true,
    metadata: { 'jetactor.partitions': String(opts.partitions) },
  };
  if (opts.retainMs < opts.duplicateWindowMs) {
    throw new ConfigError(`retainMs (${opts.retainMs}) must be at least the duplicate window (${opts.duplicateWindowMs} ms)`);
  }
  let streamConfig = await ensureStream(jsm, config);
  // A stream made by an older version drops operations by age or to make room: fix that in place.
  if (streamConfig.max_age !== 0 || streamConfig.discard !== DiscardPolicy.New || streamConfig.max_bytes !== config.max_bytes) {
    streamConfig = (await jsm.streams.update(names.stream, { ...streamConfig, max_age: 0, discard: DiscardPolicy.New, max_bytes: config.max_bytes })).config;
  }
  const existing = partitionsOfStream(streamConfig);
  if (existing !== opts.partitions) {
    throw new ConfigError(
      `stream ${names.stream} exists with ${existing ?? 'no'} partitions but ${opts.partitions} are configured ` +
        `(ACTORS_PARTITIONS); the partition count is fixed when the stream is created`,
      ErrorCode.PartitionMismatch,
    );
  }
  await ensureDeadLetterStream(jsm, opts);
  const kvm = new Kvm(js);
  const state = await openOrCreate(kvm, names.stateBucket, {
    history: 1,
    replicas: opts.replicas,
    allow_direct: true,
    description: 'jetactor actor state records',
  });
  const control = await openOrCreate(kvm, names.controlBucket, {
    history: 1,
    replicas: opts.replicas,
    allow_direct: true,
    description: 'jetactor members, leases and checkpoints',
  });
  const outcomes = await openOrCreate(kvm, names.outcomeBucket, {
    history: 1,
    replicas: opts.replicas,
    allow_direct: true,
    // Kept as long as a retry can be recognized as one (plus a margin for a slow apply).
    ttl: opts.duplicateWindowMs + 60_000,
    description: 'jetactor outcomes of operations published with an idempotency key',
  });
  const timers = await openOrCreate(kvm, names.timerBucket, {
    history: 1,
    replicas: opts.replicas,
    allow_direct: true,
    description: 'jetactor timer index: the timers of each actor, by partition',
  });
  const salt = await sharedSalt(control);
  const [streamInfo, controlInfo] = await Promise.all([jsm.streams.info(names.stream), jsm.streams.info(`KV_${names.controlBucket}`)]);
  return {
    nc,
    js,
    jsm,
    state,
    control,
    outcomes,
    timers,
    salt,
    partitions: opts.partitions,
    serverVersion,
    streamCreated: Date.parse(streamInfo.created),
    controlCreated: Date.parse(controlInfo.created),
  };
}

/**
 * The dead-letter stream: bounded by age, bytes and count, dropping the oldest first (unlike
 * the operations stream, whose operations are never dropped). An existing stream whose limits
 * differ (one made before the bounds, or by a worker configured otherwise) is updated to these:
 * nats-server allows changing them in place.
 */
const DLQ_ENV = { dlqMaxAgeMs: 'ACTORS_DLQ_MAX_AGE_MS', dlqMaxBytes: 'ACTORS_DLQ_MAX_BYTES', dlqMaxMsgs: 'ACTORS_DLQ_MAX_MSGS' } as const;

async function ensureDeadLetterStream(jsm: JetStreamManager, opts: TopologyOptions): Promise<void> {
  const bound = (name: keyof typeof DLQ_ENV, v: number): number => {
    if (!Number.isSafeInteger(v) || v < 0) throw new ConfigError(`${name} (${DLQ_ENV[name]}) must be an integer >= 0 (0: no bound), got ${v}`);
    return v;
  };
  const maxAgeMs = bound('dlqMaxAgeMs', opts.dlqMaxAgeMs);
  const bounds = {
    discard: DiscardPolicy.Old,
    max_age: nanos(maxAgeMs),
    max_bytes: bound('dlqMaxBytes', opts.dlqMaxBytes) || -1,
    max_msgs: bound('dlqMaxMsgs', opts.dlqMaxMsgs) || -1,
    // nats-server refuses a duplicate window longer than the age bound.
    duplicate_window: nanos(maxAgeMs === 0 ? opts.duplicateWindowMs : Math.min(opts.duplicateWindowMs, maxAgeMs)),
  };
  const have = await ensureStream(jsm, {
    name: opts.names.dlqStream,
    description: 'jetactor dead letters: operations that failed, with the reason',
    subjects: [`${opts.names.subjectPrefix}_dlq.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: opts.replicas,
    ...bounds,
  });
  if ((Object.keys(bounds) as Array<keyof typeof bounds>).some((k) => have[k] !== bounds[k])) {
    await jsm.streams.update(opts.names.dlqStream, { ...have, ...bounds });
  }
}

/** Creates the stream if it is missing (another process may win the race) and returns its config. */
async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<StreamConfig> {
  try {
    return (await jsm.streams.info(config.name)).config;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
  }
  try {
    return (await jsm.streams.add(config)).config;
  } catch (addErr) {
    // Created by another process in between: use what it created.
    if (!(addErr instanceof JetStreamApiError)) throw addErr;
    return (await jsm.streams.info(config.name)).config;
  }
}

async function openOrCreate(kvm: Kvm, name: string, opts: Parameters<Kvm['create']>[1]): Promise<KV> {
  try {
    return await kvm.create(name, opts);
  } catch (err) {
    // An existing bucket with a slightly different config (e.g. created by an older version): use it.
    if (err instanceof JetStreamApiError) return kvm.open(name);
    throw err;
  }
}
