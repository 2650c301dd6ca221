/** The pending timers of a partition in time order: a binary heap whose entries know their place. */

/**
 * One pending timer: its heap entry, updated in place. The heap holds exactly one per timer
 * the partition's records hold: a change of a key's timers touches only the timers that
 * changed (an unchanged one keeps its place and its firing count), a timer taken off is
 * removed from the heap at once, and a firing moves its entry to the time of its next attempt.
 */
export interface Pending {
  /** When to fire next: the timer's time, or after a firing the time to fire it again. */
  when: number;
  stateKey: string;
  id: string;
  n: number;
  at: number;
  /** Firings published since the timer got this time. */
  fired: number;
  /** Index in the heap. */
  pos: number;
}

/** A min-heap of {@link Pending} entries by `when`, updated in place. */
export class TimerHeap {
  private readonly h: Pending[] = [];

  get size(): number {
    return this.h.length;
  }

  /** The earliest entry. */
  peek(): Pending | undefined {
    return this.h[0];
  }

  /** Adds an entry (its `pos` is set). */
  push(p: Pending): void {
    p.pos = this.h.length;
    this.h.push(p);
    this.up(p.pos);
  }

  /** Gives an entry a new time and restores the heap order around it. */
  move(p: Pending, when: number): void {
    const earlier = when < p.when;
    p.when = when;
    if (earlier) this.up(p.pos);
    else this.down(p.pos);
  }

  remove(p: Pending): void {
    const h = this.h;
    const last = h.pop() as Pending;
    if (last === p) return;
    h[p.pos] = last;
    last.pos = p.pos;
    this.up(last.pos);
    this.down(last.pos);
  }

  private up(i: number): void {
    const h = this.h;
    const item = h[i] as Pending;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = h[parent] as Pending;
      if (above.when <= item.when) break;
      h[i] = above;
      above.pos = i;
      i = parent;
    }
    h[i] = item;
    item.pos = i;
  }

  private down(i: number): void {
    const h = this.h;
    const item = h[i] as Pending;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && (h[r] as Pending).when < (h[l] as Pending).when ? r : l;
      const child = h[c] as Pending;
      if (child.when >= item.when) break;
      h[i] = child;
      child.pos = i;
      i = c;
    }
    h[i] = item;
    item.pos = i;
  }
}
