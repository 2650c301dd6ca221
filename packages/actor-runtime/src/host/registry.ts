/**
 * The actor type registry in the control bucket: each worker writes, when it starts, one key
 * `types.<type>` per actor type it hosts — the definition's {@link ActorDescriptor} (operations,
 * queries and their input JSON Schemas), its initial state as JSON, the worker and the time.
 * A gateway that has none of the actors' code watches `types.>` to learn what it may serve.
 */
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/nats-core';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import type { ActorDescriptor } from '../definition/types.js';
import { defaultNames, TYPE_KEY_PREFIX, typeKey, type ActorNames } from '../protocol/index.js';
import { decodeJson } from '../store/records.js';

/** What a worker registers for one actor type (the value of `types.<type>`, JSON). */
export interface ActorTypeRecord {
  /** The definition's `describe()`: operations, queries and their input JSON Schemas. */
  descriptor: ActorDescriptor;
  /** The definition's version (`defineActor({ version })`; 1 in records written before versions). */
  version: number;
  /** The state of an actor never written (or deleted): `initialState()` as JSON. */
  initialState: unknown;
  /** Id of the worker that wrote this record (the newest version wins; among equals, the last to start). */
  worker: string;
  /** When it was written, ISO 8601. */
  registeredAt: string;
}

/** The record a worker `workerId` writes for `def`. */
export function actorTypeRecord(def: AnyActorDefinition, workerId: string, now: Date = new Date()): ActorTypeRecord {
  // Through JSON, so what is stored is exactly what a reader gets (no undefined, no Dates).
  const initialState: unknown = JSON.parse(JSON.stringify(def.initialState() ?? null));
  return { descriptor: def.describe(), version: def.version, initialState, worker: workerId, registeredAt: now.toISOString() };
}

/** Options of {@link registerActorTypes}. */
export interface RegisterActorTypesOptions {
  /** Stream, subject and bucket names (the control bucket is `names.controlBucket`). */
  names?: Partial<ActorNames>;
  /** The registering worker's id, stored in each record. */
  workerId: string;
}

const enc = new TextEncoder();

async function controlBucket(nc: NatsConnection, names: ActorNames): Promise<KV> {
  // Opened, never created: provisionTopology (the worker's start) creates the bucket.
  return new Kvm(jetstream(nc)).open(names.controlBucket);
}

/**
 * Writes `types.<type>` for each of `actors` in the control bucket (after the worker's
 * `start()`, which provisions it). Resolves with the records written.
 */
export async function registerActorTypes(
  nc: NatsConnection,
  actors: readonly AnyActorDefinition[],
  opts: RegisterActorTypesOptions,
): Promise<ActorTypeRecord[]> {
  const kv = await controlBucket(nc, defaultNames(opts.names));
  const records = actors.map((a) => actorTypeRecord(a, opts.workerId));
  await Promise.all(records.map((r) => registerNewest(kv, r)));
  return records;
}

/**
 * Writes `r` unless a newer version of its type is registered: the gateway serves the newest
 * version's schema, and a version-1 worker started during (or after) a roll to version 2 must
 * not take the new operations away from clients. A CAS on the revision read, retried on a race.
 */
async function registerNewest(kv: KV, r: ActorTypeRecord): Promise<void> {
  const key = typeKey(r.descriptor.type);
  for (let attempt = 0; attempt < 5; attempt++) {
    const cur = await kv.get(key);
    const stored = cur && cur.operation === 'PUT' ? parseActorTypeRecord(cur.value) : undefined;
    if (stored && stored.version > r.version) return;
    try {
      if (cur) await kv.update(key, enc.encode(JSON.stringify(r)), cur.revision);
      else await kv.create(key, enc.encode(JSON.stringify(r)));
      return;
    } catch (err) {
      if (attempt === 4) throw err;
    }
  }
}

/** Parses a stored record; undefined when it is not one (a foreign or corrupt value). */
export function parseActorTypeRecord(value: Uint8Array): ActorTypeRecord | undefined {
  const r = decodeJson<Partial<ActorTypeRecord>>(value);
  const d = r?.descriptor;
  if (!r || typeof r !== 'object' || !d || typeof d.type !== 'string') return undefined;
  if (typeof d.operations !== 'object' || d.operations === null || typeof d.queries !== 'object' || d.queries === null) return undefined;
  const version = Number.isSafeInteger(r.version) && (r.version as number) >= 1 ? (r.version as number) : Number.isSafeInteger(d.version) && (d.version as number) >= 1 ? (d.version as number) : 1;
  return { descriptor: d, version, initialState: r.initialState ?? null, worker: String(r.worker ?? ''), registeredAt: String(r.registeredAt ?? '') };
}

/** A live view of the registered actor types. */
export interface ActorTypeWatch {
  /** The record of `type`, if a worker registered it. */
  get(type: string): ActorTypeRecord | undefined;
  /** Every registered type, by name. */
  all(): ReadonlyMap<string, ActorTypeRecord>;
  /** Calls `listener` after each change (a type registered again, added or removed). Returns an unsubscribe function. */
  onChange(listener: (type: string, record: ActorTypeRecord | undefined) => void): () => void;
  /** Resolves once the records stored when the watch started are read. */
  readonly ready: Promise<void>;
  /** Stops watching. */
  stop(): void;
}

/** Options of {@link watchActorTypes}. */
export interface WatchActorTypesOptions {
  names?: Partial<ActorNames>;
  /** Called when the watch fails or ends (the bucket deleted, NATS closed). */
  onError?: (err: unknown) => void;
}

/**
 * Watches `types.>` in the control bucket: the current records first, then each change.
 * Rejects when the bucket does not exist (no worker has started yet).
 */
export async function watchActorTypes(nc: NatsConnection, opts: WatchActorTypesOptions = {}): Promise<ActorTypeWatch> {
  const kv = await controlBucket(nc, defaultNames(opts.names));
  const types = new Map<string, ActorTypeRecord>();
  const listeners = new Set<(type: string, record: ActorTypeRecord | undefined) => void>();
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  // The watch marks the last of the stored records (and every later change) `isUpdate`;
  // with none stored nothing marks the end, so count them first.
  let stored = 0;
  for await (const _ of await kv.keys(`${TYPE_KEY_PREFIX}>`)) stored++;
  if (stored === 0) markReady();
  const it: QueuedIterator<KvWatchEntry> = await kv.watch({ key: `${TYPE_KEY_PREFIX}>` });
  let stopped = false;
  let failure: unknown;
  const apply = (e: KvWatchEntry): void => {
    const type = e.key.slice(TYPE_KEY_PREFIX.length);
    const record = e.operation === 'PUT' ? parseActorTypeRecord(e.value) : undefined;
    if (record && record.descriptor.type !== type) return;
    if (record) types.set(type, record);
    else types.delete(type);
    for (const l of listeners) l(type, record);
  };
  void (async () => {
    try {
      for await (const e of it) {
        apply(e);
        if (e.isUpdate) markReady();
      }
    } catch (err) {
      failure = err;
    } finally {
      markReady();
      if (!stopped) opts.onError?.(failure ?? new Error('actor type watch ended'));
    }
  })();
  return {
    get: (type) => types.get(type),
    all: () => types,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    ready,
    stop() {
      stopped = true;
      it.stop();
    },
  };
}
