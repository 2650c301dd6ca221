/**
 * GATEWAY_PROCESSES=2: the gateway entry forks two copies that share one port, serves through
 * both, replaces a copy that dies, and leaves nothing running when its supervisor is killed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { freePort, spawnProcess, startNatsServer, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { gatewayProcesses } from '../src/processes.js';
import { spawnWorker } from './support/stack.js';

const GATEWAY_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
let server: NatsServer | undefined;
let worker: ManagedProcess | undefined;
let gateway: ManagedProcess | undefined;

afterAll(async () => {
  await gateway?.stop();
  await worker?.stop();
  await server?.stop();
});

/** The status of a request on a new connection (0 when it fails). */
function statusOf(url: string, method = 'GET'): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, method }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Pids of the live children of `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('GATEWAY_PROCESSES', () => {
  it('parses auto, whole numbers and refuses anything else', () => {
    expect(gatewayProcesses({})).toBe(1);
    expect(gatewayProcesses({ GATEWAY_PROCESSES: '3' })).toBe(3);
    expect(gatewayProcesses({ GATEWAY_PROCESSES: 'auto' })).toBeGreaterThanOrEqual(1);
    for (const bad of ['0', '-1', '1.5', 'two', '65']) expect(() => gatewayProcesses({ GATEWAY_PROCESSES: bad })).toThrow(/GATEWAY_PROCESSES/);
  });

  it('serves from two processes on one port, replaces a dead one, and ends with its supervisor', async () => {
    server = await startNatsServer();
    worker = spawnWorker('w-procs', server.url);
    const port = await freePort();
    gateway = spawnProcess(process.execPath, [GATEWAY_MAIN], { name: 'gateway', env: { NATS_URL: server.url, PORT: String(port), GATEWAY_PROCESSES: '2', LOG_LEVEL: 'warn' } });
    const primary = gateway.pid as number;
    const url = `http://127.0.0.1:${port}`;
    await waitFor(() => childrenOf(primary).length === 2, { timeoutMs: 20_000, message: 'two gateway processes' });
    // Both copies take operations: 20 signals in a row are accepted, each on a connection of
    // its own (the primary hands connections to the copies in turn; fetch would keep one alive
    // and ask one copy 20 times, while the other may still be connecting to NATS). Signals,
    // not reads: the worker creates the buckets before the stream, and a read that works while
    // the stream is not there yet let the burst below meet 503s (NOT_PROVISIONED) on a loaded machine.
    const servesAll = async () => {
      for (let i = 0; i < 20; i++) if ((await statusOf(`${url}/api/counter/warm/add?value=1`, 'POST')) !== 202) return false;
      return true;
    };
    await waitFor(servesAll, { timeoutMs: 30_000, message: 'both copies to serve the counter' });

    // Each answer other than 202 with its body: the code says which side refused.
    const answers = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const r = await fetch(`${url}/api/counter/procs/add?value=1`, { method: 'POST' });
        return r.status === 202 ? 202 : `${r.status} ${await r.text()}`;
      }),
    );
    expect(answers.filter((a) => a !== 202)).toEqual([]);
    await waitFor(async () => ((await (await fetch(`${url}/api/counter/procs`)).json()) as { value: number }).value === 200, { timeoutMs: 20_000, message: 'all 200 adds applied' });

    const [first] = childrenOf(primary);
    process.kill(first as number, 'SIGKILL');
    await waitFor(() => !alive(first as number) && childrenOf(primary).length === 2, { timeoutMs: 15_000, message: 'a new gateway process' });
    await waitFor(servesAll, { timeoutMs: 30_000, message: 'the new copy to serve the counter' });
    expect((await fetch(`${url}/api/counter/procs/add?value=1`, { method: 'POST' })).status).toBe(202);

    const copies = childrenOf(primary);
    gateway.kill('SIGKILL');
    await waitFor(() => copies.every((pid) => !alive(pid)), { timeoutMs: 15_000, message: 'the copies to end with their supervisor' });
  });
});
