/** What a partition has read and not yet committed, shared by its readers and its committer. */
import type { DecodedOp } from './decode.js';

/** The operations a partition read ahead, and the signals between reading and committing. */
export class ReadQueue {
  /** Operations read and decoded, not yet taken by the committer (no JsMsg is kept). */
  pending: DecodedOp[] = [];
  /**
   * The reader let the committer take what `pending` holds: it caught up with the stream, ended
   * a pull, or has held the operations long enough (group commit; see shared-reader.ts).
   */
  flushed = false;
  stopping = false;
  aborted = false;
  /** Operations of the commit in flight. */
  inFlight = 0;
  /** Messages left in the stream after the last one read, as the server reported it. */
  remotePending = 0;
  /** Wakes the committer. */
  wake: (() => void) | null = null;
  /** Wakes the reader when the committer took a batch (room in `pending`). */
  roomWaiter: (() => void) | null = null;

  /** Lets the committer take what the partition holds. */
  flush(): void {
    this.flushed = true;
    this.wake?.();
  }

  /** Stopping or aborted: reading ends. */
  cancelled(): boolean {
    return this.stopping || this.aborted;
  }
}
