/** Progress lines on stderr, prefixed with the time since the run started. */

const started = performance.now();

/** Prints one progress line to stderr: `[  12.3s] section: message`. */
export function progress(section: string, message: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${s}s] ${section}: ${message}\n`);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `fn(i)` for i in [0, n) with at most `window` calls in flight, in index order of
 * start. Resolves when all have settled; rejects with the first failure.
 */
export async function pipelined(n: number, window: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
}
