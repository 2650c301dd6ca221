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
import { createHmac, randomBytes } from 'node:crypto';
import { assertServerVersion } from '../connection/connect.js';
import { ConfigError, ErrorCode, SALT_KEY, type ActorNames } from '../protocol/index.js';

/** How the stream and buckets are created. */
export interface TopologyOptions {
  /** Stream, subject and bucket names. */
  names: ActorNames;
  /** Number of partitions; fixed when the stream is created. Default 32. */
  partitions: number;
  /** Replicas of the stream and buckets (1, or 3 in a cluster). Default 1. */
  replicas: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped, in ms. Default 120000 (2 min). */
  duplicateWindowMs: number;
  /**
   * Bound of the operations stream in bytes; when it is reached, new operations are refused
   * (discard new) rather than old ones dropped. 0 or less: no bound. Default 1 GiB.
   * Applied operations are purged by the workers (see `retainMs`), so the bound is reached
   * only while workers fall behind.
   */
  maxBytes: number;
  /**
   * How long applied operations stay in the stream before the workers purge them, in ms
   * (at least the duplicate window: a retried publish is compared with its original).
   * Default 1 hour. Unapplied operations are never purged, however old.
   */
  retainMs: number;
  /** Largest operation payload the stream accepts, in bytes. Default 65536. */
  maxPayloadBytes: number;
  /** How long dead letters are kept, in ms; 0: no age bound. Default 14 days. */
  dlqMaxAgeMs: number;
  /**
   * Bound of the dead-letter stream in bytes: past it the oldest dead letters are dropped
   * (invalid traffic must not fill the disk). 0: no bound. Default 256 MiB.
   */
  dlqMaxBytes: number;
  /** Most dead letters kept; past it the oldest are dropped. 0: no bound. Default 1,000,000. */
  dlqMaxMsgs: number;
}

/** Default {@link TopologyOptions}. */
export function defaultTopology(names: ActorNames, overrides: Partial<Omit<TopologyOptions, 'names'>> = {}): TopologyOptions {
  return {
    names,
    partitions: 32,
    replicas: 1,
    duplicateWindowMs: 120_000,
    maxBytes: 1024 ** 3,
    retainMs: 3600_000,
    maxPayloadBytes: 64 * 1024,
    dlqMaxAgeMs: 14 * 24 * 3600_000,
    dlqMaxBytes: 256 * 1024 ** 2,
    dlqMaxMsgs: 1_000_000,
    ...overrides,
  };
}

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

/**
 * The deployment's shared salt: created once (CAS create), read by everyone after. Secret from
 * whoever cannot read the control bucket (a publisher allowed only operation subjects): the
 * runtime's `Nats-Msg-Id`s are derived from it so that no such publisher can forge one.
 */
export async function sharedSalt(control: KV): Promise<string> {
  const stored = async (): Promise<string | null> => {
    const entry = await control.get(SALT_KEY);
    let salt: unknown;
    try {
      salt = entry && entry.operation === 'PUT' ? (entry.json<{ salt?: unknown }>().salt ?? null) : null;
    } catch {
      salt = null;
    }
    return typeof salt === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(salt) ? salt : null;
  };
  // Read first: it is there but once per deployment, and a client (the gateway) may not write the bucket.
  const have = await stored();
  if (have !== null) return have;
  const fresh = randomBytes(9).toString('base64url');
  try {
    await control.create(SALT_KEY, new TextEncoder().encode(JSON.stringify({ salt: fresh })));
    return fresh;
  } catch (err) {
    // Created by another process in between.
    const other = await stored();
    if (other !== null) return other;
    throw err;
  }
}


/**
 * The part of a runtime `Nats-Msg-Id` that only holders of the salt can make: the HMAC-SHA256,
 * keyed with the salt, of `parts` (which hold no NUL, so they cannot run into each other), as
 * the first `chars` characters of its base64url. The same parts give the same value, and the
 * salt cannot be read back from it.
 */
export function saltedMac(salt: string, parts: readonly string[], chars = 32): string {
  return createHmac('sha256', salt).update(parts.join('\0')).digest('base64url').slice(0, chars);
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
