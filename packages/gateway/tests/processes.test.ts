/**
 * GATEWAY_PROCESSES=2: the gateway entry forks two copies that share one port, serves through
 * both, replaces a copy that dies, leaves nothing running when its supervisor is killed, and
 * caps the connections of all copies together at GATEWAY_MAX_CONNECTIONS.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort, spawnProcess, spawnWorker, startNatsServer, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { connectionShares, gatewayProcesses } from '../src/processes.js';

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

/**
 * A new connection asking `GET /healthz` and kept open: `answered` once a 200 came back, false
 * when the gateway closed it unanswered (over its cap); throws if neither happens within 5 s.
 */
function heldConnection(port: number): Promise<{ answered: boolean; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`a connection neither answered nor closed in 5 s (received '${data}')`));
    }, 5000);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (!data.startsWith('HTTP/1.1 200 ')) return;
      clearTimeout(timer);
      resolve({ answered: true, socket });
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answered: false, socket });
    });
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  });
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

  it('splits GATEWAY_MAX_CONNECTIONS across the processes', () => {
    expect(connectionShares({ GATEWAY_MAX_CONNECTIONS: '10' }, 3)).toEqual([4, 3, 3]);
    expect(connectionShares({}, 2)).toEqual([5000, 5000]);
    expect(connectionShares({ GATEWAY_MAX_CONNECTIONS: '0' }, 4)).toEqual([]);
    expect(() => connectionShares({ GATEWAY_MAX_CONNECTIONS: '1' }, 2)).toThrow(/GATEWAY_MAX_CONNECTIONS \(1\) is split across the 2 GATEWAY_PROCESSES: give at least 2, or 0 for no cap/);
    expect(() => connectionShares({ GATEWAY_MAX_CONNECTIONS: '1e3' }, 2)).toThrow(/GATEWAY_MAX_CONNECTIONS must be an integer >= 0/);
  });

  it('caps the connections of all processes together at GATEWAY_MAX_CONNECTIONS, and closes those over it', async () => {
    server ??= await startNatsServer();
    const port = await freePort();
    const capped = spawnProcess(process.execPath, [GATEWAY_MAIN], {
      name: 'gateway-capped',
      env: { NATS_URL: server.url, PORT: String(port), GATEWAY_PROCESSES: '2', GATEWAY_MAX_CONNECTIONS: '3', LOG_LEVEL: 'warn' },
    });
    const held: Socket[] = [];
    try {
      await waitFor(() => childrenOf(capped.pid as number).length === 2, { timeoutMs: 20_000, message: 'two gateway processes' });
      await waitFor(async () => (await statusOf(`http://127.0.0.1:${port}/healthz`)) === 200, { timeoutMs: 20_000, message: 'the gateway to listen' });
      // Three connections held open (shares 2 and 1; one the copy in turn cannot take is closed, and tried again).
      await waitFor(
        async () => {
          const c = await heldConnection(port);
          if (c.answered) held.push(c.socket);
          return held.length === 3;
        },
        { timeoutMs: 10_000, message: 'three connections held' },
      );
      // Each copy holds its share: every new connection is closed unanswered. Before: each copy
      // took 3 (6 in all), and over that the primary handed a connection from copy to copy
      // without end, never answered nor closed.
      const over = await Promise.all(Array.from({ length: 4 }, () => heldConnection(port)));
      expect(over.map((c) => c.answered)).toEqual([false, false, false, false]);
      for (const s of held.splice(0)) s.destroy();
      await waitFor(async () => (await statusOf(`http://127.0.0.1:${port}/healthz`)) === 200, { timeoutMs: 5000, message: 'serving again' });
    } finally {
      for (const s of held) s.destroy();
      await capped.stop();
    }
  });

  it('serves from two processes on one port, replaces a dead one, and ends with its supervisor', async () => {
    server = await startNatsServer();
    worker = spawnWorker({ id: 'w-procs', natsUrl: server.url, partitions: 8 });
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
