// What a worker logs about the partitions it takes and hands over: one info line per change
// (`ownership changed`, listing the partitions), each partition's own line at debug, so that a
// worker starting with 32 partitions says so in one line, not 32.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorker, type Worker } from '../src/internal.js';
import { testCounter } from './support/test-counter.js';

const PARTITIONS = 8;
const ALL = Array.from({ length: PARTITIONS }, (_, p) => p);

interface Line {
  level: number;
  msg: string;
  acquired?: number[];
  released?: number[];
  reason?: string;
  owned?: number;
  partitions?: number;
  partition?: number;
}

let server: NatsServer;
let nc: NatsConnection;
let worker: Worker;
const lines: Line[] = [];
const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as Line) });

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  worker = createWorker({ nc, actors: [testCounter], partitions: PARTITIONS, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

const info = () => lines.filter((l) => l.level >= 30);
const changes = () => lines.filter((l) => l.msg === 'ownership changed');

describe('ownership log lines', () => {
  it('taking every partition: one info line per change lists them, each partition is at debug', async () => {
    await waitFor(() => changes().flatMap((l) => l.acquired ?? []).length === PARTITIONS, { timeoutMs: 15_000, message: 'every partition to be logged taken' });
    expect(changes().flatMap((l) => l.acquired ?? []).sort((a, b) => a - b)).toEqual(ALL);
    expect(changes().every((l) => l.level === 30)).toBe(true);
    expect(changes().at(-1)).toMatchObject({ owned: PARTITIONS, partitions: PARTITIONS });
    const perPartition = lines.filter((l) => l.msg === 'partition acquired');
    expect(perPartition.map((l) => l.partition).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(ALL);
    expect(perPartition.every((l) => l.level === 20)).toBe(true);
    // Start-up at info: 'worker starting' and the ownership lines, nothing per partition.
    expect(info().filter((l) => l.partition !== undefined)).toEqual([]);
    expect(info().length).toBeLessThanOrEqual(1 + changes().length);
  });

  it('stopping: the hand-over of every partition in one info line, before "worker stopped"', async () => {
    const from = lines.length;
    await worker.stop();
    const after = lines.slice(from).filter((l) => l.level >= 30);
    const handOver = after.filter((l) => l.msg === 'ownership changed');
    expect(handOver.flatMap((l) => l.released ?? []).sort((a, b) => a - b)).toEqual(ALL);
    expect(handOver.every((l) => l.reason === 'shutdown')).toBe(true);
    expect(after.map((l) => l.msg)).toEqual(['worker stopping: handing over partitions', ...handOver.map(() => 'ownership changed'), 'worker stopped']);
    expect(after.filter((l) => l.partition !== undefined)).toEqual([]);
  });
});
