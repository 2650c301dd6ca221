import type { NatsConnection } from '@nats-io/nats-core';

/**
 * Operations a connection may have read ahead (requested from the server, received and
 * not yet committed) across all of its partition readers.
 *
 * Why a bound at all: an ordered consumer's `consume()` pulls more as soon as messages
 * arrive, however far behind the committer is, so a preloaded stream was read into memory
 * whole (about 1 KB per operation held) and, worse, every KV ack and lease renewal on the
 * same connection queued behind that flood: commits took seconds and leases expired.
 * 4,096 operations are a fraction of a second of work for a busy worker: at 1,000 and
 * 100,000 keys the apply rate was the same with 8,192 and 16,384, and the worker's RSS
 * after 100,000 keys was 280 MB against ~330 MB and ~360 MB.
 */
export const DEFAULT_READ_BUDGET = 4096;

/**
 * A counting budget shared by the partition readers of one connection. Readers take
 * units before they pull and give them back once the operations are committed or dropped.
 */
export class ReadBudget {
  private used = 0;
  private readers = 0;
  private waiters: Array<() => void> = [];

  /**
   * @param limit units shared by the readers
   * @param perReader units a quiet reader may hold in a pull that waits for new operations;
   *   the budget grows to twice that per reader, so with many partitions the quiet readers'
   *   pulls never take all of it.
   */
  constructor(
    readonly limit: number,
    readonly perReader = 64,
  ) {}

  /** Units the readers share now: the limit, or two pulls' worth per reader if more. */
  get capacity(): number {
    return Math.max(this.limit, this.readers * 2 * this.perReader);
  }

  /** A reader joins (it may hold up to `perReader` units while it waits on the server). */
  register(): void {
    this.readers++;
    this.wakeAll();
  }

  /** A reader leaves. */
  unregister(): void {
    this.readers = Math.max(0, this.readers - 1);
  }

  /** Units in use now. */
  get inUse(): number {
    return this.used;
  }

  /**
   * Takes between `min` and `want` units, as many as are free, waiting while fewer than
   * `min` are. Resolves with 0 if `cancelled()` turns true while waiting (checked on every
   * release and on {@link wakeAll}).
   */
  async take(want: number, min: number, cancelled: () => boolean): Promise<number> {
    for (;;) {
      if (cancelled()) return 0;
      const floor = Math.max(1, Math.min(min, want, this.capacity));
      const free = this.capacity - this.used;
      if (free >= floor) {
        const n = Math.min(want, free);
        this.used += n;
        return n;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Gives `n` units back and lets waiting readers retry. */
  give(n: number): void {
    if (n <= 0) return;
    this.used = Math.max(0, this.used - n);
    this.wakeAll();
  }

  /** Wakes every waiting reader (they re-check their cancellation and the free units). */
  wakeAll(): void {
    const waiting = this.waiters;
    if (waiting.length === 0) return;
    this.waiters = [];
    for (const w of waiting) w();
  }
}

const budgets = new WeakMap<NatsConnection, ReadBudget>();

/**
 * The budget of a connection: the head-of-line blocking that the bound prevents is a
 * property of one connection's socket, so every reader on it shares one budget.
 */
export function readBudgetOf(nc: NatsConnection, limit = DEFAULT_READ_BUDGET): ReadBudget {
  let b = budgets.get(nc);
  if (!b) {
    b = new ReadBudget(limit);
    budgets.set(nc, b);
  }
  return b;
}
