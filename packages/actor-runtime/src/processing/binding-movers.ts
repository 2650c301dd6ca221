/**
 * The binding movers of one worker (binding-mover.ts): the capture streams come from the
 * position keys in the control bucket (a watch), and a capture is moved here while this worker
 * owns its partition.
 */
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { Topology } from '../store/provision.js';
import { BindingMover, moverPartition } from './binding-mover.js';
import { BINDING_POS_PREFIX } from '../protocol/index.js';

/** Longest pause before a failed mover starts again (ms). */
const MAX_RETRY_MS = 60_000;
/** A mover running this long (ms) has recovered: its next failure is retried at once again. */
const HEALTHY_MS = 10_000;

/** Starts and stops the movers of the captures whose partition this worker owns. */
export class BindingMovers {
  private readonly captures = new Set<string>();
  private readonly movers = new Map<string, { mover: BindingMover; owner: unknown; topology: Topology; startedAt: number }>();
  /** Captures whose mover failed: how often in a row, and when it may start again (performance.now()). */
  private readonly failures = new Map<string, { count: number; retryAt: number }>();
  private watcher: QueuedIterator<KvWatchEntry> | null = null;
  private control: KV | null = null;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    /** The owner state of partition p while this worker may move `capture` for it (lease held), else undefined. */
    private readonly ownerOf: (p: number, capture: string) => { token: unknown; guard: () => boolean } | undefined,
  ) {}

  /** Watches the position keys of `control` (again after a recreation). */
  async start(control: KV, topology: () => Topology | null): Promise<void> {
    this.watcher?.stop();
    this.watcher = null;
    // A new bucket (a recreation) forgets the captures seen; a restarted watch sees them again.
    if (this.control !== control) this.captures.clear();
    this.control = control;
    this.stopped = false;
    this.topology = topology;
    let it: QueuedIterator<KvWatchEntry>;
    try {
      it = await control.watch({ key: `${BINDING_POS_PREFIX}>` });
    } catch (err) {
      this.log.warn({ err: String(err) }, 'binding positions watch could not start; retrying');
      this.restartLater(control, null);
      return;
    }
    this.watcher = it;
    void (async () => {
      try {
        for await (const e of it) {
          const capture = e.key.slice(BINDING_POS_PREFIX.length);
          if (e.operation === 'PUT') this.captures.add(capture);
          else this.captures.delete(capture);
          this.sync();
        }
      } catch (err) {
        if (!this.stopped) this.log.warn({ err: String(err) }, 'binding positions watch failed');
      }
      if (!this.stopped && this.watcher === it) this.log.warn('binding positions watch ended; restarting it');
      this.restartLater(control, it);
    })();
  }

  /** Starts the watch again in a second unless stopped or another one was started meanwhile. */
  private restartLater(control: KV, it: QueuedIterator<KvWatchEntry> | null): void {
    setTimeout(() => {
      if (!this.stopped && this.watcher === it) void this.start(control, this.topology);
    }, 1000).unref?.();
  }

  private topology: () => Topology | null = () => null;

  /** Starts the movers of the captures whose partition this worker owns; stops the others. */
  sync(): void {
    const topo = this.topology();
    if (this.stopped || !topo) return;
    const now = performance.now();
    for (const [capture, m] of this.movers) {
      const owner = this.ownerOf(moverPartition(capture, topo.partitions), capture);
      if (!m.mover.running || !this.captures.has(capture) || owner?.token !== m.owner || m.topology !== topo) {
        this.movers.delete(capture);
        void m.mover.stop();
        // One that failed (its capture stream gone, a lost position) starts again later, each time
        // later (up to a minute), so a lasting failure is not retried and logged at every tick.
        const failures = m.mover.failed ? (this.failures.get(capture)?.count ?? 0) + 1 : 0;
        if (failures > 0) this.failures.set(capture, { count: failures, retryAt: now + Math.min(MAX_RETRY_MS, 500 * 2 ** Math.min(failures - 1, 10)) });
        else this.failures.delete(capture);
      } else if (now - m.startedAt > HEALTHY_MS) {
        this.failures.delete(capture);
      }
    }
    for (const capture of this.captures) {
      if (this.movers.has(capture) || (this.failures.get(capture)?.retryAt ?? 0) > now) continue;
      const owner = this.ownerOf(moverPartition(capture, topo.partitions), capture);
      if (!owner) continue;
      this.movers.set(capture, { mover: new BindingMover(this.nc, topo, capture, owner.guard, this.log), owner: owner.token, topology: topo, startedAt: now });
    }
  }

  /** Captures moved here now (for status and tests). */
  moving(): string[] {
    return [...this.movers.entries()].filter(([, m]) => m.mover.running).map(([c]) => c).sort();
  }

  /** Stops every mover and the watch. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.stop();
    this.watcher = null;
    const all = [...this.movers.values()];
    this.movers.clear();
    await Promise.all(all.map((m) => m.mover.stop()));
  }
}
