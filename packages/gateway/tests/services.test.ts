/**
 * Two services on one NATS, as real processes: two workers hosting the counter (and the other
 * default types but the tally) and two hosting only the tally (`JETACTOR_ACTORS`), one gateway.
 * Load on both (HTTP adds to counters, plain-NATS JetStream adds to tallies); one worker of each
 * service SIGKILLed mid-load and started again. Every acknowledged add is applied exactly once,
 * nothing is dead-lettered, and each service's partitions are owned by its own workers only.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createActorClient, type ActorClient } from '@jetactor/actor-runtime';
import { spawnWorker, startNatsServer, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { waitForTypes } from './support/registry.js';
import { startAddLoad, startedPartitions } from './support/stack.js';

const DEFAULT_TYPES = 'counter,account,cart,order,device';
const COUNTER_KEYS = Array.from({ length: 12 }, (_, i) => `svc-c${i}`);
const TALLY_KEYS = Array.from({ length: 12 }, (_, i) => `svc-t${i}`);

let server: NatsServer;
let nc: NatsConnection;
let client: ActorClient;
let gateway: RunningGateway;
const procs = new Map<string, ManagedProcess>();

function start(name: string, types: string): ManagedProcess {
  const p = spawnWorker({ id: name, natsUrl: server.url, partitions: 8, env: { JETACTOR_ACTORS: types } });
  procs.set(name, p);
  return p;
}

beforeAll(async () => {
  server = await startNatsServer();
  start('svc-a1', DEFAULT_TYPES);
  start('svc-b1', 'tally');
  nc = await connect({ servers: server.url });
  client = createActorClient(nc, { timeoutMs: 10_000 });
  gateway = await runGateway({ env: { NATS_URL: server.url, PORT: '0', GATEWAY_RATE_LIMIT: '0' }, logger: pino({ level: 'silent' }) });
  await gateway.nats.firstConnect;
  await waitForTypes(gateway.app, ['counter', 'tally']);
  start('svc-a2', DEFAULT_TYPES);
  start('svc-b2', 'tally');
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  for (const p of procs.values()) await p.stop().catch(() => undefined);
  client?.close();
  await nc?.close();
  await server?.stop();
});

/** Adds to tallies over plain NATS (JetStream publishes), each retried with its own msg id until acknowledged. */
function startTallyLoad(): { acked: Map<string, number>; stop: () => Promise<void> } {
  const js = jetstream(nc);
  const acked = new Map(TALLY_KEYS.map((k) => [k, 0]));
  let stopping = false;
  const loop = async (id: number): Promise<void> => {
    for (let n = 0; !stopping; n++) {
      const key = TALLY_KEYS[(id * 31 + n) % TALLY_KEYS.length] as string;
      for (;;) {
        try {
          const ack = await js.publish(`actors.tally.${key}.add`, JSON.stringify({ label: 'x' }), { msgID: `tally-load-${id}-${n}`, timeout: 5000 });
          if (!ack.duplicate) acked.set(key, (acked.get(key) ?? 0) + 1);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  };
  const loops = Array.from({ length: 4 }, (_, i) => loop(i));
  return {
    acked,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

describe('two services on one NATS, under load, with a worker of each SIGKILLed', () => {
  it('applies every acknowledged add once, dead-letters nothing, and balances each service over its own workers', async () => {
    // Each service's 8 partitions split between its two workers.
    await waitFor(
      async () => {
        const s = await client.status();
        return s.services.length === 2 && s.services.every((x) => x.members.length === 2 && x.partitions.every((p) => p.owner !== null && x.members.includes(p.owner)));
      },
      { timeoutMs: 30_000, message: 'both services balanced over their own workers' },
    );
    const counters = startAddLoad({ inject: (o) => gateway.app.inject(o), keys: COUNTER_KEYS, concurrency: 4 });
    const tallies = startTallyLoad();
    await waitFor(() => counters.report.total() >= 150 && total(tallies.acked) >= 150, { timeoutMs: 30_000, message: 'load before the kills' });

    const a1 = procs.get('svc-a1') as ManagedProcess;
    const b1 = procs.get('svc-b1') as ManagedProcess;
    a1.kill('SIGKILL');
    b1.kill('SIGKILL');
    const atKill = { c: counters.report.total(), t: total(tallies.acked) };
    // The survivors take their own service's partitions over (after the 2 s lease TTL).
    await waitFor(() => counters.report.total() >= atKill.c + 150 && total(tallies.acked) >= atKill.t + 150, { timeoutMs: 30_000, message: 'load during the fault' });
    await Promise.all([a1.stop().catch(() => undefined), b1.stop().catch(() => undefined)]);
    const a1b = start('svc-a1', DEFAULT_TYPES);
    const b1b = start('svc-b1', 'tally');
    await waitFor(() => startedPartitions(a1b).length > 0 && startedPartitions(b1b).length > 0, { timeoutMs: 30_000, message: 'the restarted workers to take partitions' });
    const atRestart = { c: counters.report.total(), t: total(tallies.acked) };
    await waitFor(() => counters.report.total() >= atRestart.c + 150 && total(tallies.acked) >= atRestart.t + 150, { timeoutMs: 30_000, message: 'load after the restart' });
    const report = await counters.stop();
    await tallies.stop();
    expect(report.unresolved).toBe(0);
    expect(counters.report.codes.size).toBe(0);

    let off: Record<string, { acked: number | undefined; state: number }> = {};
    try {
      await waitFor(
        async () => {
          off = {};
          for (const k of COUNTER_KEYS) {
            // A key the load never reached has no record (the client knows no initial state).
            const state = ((await client.read('counter', k)).state as number | null) ?? 0;
            if (state !== (report.acked.get(k) ?? 0)) off[k] = { acked: report.acked.get(k), state };
          }
          for (const k of TALLY_KEYS) {
            const state = ((await client.read('tally', k)).state as { counts: Record<string, number> } | null)?.counts.x ?? 0;
            if (state !== (tallies.acked.get(k) ?? 0)) off[k] = { acked: tallies.acked.get(k), state };
          }
          return Object.keys(off).length === 0;
        },
        { timeoutMs: 45_000, intervalMs: 250, message: 'every key at its acknowledged count' },
      );
    } catch (err) {
      throw new Error(`states differ from acknowledged adds: ${JSON.stringify(off)}; dead letters ${JSON.stringify((await client.deadLetters()).items.slice(0, 3))}`, { cause: err });
    }
    expect((await client.deadLetters()).items).toEqual([]);
    const status = await client.status();
    for (const svc of status.services) {
      expect(svc.members).toHaveLength(2);
      for (const p of svc.partitions) expect(svc.members).toContain(p.owner);
    }
    const byTypes = Object.fromEntries(status.services.map((s) => [Object.keys(s.types).sort().join(','), s.members.sort()]));
    expect(byTypes).toEqual({ 'account,cart,counter,device,order': ['svc-a1', 'svc-a2'], tally: ['svc-b1', 'svc-b2'] });
    // The stream holds no operation of either type that a worker did not apply.
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info('ACTORS')).state.messages).toBeGreaterThan(0);
    console.log(`[services] counter adds ${report.total()} (HTTP), tally adds ${total(tallies.acked)} (NATS); kill at ${JSON.stringify(atKill)}, restart at ${JSON.stringify(atRestart)}`);
  }, 180_000);
});
