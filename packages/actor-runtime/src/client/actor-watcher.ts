import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { KvWatchInclude, Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/nats-core';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { watchConsumerOf } from '../connection/nats-internals.js';
import { defaultNames, stateKey, validateName, type ActorNames } from '../protocol/index.js';
import { decodeJson, versionOfRecord, type StateRecord } from '../store/records.js';

/** Options of {@link createActorWatcher}. */
export interface ActorWatcherOptions {
  /** Known actor definitions: a deleted or never-written actor shows its initial state. */
  actors?: readonly AnyActorDefinition[];
  /** Stream, subject and bucket names. */
  names?: Partial<ActorNames>;
}

/** One state change of an actor, as its record in the state bucket shows it. */
export interface ActorChange {
  type: string;
  key: string;
  /** The state after the change (the initial state once deleted). */
  state: unknown;
  /** Stream sequence of the last operation applied. */
  seq: number;
  /** KV revision of the record. */
  revision: number;
  /** When the record was written (ISO 8601), if known. */
  updatedAt: string | null;
  /** True when the actor was deleted. */
  deleted: boolean;
  /** The version whose shape `state` has, when above 1 (the record's; the watcher's definition's when it migrated an older one). */
  version?: number;
}

/** Options of {@link ActorWatcher.watch}. */
export interface WatchOptions {
  /** Only changes after the watch starts; default false: the current record first, then changes. */
  updatesOnly?: boolean;
}

/** A running watch: iterate it for changes; `stop()` ends the iteration. */
export interface ActorWatch extends AsyncIterable<ActorChange> {
  /** Stops the watch (idempotent). */
  stop(): void;
}

/** Watches actor state records in the state bucket. */
export interface ActorWatcher {
  /**
   * Watches one actor (`key` given) or every actor of a type (`key` omitted). Without
   * `updatesOnly`, the current record of each watched actor comes first.
   */
  watch(type: string, key?: string, opts?: WatchOptions): Promise<ActorWatch>;
}

/**
 * Creates an {@link ActorWatcher}: a KV watch on the state bucket (key `<type>.<key>`,
 * or `<type>.>` for a whole type) that yields each committed state change.
 */
export function createActorWatcher(nc: NatsConnection, opts: ActorWatcherOptions = {}): ActorWatcher {
  const names = defaultNames(opts.names);
  const registry = new Map((opts.actors ?? []).map((a) => [a.type, a]));
  let bucket: Promise<KV> | null = null;
  let manager: Promise<JetStreamManager> | null = null;
  const open = (): Promise<KV> => {
    bucket ??= new Kvm(jetstream(nc)).open(names.stateBucket).catch((err: unknown) => {
      bucket = null;
      throw err;
    });
    return bucket;
  };

  const changeOf = (type: string, e: KvWatchEntry): ActorChange => {
    const key = e.key.slice(type.length + 1);
    const initial: unknown = registry.get(type)?.initialState() ?? null;
    const rec = e.operation === 'PUT' ? decodeJson<StateRecord>(e.value) : null;
    if (!rec) return { type, key, state: initial, seq: 0, revision: e.revision, updatedAt: e.created.toISOString(), deleted: true };
    const def = registry.get(type);
    let state: unknown = rec.deleted ? initial : rec.state;
    let version = versionOfRecord(rec);
    if (def && !rec.deleted && version < def.version) {
      try {
        state = def.upgrade(state, version);
        version = def.version;
      } catch {
        // Shown as stored: an operation or a read on it reports the failed migration.
      }
    }
    return {
      type,
      key,
      state,
      seq: rec.seq,
      revision: e.revision,
      updatedAt: rec.updatedAt ?? e.created.toISOString(),
      deleted: rec.deleted === true,
      ...(version > 1 ? { version } : {}),
    };
  };

  return {
    async watch(type, key, watchOpts = {}) {
      validateName('type', type);
      if (key !== undefined) validateName('key', key);
      const kv = await open();
      const it: QueuedIterator<KvWatchEntry> = await kv.watch({
        key: key === undefined ? `${type}.>` : stateKey(type, key),
        include: watchOpts.updatesOnly ? KvWatchInclude.UpdatesOnly : KvWatchInclude.LastValue,
      });
      // The watch's ordered push consumer outlives stop() on the server for its inactive
      // threshold (5 minutes); delete it at once so that short watches (a page reload) do
      // not pile up consumers. Read at stop time: an ordered consumer renames itself on reset.
      let consumer = watchConsumerOf(it);
      let stopped = false;
      return {
        stop: () => {
          if (stopped) return;
          stopped = true;
          consumer = watchConsumerOf(it) ?? consumer;
          it.stop();
          if (!consumer || nc.isClosed()) return;
          const { stream, name } = consumer;
          manager ??= jetstreamManager(nc);
          manager.then((m) => m.consumers.delete(stream, name)).catch(() => undefined);
        },
        async *[Symbol.asyncIterator]() {
          for await (const e of it) yield changeOf(type, e);
        },
      };
    },
  };
}
