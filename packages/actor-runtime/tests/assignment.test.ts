import { describe, expect, it } from 'vitest';
import { assignPartitions } from '../src/internal.js';

describe('assignPartitions', () => {
  it.each([1, 2, 3, 4, 5, 7])('balances 32 partitions over %i members', (w) => {
    const members = Array.from({ length: w }, (_, i) => `w-${i + 1}`);
    const a = assignPartitions(32, members);
    const sizes = members.map((m) => a.get(m)!.length);
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(32);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(Math.ceil(32 / w));
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(Math.floor(32 / w));
    const all = members.flatMap((m) => a.get(m)!).sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 32 }, (_, i) => i));
  });

  it('is the same whatever the order of members', () => {
    expect(assignPartitions(32, ['b', 'a', 'c'])).toEqual(assignPartitions(32, ['c', 'b', 'a']));
  });

  it('moves few partitions when a member joins or leaves', () => {
    const owner = (m: Map<string, number[]>) => {
      const o = new Map<number, string>();
      for (const [id, ps] of m) for (const p of ps) o.set(p, id);
      return o;
    };
    const before = owner(assignPartitions(32, ['w-1', 'w-2', 'w-3']));
    const after = owner(assignPartitions(32, ['w-1', 'w-2', 'w-3', 'w-4']));
    let moved = 0;
    for (let p = 0; p < 32; p++) if (before.get(p) !== after.get(p)) moved++;
    // The ideal is 8 (the new member's share); bounded-load rendezvous stays close to it.
    expect(moved).toBeGreaterThanOrEqual(8);
    expect(moved).toBeLessThanOrEqual(14);
  });
});
