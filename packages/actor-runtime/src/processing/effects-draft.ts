/**
 * A record's timers and pending sends while one key's batch is folded. The committed record's
 * lists are copied on first use only, then changed in place, and their size in bytes (as the
 * record's JSON carries them) is kept as they change: an operation costs its own timers and
 * sends, never all of the key's. Before, every operation copied the outbox and stringified
 * every timer (5,000 transfers from one account in one batch: 4 s, quadratic).
 */
import type { StoredSend, StoredTimer } from '../store/records.js';

/** Where a draft stood; {@link EffectsDraft.rollback} returns to it. */
export interface DraftMark {
  undo: number;
  sends: number;
  timerBytes: number;
  sendBytes: number;
}

/** UTF-8 bytes of a value's JSON. */
function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

export class EffectsDraft {
  /** The timers by id; null while they are still the base's list (unread). */
  private timers: Map<string, StoredTimer> | null = null;
  private outbox: StoredSend[] | null = null;
  /** Bytes of the timers' and sends' JSON items (without brackets and commas); -1 until first needed. */
  private timerBytes = -1;
  private sendBytes = -1;
  /** Changes since the last mark, to undo a failed operation's: [id, the timer it replaced or undefined]. */
  private readonly undo: Array<[string, StoredTimer | undefined]> = [];
  private timersTouched = false;
  private sendsTouched = false;

  constructor(
    private readonly baseTimers: readonly StoredTimer[] | undefined,
    private readonly baseOutbox: readonly StoredSend[] | undefined,
  ) {}

  private map(): Map<string, StoredTimer> {
    if (this.timers === null) {
      this.timers = new Map();
      for (const t of this.baseTimers ?? []) this.timers.set(t.id, t);
    }
    return this.timers;
  }

  private sends(): StoredSend[] {
    this.outbox ??= [...(this.baseOutbox ?? [])];
    return this.outbox;
  }

  get timerCount(): number {
    return this.timers === null ? (this.baseTimers?.length ?? 0) : this.timers.size;
  }

  get hasEffects(): boolean {
    return this.timerCount > 0 || (this.outbox === null ? (this.baseOutbox?.length ?? 0) : this.outbox.length) > 0;
  }

  timer(id: string): StoredTimer | undefined {
    return this.map().get(id);
  }

  /** Adds or replaces (by id) a timer. */
  setTimer(t: StoredTimer): void {
    const timers = this.map();
    const old = timers.get(t.id);
    if (this.timerBytes >= 0) this.timerBytes += jsonBytes(t) - (old ? jsonBytes(old) : 0);
    this.undo.push([t.id, old]);
    timers.set(t.id, t);
    this.timersTouched = true;
  }

  /** Removes a timer; false when there is none of that id. */
  deleteTimer(id: string): boolean {
    const timers = this.map();
    const old = timers.get(id);
    if (!old) return false;
    if (this.timerBytes >= 0) this.timerBytes -= jsonBytes(old);
    this.undo.push([id, old]);
    timers.delete(id);
    this.timersTouched = true;
    return true;
  }

  /** Removes every timer. */
  clearTimers(): void {
    for (const id of [...this.map().keys()]) this.deleteTimer(id);
  }

  send(s: StoredSend): void {
    if (this.sendBytes >= 0) this.sendBytes += jsonBytes(s);
    this.sends().push(s);
    this.sendsTouched = true;
  }

  /**
   * Bytes the timers and sends add to the record's JSON (their lists with brackets and
   * commas). The first call of a fold measures what the record held: once, not per operation.
   */
  bytes(): number {
    if (this.timerBytes < 0) {
      this.timerBytes = 0;
      for (const t of this.timers === null ? (this.baseTimers ?? []) : this.timers.values()) this.timerBytes += jsonBytes(t);
    }
    if (this.sendBytes < 0) {
      this.sendBytes = 0;
      for (const s of this.outbox ?? this.baseOutbox ?? []) this.sendBytes += jsonBytes(s);
    }
    const list = (n: number, bytes: number) => (n === 0 ? 0 : bytes + n + 1);
    return list(this.timerCount, this.timerBytes) + list(this.outbox?.length ?? this.baseOutbox?.length ?? 0, this.sendBytes);
  }

  /** Starts an operation: what it changes can be undone with {@link rollback}. */
  mark(): DraftMark {
    this.undo.length = 0;
    return { undo: 0, sends: this.outbox?.length ?? this.baseOutbox?.length ?? 0, timerBytes: this.timerBytes, sendBytes: this.sendBytes };
  }

  /** Undoes what was changed since `mark` (a failed operation leaves the record as it was). */
  rollback(mark: DraftMark): void {
    const timers = this.timers;
    if (timers !== null) {
      for (let i = this.undo.length - 1; i >= mark.undo; i--) {
        const [id, old] = this.undo[i] as [string, StoredTimer | undefined];
        if (old) timers.set(id, old);
        else timers.delete(id);
      }
    }
    this.undo.length = mark.undo;
    if (this.outbox !== null) this.outbox.length = mark.sends;
    // A measure taken during the operation counted its changes: measure again when next needed.
    this.timerBytes = mark.timerBytes < 0 ? -1 : mark.timerBytes;
    this.sendBytes = mark.sendBytes < 0 ? -1 : mark.sendBytes;
  }

  /** The timers changed (the partition's timer index must follow). */
  get timersChanged(): boolean {
    return this.timersTouched;
  }

  /** Writes the lists into the record, once per fold; absent when empty. */
  finish(rec: { timers?: readonly StoredTimer[]; outbox?: readonly StoredSend[] }): void {
    if (this.timersTouched && this.timers !== null) {
      if (this.timers.size === 0) delete rec.timers;
      else rec.timers = [...this.timers.values()];
    }
    if (this.sendsTouched && this.outbox !== null) {
      if (this.outbox.length === 0) delete rec.outbox;
      else rec.outbox = this.outbox;
    }
  }
}
