// Issue 11, "must show": 100,000 telemetry messages from a JetStream publisher (acked, a bounded
// window in flight) on `devices.<id>.telemetry` over 1,000 devices, with a worker process
// SIGKILLed midway: afterwards every device's `count` equals the number published to it, and the
// operations stream holds each message once (the capture stream is sourced exactly once).
import { EMA_ALPHA, device, type DeviceState } from '@jetactor/device-actor';
import { prng, waitFor, type ManagedProcess } from '@jetactor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { inWindow, readStoredOps, waitForQuiescence } from './support/streams.js';
import { settledOn } from './support/workers.js';

const PARTITIONS = 16;
const LEASE_TTL_MS = 2000;
const DEVICES = 1000;
const MESSAGES = 100_000;
const WINDOW = 512;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ actors: [device()] });
});

afterAll(async () => {
  await stack?.stop();
});

const start = (id: string): ManagedProcess => stack.spawn(id, { partitions: PARTITIONS, leaseTtlMs: LEASE_TTL_MS });
const settled = (ids: string[], timeoutMs?: number): Promise<void> => settledOn(stack.client, PARTITIONS, ids, timeoutMs);

/** Readings stored in the operations stream per device key. */
async function storedReadings(): Promise<Map<string, number>> {
  const info = await stack.jsm.streams.info('ACTORS', { subjects_filter: '*.actors.device.*.reading' });
  const out = new Map<string, number>();
  for (const [s, n] of Object.entries(info.state.subjects ?? {})) {
    const key = s.split('.')[3] as string;
    out.set(key, (out.get(key) ?? 0) + n);
  }
  return out;
}

async function states(keys: readonly string[]): Promise<Map<string, DeviceState>> {
  const out = new Map<string, DeviceState>();
  await inWindow(keys, 64, async (key) => {
    out.set(key, (await stack.client.read('device', key)).state as DeviceState);
  });
  return out;
}

type Folded = Pick<DeviceState, 'count' | 'last' | 'avg'>;

/** The stored readings folded per device in stream order, as the device actor folds them (count, last, moving average). */
async function replayReadings(): Promise<Map<string, Folded>> {
  const out = new Map<string, Folded>();
  for (const o of await readStoredOps(stack.js, stack.jsm)) {
    if (o.type !== 'device' || o.op !== 'reading') continue;
    const { t } = JSON.parse(o.data) as { t: number };
    const cur = out.get(o.key) ?? { count: 0, last: null, avg: null };
    const avg = cur.avg === null ? t : Math.min(Number.MAX_VALUE, Math.max(-Number.MAX_VALUE, (1 - EMA_ALPHA) * cur.avg + EMA_ALPHA * t));
    out.set(o.key, { count: cur.count + 1, last: t, avg });
  }
  return out;
}

describe('subject bindings under a worker SIGKILL (issue 11)', () => {
  it('every telemetry message becomes exactly one reading of its device', { timeout: 240_000 }, async () => {
    const { js, client } = stack;
    const w1 = start('b-1');
    start('b-2');
    await settled(['b-1', 'b-2']);

    const rnd = prng(4242);
    const keys = Array.from({ length: DEVICES }, (_, i) => `dev-${i}`);
    const targets = Array.from({ length: MESSAGES }, () => keys[Math.floor(rnd() * DEVICES)] as string);
    const published = new Map<string, number>();
    let acked = 0;
    let killedAt = -1;
    const t0 = Date.now();
    const kill = (async () => {
      await waitFor(() => acked >= MESSAGES / 2, { timeoutMs: 120_000, intervalMs: 10, message: 'half the telemetry to be published' });
      killedAt = acked;
      w1.kill('SIGKILL');
      await w1.exited;
    })();
    await inWindow(targets, WINDOW, async (key, i) => {
      const ack = await js.publish(`devices.${key}.telemetry`, JSON.stringify({ t: (i % 997) / 10 }), { timeout: 30_000 });
      expect(ack.duplicate).toBe(false);
      published.set(key, (published.get(key) ?? 0) + 1);
      acked++;
    });
    const publishMs = Date.now() - t0;
    await kill;
    start('b-3');

    // The capture stream is sourced into the operations stream once: each device's readings are stored as often as published.
    await waitFor(
      async () => {
        const s = await storedReadings();
        return [...s.values()].reduce((a, b) => a + b, 0) >= MESSAGES;
      },
      { timeoutMs: 120_000, intervalMs: 250, message: 'every telemetry message to reach the operations stream' },
    );
    const sourcedMs = Date.now() - t0;
    await waitForQuiescence(stack.jsm, client, { timeoutMs: 180_000 });
    const appliedMs = Date.now() - t0;
    await settled(['b-2', 'b-3']);

    const stored = await storedReadings();
    const got = await states(keys);
    const wrongStored = keys.filter((k) => (stored.get(k) ?? 0) !== (published.get(k) ?? 0));
    const wrongCount = keys.filter((k) => got.get(k)?.count !== (published.get(k) ?? 0));
    expect(wrongStored.slice(0, 10).map((k) => `${k}: published ${published.get(k) ?? 0}, stored ${stored.get(k) ?? 0}`)).toEqual([]);
    expect(wrongCount.slice(0, 10).map((k) => `${k}: published ${published.get(k) ?? 0}, count ${got.get(k)?.count}`)).toEqual([]);
    expect([...got.values()].reduce((a, b) => a + b.count, 0)).toBe(MESSAGES);
    // In order, once each: the last reading and the moving average are those of the stored readings folded in stream order.
    const replay = await replayReadings();
    const unlike = keys.filter((k) => {
      const g = got.get(k);
      const r = replay.get(k);
      return !g || !r || g.count !== r.count || g.last !== r.last || g.avg !== r.avg;
    });
    expect(unlike.slice(0, 5).map((k) => ({ key: k, state: got.get(k), replay: replay.get(k) }))).toEqual([]);
    expect(published.size).toBe(DEVICES);
    expect(killedAt).toBeGreaterThanOrEqual(MESSAGES / 2);
    expect(killedAt).toBeLessThan(MESSAGES);

    console.log(
      `bindings: ${MESSAGES} telemetry messages over ${DEVICES} devices published in ${publishMs} ms (${Math.round(MESSAGES / (publishMs / 1000))}/s, ${WINDOW} in flight); ` +
        `worker SIGKILLed at ${killedAt} acked; all in the operations stream at +${sourcedMs} ms, all applied at +${appliedMs} ms ` +
        `(${Math.round(MESSAGES / (appliedMs / 1000))} readings/s end to end)`,
    );
  });
});
