/**
 * The timers of one partition, as its owner keeps them: an index of which actors have timers
 * (bucket `actors_timers`, key `<p>.<type>.<key>`, written with CAS by the owner before the
 * checkpoint that follows the record), a heap in memory, and the firing: at a timer's time
 * the owner publishes `$fire` to the actor (a deterministic msg id), and the fold applies it
 * if the record still holds that timer. The record is the truth; the index is how the next
 * owner finds the timers without reading every record, and it is repaired from the records a
 * replay loads (a crash between a record write and its index write).
 */
import { DeliverPolicy } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { FencedError } from '../errors.js';
import { FIRE_TIMER_OPERATION, operationSubject, type ActorNames } from '../names.js';
import type { Topology } from '../store/provision.js';
import type { StoredTimer } from '../store/records.js';
import { kvWriteSubject, type AckedPublisher } from './acked-publisher.js';
import { fireMsgId } from './effects.js';
import { conflictOr, encodeText } from './record-io.js';

/** A timer as the index keeps it: enough to fire it. */
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
  publisher: AckedPublisher;
  leaseValid: () => boolean;
}

interface KeyTimers {
  /** KV revision of the index entry (0: none). */
  rev: number;
  /** The entry as JSON text ('' when deleted). */
  json: string;
  due: Due[];
}

/** A min-heap entry: when, which timer of which actor, and how many times it was fired already. */
type HeapItem = [when: number, stateKey: string, id: string, n: number, at: number, fired?: number];

export class TimerIndex {
  private readonly byKey = new Map<string, KeyTimers>();
  private heap: HeapItem[] = [];
  private clock: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private firing = 0;
  private running = false;

  constructor(private readonly o: TimerIndexOptions) {}

  private keyOf(stateKey: string): string {
    return `${this.o.partition}.${stateKey}`;
  }

  /** Reads the partition's index entries (the last value of each key). */
  async load(): Promise<void> {
    const { topology, names, partition } = this.o;
    const bucket = names.timerBucket;
    const prefix = `$KV.${bucket}.${partition}.`;
    const consumer = await topology.js.consumers.get(`KV_${bucket}`, { filter_subjects: `${prefix}>`, deliver_policy: DeliverPolicy.LastPerSubject });
    let pending = (await consumer.info(true)).num_pending;
    while (pending > 0) {
      const it = await consumer.fetch({ max_messages: Math.min(pending, 4096), expires: 5000 });
      let got = 0;
      for await (const m of it) {
        got++;
        pending = m.info.pending;
        const stateKey = m.subject.slice(prefix.length);
        const op = m.headers?.get('KV-Operation');
        if (op === 'DEL' || op === 'PURGE' || m.data.length === 0) {
          this.byKey.set(stateKey, { rev: m.seq, json: '', due: [] });
          continue;
        }
        const json = m.string();
        this.byKey.set(stateKey, { rev: m.seq, json, due: parseDue(json) });
        if (pending === 0) break;
      }
      if (got === 0) break;
    }
    for (const [k, t] of this.byKey) for (const d of t.due) this.push([d[2], k, ...d]);
  }

  /**
   * Makes the index follow an actor's committed timers: a CAS write (or delete) when they
   * differ from what it holds. A lost CAS means another owner wrote: this one is fenced.
   */
  async sync(stateKey: string, timers: readonly StoredTimer[] | undefined): Promise<void> {
    const due: Due[] = (timers ?? []).map((t) => [t.id, t.n, t.at] as const);
    const json = due.length === 0 ? '' : JSON.stringify(due);
    const cur = this.byKey.get(stateKey);
    if ((cur?.json ?? '') === json) return;
    const { topology, publisher, partition, leaseValid } = this.o;
    if (!leaseValid()) throw new FencedError(`partition ${partition}: lease not held, refusing to write the timer index`);
    const subject = kvWriteSubject(topology.timers, this.keyOf(stateKey));
    try {
      // An empty value is this index's "no timers" (a KV delete needs its own header).
      const ack = await publisher.publish(subject, encodeText(json), { expectedLastSubjectSequence: cur?.rev ?? 0, guard: leaseValid });
      this.byKey.set(stateKey, { rev: ack.seq, json, due });
    } catch (err) {
      throw conflictOr(err, `partition ${partition}: timer index ${stateKey} was written by someone else`);
    }
    for (const d of due) this.push([d[2], stateKey, ...d]);
    if (this.running) this.arm();
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

  private isCurrent(item: HeapItem): boolean {
    const due = this.byKey.get(item[1])?.due;
    return due !== undefined && due.some((d) => d[0] === item[2] && d[1] === item[3] && d[2] === item[4]);
  }

  /** Sets the clock for the earliest current timer. */
  private arm(): void {
    while (this.heap.length > 0 && !this.isCurrent(this.heap[0] as HeapItem)) this.pop();
    const next = this.heap[0];
    if (!next || !this.running) return;
    const when = next[0];
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
    while (this.heap.length > 0 && (this.heap[0] as HeapItem)[0] <= now && this.firing < MAX_FIRING) {
      const item = this.pop() as HeapItem;
      if (!this.isCurrent(item)) continue;
      this.fire(item);
      // Fired again later if the record still holds it then (a lost or early firing), backing
      // off: a partition far behind (a burst of timers due at once) is not fed the same firings again.
      const fired = (item[5] ?? 0) + 1;
      this.push([now + Math.min(REFIRE_MAX_MS, REFIRE_MS * 2 ** (fired - 1)), item[1], item[2], item[3], item[4], fired]);
    }
    if (this.firing >= MAX_FIRING) {
      this.clock = setTimeout(() => this.tick(), 20);
      this.armedFor = now + 20;
    } else this.arm();
  }

  private fire([, stateKey, id, n, at]: HeapItem): void {
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

  private push(item: HeapItem): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as HeapItem)[0] <= item[0]) break;
      h[i] = h[parent] as HeapItem;
      i = parent;
    }
    h[i] = item;
  }

  private pop(): HeapItem | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || !last) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && (h[r] as HeapItem)[0] < (h[l] as HeapItem)[0] ? r : l;
      if ((h[c] as HeapItem)[0] >= last[0]) break;
      h[i] = h[c] as HeapItem;
      i = c;
    }
    h[i] = last;
    return top;
  }
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
