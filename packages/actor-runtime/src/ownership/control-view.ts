/**
 * What a worker knows of the control bucket: the members' heartbeats and the partition
 * leases, from a KV watch that restarts itself if it ever ends, and the offset between the
 * server's clock and ours (learned from our own heartbeats' server timestamps), so that
 * liveness and lease expiry are judged on the server's clock.
 */
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { decodeJson } from '../store/records.js';
import { ControlPrefix, DEFAULT_LANE, parseControlKey } from '../protocol/index.js';
import type { LaneRecord } from './placement.js';

/** A control entry as last seen: its revision, server timestamp (ms) and decoded value. */
export interface Seen {
  revision: number;
  created: number;
  value: unknown;
}

/** The watched state of members and leases. */
export class ControlView {
  /** Heartbeats by member id. */
  readonly members = new Map<string, Seen>();
  /** Leases by lane, then partition. */
  readonly lanesLeases = new Map<string, Map<number, Seen>>();
  /** Registered lanes by id. */
  readonly lanes = new Map<string, LaneRecord>();
  /** Registered actor types (`types.<type>`, the gateway's registry) and their registered version. */
  readonly registry = new Map<string, number>();
  /** Resolves once what the bucket held when the watch started has been read. */
  ready: Promise<void> = Promise.resolve();
  private markReady: () => void = () => undefined;
  /** serverTime - localTime. */
  private clockOffset = 0;
  private watcher: QueuedIterator<KvWatchEntry> | null = null;
  private stopped = false;

  constructor(
    private readonly selfId: string,
    private readonly log: Logger,
    /** Called after every change. */
    private readonly onChange: () => void,
  ) {}

  /** The leases of `lane` by partition. */
  leasesOf(lane: string): ReadonlyMap<number, Seen> {
    return this.lanesLeases.get(lane) ?? new Map<number, Seen>();
  }

  /** Now on the server's clock (ms). */
  serverNow(): number {
    return Date.now() + this.clockOffset;
  }

  /** Watches `control` (a new bucket after a recreation: what was seen before is forgotten). */
  async start(control: KV): Promise<void> {
    this.stopWatch();
    this.members.clear();
    this.lanesLeases.clear();
    this.lanes.clear();
    this.registry.clear();
    this.stopped = false;
    this.ready = new Promise<void>((resolve) => (this.markReady = resolve));
    try {
      this.watcher = await control.watch({ key: [ControlPrefix.Member, ControlPrefix.Lease, ControlPrefix.Lane, ControlPrefix.Type].map((p) => `${p}>`) });
    } catch (err) {
      this.log.warn({ err: String(err) }, 'control watch could not start; retrying');
      setTimeout(() => void this.restartIfCurrent(control, null), 1000).unref?.();
      return;
    }
    const it = this.watcher;
    void this.consume(it).then(() => {
      if (this.stopped || this.watcher !== it) return;
      this.log.warn('control watch ended; restarting it');
      setTimeout(() => void this.restartIfCurrent(control, it), 1000).unref?.();
    });
  }

  /** Stops watching for good. */
  stop(): void {
    this.stopped = true;
    this.stopWatch();
  }

  private stopWatch(): void {
    const it = this.watcher;
    this.watcher = null;
    it?.stop();
  }

  private async restartIfCurrent(control: KV, it: QueuedIterator<KvWatchEntry> | null): Promise<void> {
    if (this.stopped || this.watcher !== it) return;
    await this.start(control);
  }

  private async consume(it: QueuedIterator<KvWatchEntry>): Promise<void> {
    try {
      for await (const e of it) {
        const seen: Seen = { revision: e.revision, created: e.created.getTime(), value: e.operation === 'PUT' ? safeJson(e.value) : null };
        const key = parseControlKey(e.key);
        if (key?.kind === 'member') {
          const id = key.id;
          if (id === this.selfId && e.operation === 'PUT') this.clockOffset = seen.created - Date.now();
          if (e.operation === 'PUT') this.members.set(id, seen);
          else this.members.delete(id);
        } else if (key?.kind === 'lease') {
          const lane = key.lane ?? DEFAULT_LANE;
          let m = this.lanesLeases.get(lane);
          if (!m) this.lanesLeases.set(lane, (m = new Map<number, Seen>()));
          if (e.operation === 'PUT') m.set(key.partition, seen);
          else m.delete(key.partition);
        } else if (key?.kind === 'type') {
          const rec = seen.value as { version?: unknown } | null;
          if (e.operation === 'PUT' && rec) this.registry.set(key.type, typeof rec.version === 'number' && rec.version >= 1 ? rec.version : 1);
          else this.registry.delete(key.type);
        } else if (key?.kind === 'lane') {
          const id = key.id;
          const lane = seen.value as LaneRecord | null;
          if (e.operation === 'PUT' && lane && typeof lane.types === 'object' && lane.types !== null) this.lanes.set(id, { ...lane, id });
          else this.lanes.delete(id);
        }
        // The watch marks the last of the values stored when it started (and every later one) as an update.
        if (e.isUpdate) this.markReady();
        this.onChange();
      }
    } catch (err) {
      if (!this.stopped) this.log.error({ err }, 'control watch failed');
    } finally {
      this.markReady();
    }
  }
}

function safeJson(data: Uint8Array): unknown {
  try {
    return decodeJson(data);
  } catch {
    return null;
  }
}
