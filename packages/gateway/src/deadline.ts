/**
 * Races `promise` against a timer: a route never waits longer than `ms`, whatever the
 * NATS client does. When the timer wins, `onExpire()` supplies the error; a later
 * rejection of `promise` is swallowed (it has nobody left to tell), and a later value is
 * handed to `onLate` (to release what nobody will use: a watch opened too late).
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, onExpire: () => Error, onLate?: (value: T) => void): Promise<T> {
  // One promise and one timer per call (no async frame, no race of two promises): it is on
  // every request's path.
  return new Promise<T>((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(onExpire());
    }, ms);
    promise.then(
      (value) => {
        if (expired) {
          onLate?.(value);
          return;
        }
        clearTimeout(timer);
        resolve(value);
      },
      (err: Error) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
