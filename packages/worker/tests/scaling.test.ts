import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { assignPartitions, partitionOf, type ActorClient } from '@jetactor/actor-runtime';
import { jsonLines, prng, publishOps, randomOps, replayCounters, spawnWorker, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { countByOwner, owners } from './support/workers.js';

const PARTITIONS = 16;
const LEASE_TTL_MS = 2000;
let stack: Stack;
let server: NatsServer;
let js: JetStreamClient;
let jsm: JetStreamManager;
let client: ActorClient;
let workers: ManagedProcess[];

beforeAll(async () => {
  stack = await startStack();
  ({ server, js, jsm, client, workers } = stack);
});

afterAll(async () => {
  await stack?.stop();
});
function start(id: string): ManagedProcess {
  const w = spawnWorker({ id, natsUrl: server.url, partitions: PARTITIONS, leaseTtlMs: LEASE_TTL_MS });
  workers.push(w);
  return w;
}

/** Waits until the leases match the assignment for exactly `ids`. */
async function settledOn(ids: string[], timeoutMs = 20_000): Promise<Map<number, string | null>> {
  const want = assignPartitions(PARTITIONS, ids);
  return waitFor(
    async () => {
      const o = await owners(client);
      for (const [id, ps] of want) for (const p of ps) if (o.get(p) !== id) return false;
      return o;
    },
    { timeoutMs, intervalMs: 25, message: `partitions to settle on ${ids.join(', ')}` },
  );
}

/** What a worker's logs say about one partition changing hands. */
interface OwnershipEvent {
  time: number;
  worker: string;
  kind: 'releasing' | 'released' | 'acquired' | 'lost';
  partition: number;
}

/**
 * Per partition, from the workers' `ownership changed` lines (one per batch of changes: the
 * partitions released, with how long the batch took, and those acquired) and their
 * `partition lost (fenced)` warnings.
 */
function ownershipEvents(w: ManagedProcess): OwnershipEvent[] {
  const list = (v: unknown): number[] => (Array.isArray(v) ? v.filter((p): p is number => typeof p === 'number') : []);
  return jsonLines(w).flatMap((l): OwnershipEvent[] => {
    if (l.msg === 'ownership changed') {
      const ms = typeof l.ms === 'number' ? l.ms : 0;
      return [
        ...list(l.released).flatMap((partition) => [
          { time: l.time - ms, worker: w.name, kind: 'releasing' as const, partition },
          { time: l.time, worker: w.name, kind: 'released' as const, partition },
        ]),
        ...list(l.acquired).map((partition) => ({ time: l.time, worker: w.name, kind: 'acquired' as const, partition })),
      ];
    }
    if (typeof l.msg === 'string' && l.msg.startsWith('partition lost') && typeof l.partition === 'number') return [{ time: l.time, worker: w.name, kind: 'lost', partition: l.partition }];
    return [];
  });
}

/** Per partition, when `w` last logged acquiring it. */
function acquiredTimes(w: ManagedProcess): Map<number, number> {
  return new Map(ownershipEvents(w).filter((e) => e.kind === 'acquired').map((e) => [e.partition, e.time]));
}

/**
 * Graceful hand-overs from the workers' logs: for each partition a worker took, the
 * last release of it by another worker just before. `gapMs` runs from the old owner's
 * release batch ending (leases deleted) to the new owner's acquire batch ending (reading);
 * `totalMs` from the old owner's release batch starting (final commits included). Batches
 * make these an upper bound of each partition's own hand-over.
 */
function gracefulHandovers(all: ManagedProcess[]): Array<{ partition: number; gapMs: number; totalMs: number }> {
  const events = all.flatMap(ownershipEvents).sort((a, b) => a.time - b.time);
  const out: Array<{ partition: number; gapMs: number; totalMs: number }> = [];
  const lastRelease = new Map<number, { start: number; end?: number; worker: string }>();
  for (const e of events) {
    if (e.kind === 'releasing') lastRelease.set(e.partition, { start: e.time, worker: e.worker });
    else if (e.kind === 'released') {
      const r = lastRelease.get(e.partition);
      if (r && r.worker === e.worker) r.end = e.time;
    } else if (e.kind === 'lost') lastRelease.delete(e.partition);
    else {
      const r = lastRelease.get(e.partition);
      if (r?.end !== undefined && r.worker !== e.worker) {
        out.push({ partition: e.partition, gapMs: Math.max(0, e.time - r.end), totalMs: e.time - r.start });
        if (process.env.DUMP && e.time - r.end > 800) console.log('slow hand-over', e, r);
      }
      lastRelease.delete(e.partition);
    }
  }
  return out;
}

describe('horizontal scaling', () => {
  it('splits partitions evenly over 1, 2, 3 and 4 workers', async () => {
    const ids: string[] = [];
    for (const id of ['s-1', 's-2', 's-3', 's-4']) {
      start(id);
      ids.push(id);
      const o = await settledOn(ids);
      const counts = countByOwner(o);
      expect([...counts.keys()].sort()).toEqual([...ids].sort());
      for (const n of counts.values()) {
        expect(n).toBeLessThanOrEqual(Math.ceil(PARTITIONS / ids.length));
        expect(n).toBeGreaterThanOrEqual(Math.floor(PARTITIONS / ids.length));
      }
    }
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await waitFor(async () => [...(await owners(client)).values()].every((o) => o === null), {
      timeoutMs: 10_000,
      message: 'graceful leaves to release every lease',
    });
  });

  it('keeps exactly-once through joins, leaves, SIGKILL and SIGSTOP under load', async () => {
    const w1 = start('c-1');
    await settledOn(['c-1']);
    // Watch every record: a key's stored seq must never go backwards.
    const kv = await new Kvm(js).open('actors');
    const seen = new Map<string, number>();
    const regressions: string[] = [];
    const watch = await kv.watch({ key: 'counter.>' });
    void (async () => {
      for await (const e of watch) {
        if (e.operation !== 'PUT') continue;
        const { seq } = e.json<{ seq: number }>();
        const prev = seen.get(e.key) ?? 0;
        if (seq < prev) regressions.push(`${e.key}: ${prev} -> ${seq}`);
        seen.set(e.key, Math.max(prev, seq));
      }
    })();

    // Continuous load over 1,000 keys until the scenario ends.
    const lastSeq = new Map<string, number>();
    let loading = true;
    const rnd = prng(2024);
    const load = (async () => {
      // About 2,000 operations/s: steady load that leaves the 2-core machine room to hand over.
      while (loading) {
        const t0 = Date.now();
        await publishOps(js, 'counter', randomOps(200, 1000, rnd, 'chaos-'), 20, 'actors', lastSeq);
        await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t0))));
      }
    })();

    // 1 -> 3
    const w2 = start('c-2');
    const w3 = start('c-3');
    await settledOn(['c-1', 'c-2', 'c-3']);
    // Graceful hand-over times: released by c-1, acquired by c-2/c-3.
    // 3 -> 1 (graceful leaves)
    await Promise.all([w2.stop(), w3.stop()]);
    await settledOn(['c-1']);
    // Crash: c-4 joins, c-1 is killed; c-4 takes over after the lease TTL.
    const w4 = start('c-4');
    await settledOn(['c-1', 'c-4']);
    const c1Partitions = [...(await owners(client)).entries()].filter(([, o]) => o === 'c-1').map(([p]) => p);
    const killedAt = Date.now();
    w1.kill('SIGKILL');
    await settledOn(['c-4'], 20_000);
    const acquired4 = await waitFor(
      () => {
        const t = new Map([...acquiredTimes(w4)].filter(([, at]) => at >= killedAt));
        return c1Partitions.every((p) => t.has(p)) && t;
      },
      { timeoutMs: 5000, message: 'c-4 to log taking over the partitions of c-1' },
    );
    const crash = c1Partitions.map((p) => (acquired4.get(p) ?? NaN) - killedAt);
    // Pause: c-5 joins, c-4 is frozen past its lease, c-5 takes everything, c-4 resumes fenced.
    const w5 = start('c-5');
    await settledOn(['c-4', 'c-5']);
    await w4.pause();
    await settledOn(['c-5'], 20_000);
    w4.resume();
    await settledOn(['c-4', 'c-5'], 20_000);

    loading = false;
    await load;
    const need = new Map<number, number>();
    for (const [key, seq] of lastSeq) {
      const p = partitionOf('counter', key, PARTITIONS);
      need.set(p, Math.max(need.get(p) ?? 0, seq));
    }
    await waitFor(async () => (await client.status()).partitions.every((p) => p.checkpoint >= (need.get(p.partition) ?? 0)), {
      timeoutMs: 60_000,
      intervalMs: 100,
      message: 'every operation to be applied',
    });
    watch.stop();

    const expected = await replayCounters(js, jsm, 'ACTORS');
    for (const key of lastSeq.keys()) {
      const snap = await client.read('counter', key);
      expect({ key, state: snap.state }).toEqual({ key, state: expected.get(key) ?? 0 });
    }
    expect(lastSeq.size).toBeGreaterThan(900);
    expect(regressions).toEqual([]);
    // c-4 was fenced after the pause: it logged the loss instead of writing.
    expect(jsonLines(w4).some((l) => l.msg === 'partition lost (fenced)' || String(l.msg).includes('lease not held'))).toBe(true);

    const graceful = gracefulHandovers([w1, w2, w3, w4, w5]);
    const gap = graceful.map((h) => h.gapMs).sort((a, b) => a - b);
    const total = graceful.map((h) => h.totalMs).sort((a, b) => a - b);
    const figures = {
      leaseTtlMs: LEASE_TTL_MS,
      gracefulHandoverMs: {
        releasedToTaken: { p50: gap[Math.floor(gap.length / 2)], max: gap[gap.length - 1] },
        releaseStartToTaken: { p50: total[Math.floor(total.length / 2)], max: total[total.length - 1] },
        handovers: graceful.length,
      },
      crashHandoverMs: { max: Math.max(...crash), min: Math.min(...crash), partitions: crash.length },
      operations: [...lastSeq.values()].reduce((a, b) => Math.max(a, b), 0),
    };
    console.log(`hand-over figures: ${JSON.stringify(figures)}`);
    if (process.env.DUMP) for (const w of [w1, w2, w3, w4, w5]) console.log(w.name, w.lines.filter((l) => /ownership changed|lost|stopping|failed|warn/.test(l)).join('\n'));
    expect(graceful.length).toBeGreaterThan(10);
    expect(crash.every((ms) => Number.isFinite(ms) && ms > 0)).toBe(true);
    // Timings are printed, not asserted: a timed assertion on a shared 2-core machine is a
    // flaky test. `npm run bench` measures hand-over on a quiet machine.
  });
});
