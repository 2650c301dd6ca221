/**
 * The timers of one partition, as its owner keeps them: an index of which actors have timers
 * (bucket `actors_timers`, key `<p>.<type>.<key>`, written with CAS by the owner before the
 * checkpoint that follows the record), a heap in memory, and the firing: at a timer's time
 * the owner publishes `$fire` to the actor (a deterministic msg id), and the fold applies it
 * if the record still holds that timer. The record is the truth; the index is how the next
 * owner finds the timers without reading every record, and it is repaired from the records a
 * replay loads (a crash between a record write and its index write).
 */
import type { Logger } from 'pino';
import { FencedError, FIRE_TIMER_OPERATION, operationSubject, type ActorNames } from '../protocol/index.js';
import type { Topology } from '../store/provision.js';
import type { StoredTimer } from '../store/records.js';
import type { AckedPublisher } from './acked-publisher.js';
import type { CommitStore } from './commit-store/port.js';
import { fireMsgId } from './msg-ids.js';
import { conflictOr, encodeText } from './record-io.js';
import { TimerHeap, type Pending } from './timer-heap.js';

/** A timer as the index entry keeps it: enough to fire it. */
type Due = readonly [id: string, n: number, at: number];

/** How long a fired timer that is still in the record waits before it is fired again (ms). */
const REFIRE_MS = 3000;
/** The longest wait between two firings of one timer (ms). */
const REFIRE_MAX_MS = 60_000;
/** Most firings in flight at once. */
const MAX_FIRING = 1024;

export interface TimerIndexOptions {
  partition: number;
  topology: Topology;
  names: ActorNames;
  log: Logger;
  /** Where the index entries are read and written. */
  store: CommitStore;
  /** Publishes the firings. */
  publisher: AckedPublisher;
  leaseValid: () => boolean;
  /** True for the actor types whose timers this processor fires; absent: every type. */
  owns?: (type: string) => boolean;
}

interface KeyTimers {
  /** KV revision of the index entry (0: none). */
  rev: number;
  /** The key's timers by id (empty when the entry is deleted). */
  timers: Map<string, Pending>;
}

export class TimerIndex {
  private readonly byKey = new Map<string, KeyTimers>();
  private readonly heap = new TimerHeap();
  private clock: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private firing = 0;
  private running = false;

  constructor(private readonly o: TimerIndexOptions) {}

  /** Timers in the heap: one per timer the partition's records hold. */
  get size(): number {
    return this.heap.size;
  }

  /** Reads the partition's index entries (the last value of each key), leaving no consumer behind. */
  async load(): Promise<void> {
    await this.o.store.scanTimerEntries(this.o.partition, (stateKey, revision, value) => {
      // Another lane's actors (ownership/placement.ts) are fired by their own owner.
      if (this.o.owns && !this.o.owns(stateKey.slice(0, stateKey.indexOf('.')))) return;
      this.follow(stateKey, revision, value === null || value.length === 0 ? [] : parseDue(new TextDecoder().decode(value)));
    });
  }

  /**
   * Makes the index follow an actor's committed timers: a CAS write (or delete) when they
   * differ from what it holds. A lost CAS means another owner wrote: this one is fenced.
   */
  async sync(stateKey: string, timers: readonly StoredTimer[] | undefined): Promise<void> {
    const cur = this.byKey.get(stateKey);
    if (sameDue(cur?.timers, timers)) return;
    const due: Due[] = (timers ?? []).map((t) => [t.id, t.n, t.at] as const);
    const { store, partition, leaseValid } = this.o;
    if (!leaseValid()) throw new FencedError(`partition ${partition}: lease not held, refusing to write the timer index`);
    let rev: number;
    try {
      // An empty value is this index's "no timers" (a KV delete needs its own header).
      rev = await store.writeTimerEntry(partition, stateKey, encodeText(due.length === 0 ? '' : JSON.stringify(due)), cur?.rev ?? 0, leaseValid);
    } catch (err) {
      throw conflictOr(store, err, `partition ${partition}: timer index ${stateKey} was written by someone else`);
    }
    this.follow(stateKey, rev, due);
    if (this.running) this.arm();
  }

  /** Sets a key's timers in memory: removes, moves or adds heap entries for what changed only. */
  private follow(stateKey: string, rev: number, due: readonly Due[]): void {
    let entry = this.byKey.get(stateKey);
    if (!entry) {
      entry = { rev, timers: new Map() };
      this.byKey.set(stateKey, entry);
    }
    entry.rev = rev;
    const timers = entry.timers;
    const keep = new Set<string>();
    for (const [id, n, at] of due) {
      keep.add(id);
      const p = timers.get(id);
      if (!p) {
        const added: Pending = { when: at, stateKey, id, n, at, fired: 0, pos: 0 };
        timers.set(id, added);
        this.heap.push(added);
      } else if (p.n !== n || p.at !== at) {
        // Replaced, or a recurring timer moved to its next time: fired from scratch.
        p.n = n;
        p.at = at;
        p.fired = 0;
        this.heap.move(p, at);
      }
    }
    if (timers.size > keep.size) {
      for (const [id, p] of timers) {
        if (keep.has(id)) continue;
        timers.delete(id);
        this.heap.remove(p);
      }
    }
  }

  /** Starts firing due timers. */
  start(): void {
    this.running = true;
    this.arm();
  }

  /** Stops firing (the index stays as it is in the bucket). */
  stop(): void {
    this.running = false;
    if (this.clock) clearTimeout(this.clock);
    this.clock = null;
  }

  /** Sets the clock for the earliest timer. */
  private arm(): void {
    const next = this.heap.peek();
    if (!next || !this.running) return;
    const when = next.when;
    if (this.clock && when >= this.armedFor) return;
    if (this.clock) clearTimeout(this.clock);
    this.armedFor = when;
    this.clock = setTimeout(() => this.tick(), Math.min(Math.max(0, when - Date.now()), 2 ** 31 - 1));
  }

  private tick(): void {
    this.clock = null;
    this.armedFor = Infinity;
    if (!this.running) return;
    const now = Date.now();
    for (let top = this.heap.peek(); top !== undefined && top.when <= now && this.firing < MAX_FIRING; top = this.heap.peek()) {
      this.fire(top);
      // Fired again later if the record still holds it then (a lost or early firing), backing
      // off: a partition far behind (a burst of timers due at once) is not fed the same firings
      // again. The commit that applies the firing moves or removes the entry before that.
      top.fired++;
      this.heap.move(top, now + Math.min(REFIRE_MAX_MS, REFIRE_MS * 2 ** (top.fired - 1)));
    }
    if (this.firing >= MAX_FIRING) {
      this.clock = setTimeout(() => this.tick(), 20);
      this.armedFor = now + 20;
    } else this.arm();
  }

  private fire({ stateKey, id, n, at }: Pending): void {
    const { names, topology, publisher, leaseValid, log, partition } = this.o;
    const dot = stateKey.indexOf('.');
    const subject = operationSubject(names, stateKey.slice(0, dot), stateKey.slice(dot + 1), FIRE_TIMER_OPERATION);
    this.firing++;
    publisher
      .publish(subject, encodeText(JSON.stringify({ id, n, at })), { msgId: fireMsgId(topology.salt, topology.streamCreated, stateKey, { id, n, at }), guard: leaseValid })
      .catch((err: unknown) => {
        if (this.running) log.warn({ partition, key: stateKey, timer: id, err: String(err) }, 'a timer could not be fired; it is fired again shortly');
      })
      .finally(() => {
        this.firing--;
      });
  }
}

/** True when the index holds exactly these timers (id, seq that set it, time). */
function sameDue(held: ReadonlyMap<string, Pending> | undefined, timers: readonly StoredTimer[] | undefined): boolean {
  const n = timers?.length ?? 0;
  if ((held?.size ?? 0) !== n) return false;
  if (n === 0) return true;
  for (const t of timers ?? []) {
    const p = held?.get(t.id);
    if (!p || p.n !== t.n || p.at !== t.at) return false;
  }
  return true;
}

/** An index entry's timers; nothing for junk. */
function parseDue(json: string): Due[] {
  try {
    const v = JSON.parse(json) as unknown;
    if (!Array.isArray(v)) return [];
    return v.filter((d): d is Due => Array.isArray(d) && typeof d[0] === 'string' && typeof d[1] === 'number' && typeof d[2] === 'number');
  } catch {
    return [];
  }
}
