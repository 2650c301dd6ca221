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
import { ConfigError, ErrorCode } from '../errors.js';
import type { ActorNames } from '../names.js';

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
  /** How long operations stay in the stream, in ms; 0 keeps them forever. Default 7 days. */
  maxAgeMs: number;
  /** Largest operation payload the stream accepts, in bytes. Default 65536. */
  maxPayloadBytes: number;
  /** How long dead letters are kept, in ms. Default 14 days. */
  dlqMaxAgeMs: number;
}

/** Default {@link TopologyOptions}. */
export function defaultTopology(names: ActorNames, overrides: Partial<Omit<TopologyOptions, 'names'>> = {}): TopologyOptions {
  return {
    names,
    partitions: 32,
    replicas: 1,
    duplicateWindowMs: 120_000,
    maxAgeMs: 7 * 24 * 3600_000,
    maxPayloadBytes: 64 * 1024,
    dlqMaxAgeMs: 14 * 24 * 3600_000,
    ...overrides,
  };
}

/** Handles of a provisioned topology. */
export interface Topology {
  js: JetStreamClient;
  jsm: JetStreamManager;
  state: KV;
  control: KV;
  partitions: number;
  serverVersion: string;
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
    discard: DiscardPolicy.Old,
    num_replicas: opts.replicas,
    duplicate_window: nanos(opts.duplicateWindowMs),
    max_age: nanos(opts.maxAgeMs),
    max_msg_size: opts.maxPayloadBytes + 4096,
    allow_direct: true,
    metadata: { 'jetactor.partitions': String(opts.partitions) },
  };
  const existing = partitionsOfStream(await ensureStream(jsm, config));
  if (existing !== opts.partitions) {
    throw new ConfigError(
      `stream ${names.stream} exists with ${existing ?? 'no'} partitions but ${opts.partitions} are configured ` +
        `(ACTORS_PARTITIONS); the partition count is fixed when the stream is created`,
      ErrorCode.PartitionMismatch,
    );
  }
  await ensureStream(jsm, {
    name: names.dlqStream,
    description: 'jetactor dead letters: operations that failed, with the reason',
    subjects: [`${names.subjectPrefix}_dlq.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: opts.replicas,
    duplicate_window: nanos(opts.duplicateWindowMs),
    max_age: nanos(opts.dlqMaxAgeMs),
  });
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
  return { js, jsm, state, control, partitions: opts.partitions, serverVersion };
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
