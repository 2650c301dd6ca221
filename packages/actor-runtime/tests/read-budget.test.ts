import { describe, expect, it } from 'vitest';
import { ReadBudget } from '../src/processing/read-budget.js';

describe('ReadBudget', () => {
  it('grants up to what is free and makes a reader wait for its minimum', async () => {
    const b = new ReadBudget(100, 10);
    expect(await b.take(70, 10, () => false)).toBe(70);
    expect(await b.take(50, 10, () => false)).toBe(30);
    let granted = -1;
    const waiting = b.take(20, 20, () => false).then((n) => (granted = n));
    await Promise.resolve();
    expect(granted).toBe(-1);
    b.give(25);
    await waiting;
    expect(granted).toBe(20);
    expect(b.inUse).toBe(95);
  });

  it('lets a cancelled reader go with nothing', async () => {
    const b = new ReadBudget(10, 5);
    await b.take(10, 1, () => false);
    let cancelled = false;
    const waiting = b.take(5, 5, () => cancelled);
    cancelled = true;
    b.wakeAll();
    expect(await waiting).toBe(0);
    expect(b.inUse).toBe(10);
  });

  it('grows with the readers, so quiet readers never hold all of it', async () => {
    const b = new ReadBudget(100, 10);
    for (let i = 0; i < 20; i++) b.register();
    expect(b.capacity).toBe(400);
    // Twenty quiet readers each holding a pull of 10 leave half for the busy ones.
    for (let i = 0; i < 20; i++) expect(await b.take(10, 10, () => false)).toBe(10);
    expect(await b.take(500, 10, () => false)).toBe(200);
    for (let i = 0; i < 20; i++) b.unregister();
    expect(b.capacity).toBe(100);
  });
});
