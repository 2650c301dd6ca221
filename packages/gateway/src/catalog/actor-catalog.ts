/**
 * What the gateway knows of the actor types it serves: their operations, input schemas and
 * initial states — as the workers registered them (`types.<type>` in the control bucket),
 * never from the actors' code. Before a worker registered a type the gateway answers 404
 * `UNKNOWN_ACTOR` for it.
 */
import { DELETE_OPERATION, UnknownActorError, UnknownOperationError, type ActorDescriptor, type AnyActorDefinition } from '@jetactor/actor-runtime';
import { actorTypeRecord, type ActorTypeRecord, type ActorTypeWatch } from '@jetactor/actor-runtime/internal';
import { GatewayError } from '../errors.js';
import { createInputValidator, type InputValidator } from './input-validator.js';

/** One registered actor type. */
export interface CatalogEntry {
  readonly type: string;
  /** Operations, queries and their input JSON Schemas. */
  readonly descriptor: ActorDescriptor;
  /** A fresh copy of the state of an actor never written (or deleted). */
  initialState(): unknown;
  /**
   * Checks `op` and its input: throws `UnknownOperationError` (404 `UNKNOWN_OPERATION`) or
   * `InvalidInputError` (400 `INVALID_INPUT`, naming the field).
   */
  check(op: string, input: unknown): void;
}

/** The actor types a gateway serves, kept current. */
export interface ActorCatalog {
  /** The registered type, or undefined. */
  get(type: string): CatalogEntry | undefined;
  /** Every registered type, sorted by name. */
  entries(): CatalogEntry[];
  /** Calls `listener` after the registered types change; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  /**
   * Why the registered types cannot be known yet (no worker has created the control bucket),
   * or undefined when they can. An unknown type is then 503 `NOT_PROVISIONED`, not 404.
   */
  unavailable?(): string | undefined;
}

/** The entry of `type`, or a 404 `UNKNOWN_ACTOR` (503 `NOT_PROVISIONED` while the registry cannot be read). */
export function entryOf(catalog: ActorCatalog, type: string): CatalogEntry {
  const entry = catalog.get(type);
  if (entry) return entry;
  const reason = catalog.unavailable?.();
  if (reason !== undefined) throw new GatewayError('NOT_PROVISIONED', reason);
  throw new UnknownActorError(type);
}

function entryFrom(record: ActorTypeRecord, validator: InputValidator): CatalogEntry {
  const { descriptor } = record;
  const initial = JSON.stringify(record.initialState ?? null);
  return {
    type: descriptor.type,
    descriptor,
    initialState: () => JSON.parse(initial) as unknown,
    check(op, input) {
      if (op === DELETE_OPERATION) return;
      const described = Object.hasOwn(descriptor.operations, op) ? descriptor.operations[op] : undefined;
      if (!described) throw new UnknownOperationError(descriptor.type, op);
      validator.check(descriptor.type, op, described, input);
    },
  };
}

/** A catalog that can be filled and changed (what both factories below build on). */
class MutableCatalog implements ActorCatalog {
  private readonly byType = new Map<string, CatalogEntry>();
  private readonly listeners = new Set<() => void>();
  private readonly validator = createInputValidator();

  get(type: string): CatalogEntry | undefined {
    return this.byType.get(type);
  }

  entries(): CatalogEntry[] {
    return [...this.byType.values()].sort((a, b) => a.type.localeCompare(b.type));
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(type: string, record: ActorTypeRecord | undefined): void {
    if (record) this.byType.set(type, entryFrom(record, this.validator));
    else this.byType.delete(type);
    for (const l of this.listeners) l();
  }
}

/**
 * A fixed catalog of `actors`, described as a worker would register them (for an app that
 * embeds the gateway next to its actors, and for tests).
 */
export function catalogOf(actors: readonly AnyActorDefinition[]): ActorCatalog {
  const catalog = new MutableCatalog();
  for (const a of actors) catalog.set(a.type, actorTypeRecord(a, 'local'));
  return catalog;
}

/** A catalog that follows a registry watch (the gateway's, from the control bucket), swappable when the watch is remade. */
export interface WatchedCatalog extends ActorCatalog {
  /** Follows `watch` from now on, replacing what the previous watch said; `undefined` keeps the last known types. */
  follow(watch: ActorTypeWatch | undefined): void;
}

/** Creates a {@link WatchedCatalog}, empty until it follows a watch. */
export function watchedCatalog(): WatchedCatalog {
  const catalog = new MutableCatalog();
  let unsubscribe: (() => void) | undefined;
  let followed = false;
  return {
    get: (type) => catalog.get(type),
    entries: () => catalog.entries(),
    onChange: (listener) => catalog.onChange(listener),
    unavailable: () =>
      followed ? undefined : 'no actor types are registered: no worker has provisioned the stream and buckets yet (a worker does at start); retry later',
    follow(watch) {
      unsubscribe?.();
      unsubscribe = undefined;
      if (!watch) return;
      followed = true;
      const seen = new Set(watch.all().keys());
      for (const e of catalog.entries()) if (!seen.has(e.type)) catalog.set(e.type, undefined);
      for (const [type, record] of watch.all()) catalog.set(type, record);
      unsubscribe = watch.onChange((type, record) => catalog.set(type, record));
    },
  };
}
