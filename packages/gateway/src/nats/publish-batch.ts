/**
 * Publishes of many requests in one socket write. nats.js writes what was published during
 * one synchronous run with one `write` (it flushes in a microtask), but each HTTP request
 * is handled in its own I/O callback, so each publish was a write system call of its own:
 * the largest cost of a signal after the HTTP response's own write. Publishes started
 * through {@link inPublishBatch} wait for the check phase of the event loop (`setImmediate`,
 * right after the poll phase that read the requests) and then start together, in arrival
 * order: one write for all the requests read in that turn, and one read for nats-server.
 */

/** Publishes waiting for the check phase, in arrival order. */
let queued: Array<() => void> = [];

function startQueued(): void {
  const batch = queued;
  queued = [];
  for (const start of batch) start();
}

/**
 * Starts `publish` in the next batch and settles with it. Order is kept: a publish queued
 * earlier starts earlier. `publish` must publish synchronously when called (the actor
 * client's signal, call and delete do: their first await is the publish's ack).
 */
export function inPublishBatch<T>(publish: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (queued.length === 0) setImmediate(startQueued);
    queued.push(() => {
      try {
        resolve(publish());
      } catch (err) {
        // Not the actor client's (its methods are async and reject instead): kept from
        // stopping the rest of the batch.
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}
