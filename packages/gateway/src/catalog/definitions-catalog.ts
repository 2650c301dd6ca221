/**
 * The default catalog of `buildApp`: the actor definitions the client itself knows
 * (`createActorClient(nc, { actors })`), described as a worker registers them.
 */
import { type AnyActorDefinition } from '@jetactor/actor-runtime';
import { type ActorClient } from '@jetactor/actor-runtime/client';
import { catalogOf, type ActorCatalog, type CatalogEntry } from './actor-catalog.js';

/** A catalog that looks each type up in the client's definitions (and lists only the types looked up). */
export function definitionsCatalog(getClient: () => ActorClient | undefined): ActorCatalog {
  const entries = new WeakMap<AnyActorDefinition, CatalogEntry>();
  const seen = new Map<string, CatalogEntry>();
  return {
    get(type) {
      const def = getClient()?.definition(type);
      if (!def) return undefined;
      let entry = entries.get(def);
      if (!entry) {
        entry = catalogOf([def]).get(def.type);
        if (!entry) return undefined;
        entries.set(def, entry);
        seen.set(type, entry);
      }
      return entry;
    },
    entries: () => [...seen.values()].sort((a, b) => a.type.localeCompare(b.type)),
    onChange: () => () => undefined,
  };
}
