import { describe, expect, it } from 'vitest';
import { inPublishBatch } from '../src/nats/publish-batch.js';

describe('inPublishBatch', () => {
  it('starts the publishes queued in one turn together, after that turn, in order', async () => {
    const events: string[] = [];
    const publish = (name: string) => () => {
      events.push(name);
      // nats.js flushes in a microtask: it must come after every publish of the batch.
      queueMicrotask(() => events.push(`flush after ${name}`));
      return Promise.resolve(name);
    };
    const all = Promise.all([inPublishBatch(publish('a')), inPublishBatch(publish('b')), inPublishBatch(publish('c'))]);
    // Nothing starts synchronously: the batch waits for the check phase.
    expect(events).toEqual([]);
    expect(await all).toEqual(['a', 'b', 'c']);
    expect(events).toEqual(['a', 'b', 'c', 'flush after a', 'flush after b', 'flush after c']);
  });

  it('settles each with its own publish, a rejection or a synchronous throw included, without stopping the others', async () => {
    const failed = new Error('no stream');
    const results = await Promise.allSettled([
      inPublishBatch(() => Promise.resolve(1)),
      inPublishBatch(() => Promise.reject(failed)),
      inPublishBatch(() => {
        throw new TypeError('bad subject');
      }),
      inPublishBatch(() => Promise.resolve(4)),
    ]);
    expect(results).toEqual([
      { status: 'fulfilled', value: 1 },
      { status: 'rejected', reason: failed },
      { status: 'rejected', reason: new TypeError('bad subject') },
      { status: 'fulfilled', value: 4 },
    ]);
  });

  it('starts a publish queued while a batch runs in the next batch', async () => {
    const order: string[] = [];
    const later = await inPublishBatch(() => {
      order.push('first');
      const next = inPublishBatch(() => {
        order.push('second');
        return Promise.resolve('second');
      });
      // Queued from inside the running batch: not started yet.
      expect(order).toEqual(['first']);
      return Promise.resolve(next);
    });
    expect(later).toBe('second');
    expect(order).toEqual(['first', 'second']);
  });
});
