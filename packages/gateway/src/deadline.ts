/**
 * Races `promise` against a timer: a route never waits longer than `ms`, whatever the
 * NATS client does. When the timer wins, `onExpire()` supplies the error; a later
 * rejection of `promise` is swallowed (it has nobody left to tell).
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, onExpire: () => Error): Promise<T> {
  promise.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onExpire()), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
