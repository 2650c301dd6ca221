/**
 * Placement by hosted type, the pure part: which lane applies which actor type, and what a
 * lane's reader does with each operation it reads.
 *
 * A *lane* is one set of workers that host the same actor types (a service): the default
 * worker's six types are one lane, a worker hosting only `greeter` another. Each lane owns
 * every partition of the stream for its own types, with its own leases and checkpoints, and
 * balances them over its own live workers; its reader reads a partition's operations and
 * skips the types it does not apply. One NATS, one stream and one gateway serve them all.
 *
 * - A type's *home* is the lane that applies it: among the live lanes that host it at its
 *   newest live version, the one with the smallest id (deterministic: every worker computes
 *   the same answer from the same view).
 * - A type some lane registered but no live lane hosts has no home: every lane skips its
 *   operations, and they wait in the stream (the dead lane's checkpoints keep retention from
 *   purging them) until a lane hosting it is live again.
 * - A type no lane ever registered (a typo, a hostile publisher) is a *stray*: the lane with
 *   the smallest id among the live ones dead-letters it as an unknown actor type, so nothing
 *   can pin the stream's retention by publishing to a type nobody will host.
 */
import { createHash } from 'node:crypto';
import type { LaneRecord } from '../store/records.js';


export type { LaneRecord } from '../store/records.js';

/** What placement needs of a live member. */
export interface LiveMember {
  id: string;
  lane: string;
  /** Hosted types and their versions. */
  types: Readonly<Record<string, number>>;
  /** Partitions it owns that wait for a newer version. */
  waiting?: readonly number[];
  /** Partitions it owns. */
  owned?: readonly number[];
}

/** What a lane's reader does with an operation of a type. */
export type Duty = 'apply' | 'skip' | 'stray';

/**
 * The lane id of a worker hosting `types`: `service` when given, else derived from the set of
 * types (sorted, hashed): workers hosting the same types form one lane without configuration.
 */
export function laneIdOf(types: readonly string[], service?: string): string {
  if (service !== undefined) return service;
  const h = createHash('sha256').update([...types].sort().join('\n')).digest('hex');
  return `l${h.slice(0, 10)}`;
}

/** The placement of every type, computed from the live members and the registered lanes. */
export class Placement {
  /** Home lane of each type that has one. */
  readonly homes: ReadonlyMap<string, string>;
  /** Every type in the registry, some lane registered (live or not) or a live member hosts. */
  readonly registered: ReadonlySet<string>;
  /** The lane that dead-letters strays (smallest live lane id), if any lane is live. */
  readonly strayLane: string | undefined;
  /** Newest live version of each hosted type. */
  readonly versions: ReadonlyMap<string, number>;

  /** Newest registered version of each type in the registry (`types.<type>`). */
  readonly registeredVersions: ReadonlyMap<string, number>;

  constructor(live: readonly LiveMember[], lanes: Iterable<LaneRecord>, registry: ReadonlyMap<string, number> = new Map()) {
    const registered = new Set<string>(registry.keys());
    const registeredVersions = new Map(registry);
    for (const l of lanes) {
      for (const [t, v] of Object.entries(l.types)) {
        registered.add(t);
        if (typeof v === 'number' && v > (registeredVersions.get(t) ?? 0)) registeredVersions.set(t, v);
      }
    }
    this.registeredVersions = registeredVersions;
    const versions = new Map<string, number>();
    for (const m of live) {
      for (const [t, v] of Object.entries(m.types)) {
        registered.add(t);
        if (v > (versions.get(t) ?? 0)) versions.set(t, v);
      }
    }
    const homes = new Map<string, string>();
    for (const m of live) {
      for (const [t, v] of Object.entries(m.types)) {
        if (v !== versions.get(t)) continue;
        const cur = homes.get(t);
        if (cur === undefined || m.lane < cur) homes.set(t, m.lane);
      }
    }
    let stray: string | undefined;
    for (const m of live) if (stray === undefined || m.lane < stray) stray = m.lane;
    this.homes = homes;
    this.registered = registered;
    this.strayLane = stray;
    this.versions = versions;
  }

  /** What `lane` does with an operation of `type`. */
  duty(lane: string, type: string): Duty {
    const home = this.homes.get(type);
    if (home !== undefined) return home === lane ? 'apply' : 'skip';
    if (this.registered.has(type)) return 'skip'; // waits for a live lane hosting it
    return this.strayLane === lane ? 'stray' : 'skip';
  }

  /** The types `lane` applies, sorted (with `*` when it dead-letters strays): a lane's processors restart when this changes. */
  dutiesOf(lane: string): string[] {
    const out = [...this.homes].filter(([, l]) => l === lane).map(([t]) => t).sort();
    if (this.strayLane === lane) out.push('*');
    return out;
  }
}

/**
 * The live members of `lane` that take partitions, and how many each version takes: workers of
 * the lane's newest generation (the sum of their types' versions) take their share of the
 * partitions, never more, so the first new worker of a large fleet takes 1/N of the load,
 * not all of it; the others keep the rest. Returns the members to balance over for the
 * newest generation (`newest`) and the older ones (`older`), and how many partitions the newest
 * take (`newestShare`).
 */
export function laneGenerations(members: readonly LiveMember[]): { newest: string[]; older: string[]; newestShare: number } {
  const gen = (m: LiveMember) => Object.values(m.types).reduce((a, b) => a + b, 0);
  let top = 0;
  for (const m of members) top = Math.max(top, gen(m));
  const newest = members.filter((m) => gen(m) === top).map((m) => m.id);
  const older = members.filter((m) => gen(m) !== top).map((m) => m.id);
  return { newest, older, newestShare: members.length === 0 ? 0 : newest.length / members.length };
}
