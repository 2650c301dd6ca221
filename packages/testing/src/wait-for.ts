/** Values that `waitFor` accepts as done. */
export type Truthy<T> = Exclude<T, false | 0 | 0n | '' | null | undefined>;

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** Pause between attempts, in milliseconds. Default 50. */
  intervalMs?: number;
  /** What was awaited, for the error message. Default `"condition"`. */
  message?: string;
  /** Stops polling at once when aborted; `waitFor` then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Calls `fn` until it returns (or resolves to) a truthy value and returns that value.
 * A throwing `fn` counts as "not yet". An attempt still pending at the deadline is not
 * waited for.
 *
 * @throws Error naming `message`, the time waited and the last value or error seen.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitForOptions = {}): Promise<Truthy<T>> {
  const { timeoutMs = 10_000, intervalMs = 50, message = 'condition', signal } = opts;
  const deadline = Date.now() + timeoutMs;
  let last: { value: unknown } | { error: unknown } | undefined;
  for (;;) {
    throwIfAborted(signal);
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    try {
      const value = await settleWithin(Promise.resolve().then(fn), remaining, signal);
      if (value === TIMED_OUT) break;
      if (value) return value as Truthy<T>;
      last = { value };
    } catch (error) {
      throwIfAborted(signal);
      last = { error };
    }
    const pause = Math.min(intervalMs, deadline - Date.now());
    if (pause <= 0) break;
    // A promise that never settles: this just waits `pause` ms, or less if aborted.
    await settleWithin(new Promise<void>(() => undefined), pause, signal);
  }
  throwIfAborted(signal);
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}; ${describeLast(last)}`, {
    cause: last && 'error' in last ? last.error : undefined,
  });
}

const TIMED_OUT: unique symbol = Symbol('timed out');

/** `p`, or TIMED_OUT after `ms`, or a rejection as soon as `signal` aborts. */
function settleWithin<T>(p: Promise<T>, ms: number, signal: AbortSignal | undefined): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve, reject) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
    if (signal) {
      onAbort = () => reject(abortReason(signal));
      signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  });
}

function describeLast(last: { value: unknown } | { error: unknown } | undefined): string {
  if (!last) return 'no attempt finished';
  if ('error' in last) {
    return `last error: ${last.error instanceof Error ? last.error.message : String(last.error)}`;
  }
  let text: string;
  try {
    text = JSON.stringify(last.value) ?? String(last.value);
  } catch {
    text = String(last.value);
  }
  return `last value: ${text.length > 500 ? `${text.slice(0, 500)}…` : text}`;
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${String(reason)}`, { cause: reason });
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}
