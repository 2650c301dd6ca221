/**
 * Hostile input: thousands of malformed requests against the real stack (nats-server,
 * a worker, the gateway with auth on), generated from a seeded PRNG so a failure can be
 * replayed. Each must get a 4xx with the JSON error body and a registered code — never a
 * 5xx, never a crash — and afterwards the operations stream and the state bucket must be
 * exactly as before (nothing was published, no actor changed). Also: malformed raw HTTP
 * on the socket, and malformed NATS calls on `actors.call.…`.
 */
import { createWorker, type Worker } from '@jetactor/actor-runtime/worker';
import { counter } from '@jetactor/counter-actor';
import { prng, startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { InjectOptions } from 'fastify';
import { connect as tcpConnect } from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, STATUS_HEADER } from '../src/index.js';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { registerTypes } from './support/registry.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const TOKEN = 'fuzz-token-all-scopes-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_101);

let server: NatsServer;
let workerNc: NatsConnection;
let worker: Worker;
let gateway: RunningGateway;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  server = await startNatsServer();
  workerNc = await connect({ servers: server.url });
  worker = createWorker({ nc: workerNc, actors: [counter], partitions: 4, leaseTtlMs: 2000, heartbeatMs: 250, logger: log });
  await worker.start();
  await registerTypes(workerNc, worker.id, [counter]);
  await waitFor(() => worker.settled(), { timeoutMs: 15_000, message: 'the worker to own its partitions' });
  gateway = await runGateway({
    env: { NATS_URL: server.url, PORT: '0', GATEWAY_AUTH_TOKENS: TOKEN, GATEWAY_RATE_LIMIT: '0' },
    logger: log,
  });
  await gateway.nats.firstConnect;
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await workerNc?.close();
  await nc?.close();
  await server?.stop();
});

/** What must not change: the last sequence of the operations stream and of the state bucket. */
async function storeMarks(): Promise<{ ops: number; state: number; dlq: number }> {
  const [ops, state, dlq] = await Promise.all(['ACTORS', 'KV_actors', 'ACTORS_DLQ'].map((s) => jsm.streams.info(s)));
  return { ops: ops!.state.last_seq, state: state!.state.last_seq, dlq: dlq!.state.last_seq };
}

// ---------------------------------------------------------------------------------------
// Generators. Every case is malformed on purpose; none may be a valid mutation.

type Rnd = () => number;
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
const int = (rnd: Rnd, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));

/** Pieces that make a path token invalid (percent-encoded where they would change the URL's shape). */
const BAD_PIECES = [
  '.', '*', '>', '%20', '%2E', '%2F', '%3F', '%23', '%00', '%0A', '%0D', '%C3%A9', '%F0%9F%92%A9', '%25', '%FF', '%',
  '~', '!', '@', '$', '^', '(', ')', '[', ']', '{', '}', '|', '%5C', "'", '%22', '<', ',', ';', ':', '+', '&', '%09',
] as const;
const GOOD_CHARS = 'abcXYZ019_=-';

function badToken(rnd: Rnd, max: number): string {
  const shape = rnd();
  if (shape < 0.15) return 'k'.repeat(int(rnd, max + 1, max + 400)); // too long
  let s = '';
  const n = int(rnd, 0, 12);
  for (let i = 0; i < n; i++) s += GOOD_CHARS[int(rnd, 0, GOOD_CHARS.length - 1)];
  const at = int(rnd, 0, s.length);
  const token = s.slice(0, at) + pick(rnd, BAD_PIECES) + s.slice(at);
  // A lone `.` or `..` is a dot segment: the URL parser removes it, and the path changes shape.
  return /^(\.|%2E)+$/i.test(token) ? `${token}x` : token;
}

const goodKey = (rnd: Rnd): string => `fz${int(rnd, 0, 9)}`;

/** Bodies that `add` must refuse (JSON of the wrong type or range, or not JSON at all). */
const BAD_ADD_BODIES: readonly string[] = [
  '"3"', '"abc"', 'true', 'false', '[]', '[1]', '[1,2]', '{"value":null}', '{"value":"3"}', '{"value":1.5}', '{"value":[3]}',
  '{"value":{"v":3}}', '{"value":true}', '{"value":3,"extra":1}', '{"Value":3}', '{"value":1e400}', '1e400', '-1e400',
  '9007199254740992', '-9007199254740992', '12345678901234567890', '1e21', '0.5', '-0.5', '5e-324', '1.0000001',
  '{"value":9007199254740993}', '{"__proto__":{"value":3}}', '{"constructor":{"prototype":{"value":3}}}',
  'NaN', 'Infinity', '-Infinity', '0x10', '1_000', "'3'", '{value:3}', '{"value":', '{"value":3,}', '[1,]', '01', '+1',
  '--1', '1 2', '{"value":3}{"value":4}', 'undefined', 'null null', '"\\ud800"', '{"value":3', '}{', '\u0000', 'tru',
];

/** Query strings that a signal must refuse. */
const BAD_SIGNAL_QUERIES: readonly string[] = [
  'value=abc', 'value=', 'value=1.5', 'value=0x10', 'value=9007199254740993', 'value=-9007199254740993', 'value=Infinity',
  'value=NaN', 'value=--1', 'value=%2B1', 'value=1%20', 'value=%201', 'value=%EF%BC%91', 'value=1e-7', 'value=1e400',
  'value=1&value=2', 'value[]=1', 'value=1&other=2', 'foo=1', 'wait=maybe', 'wait=2', 'wait=true&value=abc',
  'timeoutMs=0', 'timeoutMs=-1', 'timeoutMs=1e9', 'timeoutMs=abc', 'timeoutMs=99999999', 'wait=true&timeoutMs=0',
  'value=1&timeoutMs=1.5', 'minSeq=1', 'value=%00', 'value=1%00', 'wait=true&timeoutMs=1e400', 'wait=true&timeoutMs=Infinity',
];

/** Query strings that a read or list must refuse. */
const BAD_READ_QUERIES: readonly string[] = [
  'minSeq=-1', 'minSeq=abc', 'minSeq=1.5', 'minSeq=1e400', 'timeoutMs=0', 'timeoutMs=-5', 'timeoutMs=abc', 'minSeq=1&minSeq=2',
  'wait=true', 'value=1', 'foo=bar', 'minSeq=Infinity', 'minSeq=-1e400', 'minSeq=1&timeoutMs=1e400', 'minSeq=9007199254740993',
];
const BAD_LIST_QUERIES: readonly string[] = [
  'limit=0', 'limit=1001', 'limit=abc', 'limit=-1', 'limit=1.5', 'cursor=', `cursor=${'c'.repeat(1100)}`, 'prefix=a.b',
  'prefix=%2A', `prefix=${'p'.repeat(200)}`, 'prefix=%20', 'foo=1', 'limit=1&limit=2',
];

const BAD_IDEMPOTENCY_KEYS: readonly string[] = [
  '', ' ', 'has space', 'comma,inside', 'quote"inside', 'slash/inside', 'k'.repeat(129), 'k'.repeat(5000), 'tab\tinside',
  '(paren)', '<angle>', 'semi;colon', 'colon:inside', 'at@sign', 'eq=sign', 'brace{', 'back\\slash', '?', '[x]',
];

const BAD_AUTH: readonly (Record<string, string> | undefined)[] = [
  undefined, { authorization: '' }, { authorization: 'Bearer' }, { authorization: 'Bearer ' }, { authorization: `Bearer ${TOKEN}x` },
  { authorization: `Bearer ${TOKEN.slice(1)}` }, { authorization: `Basic ${TOKEN}` }, { authorization: TOKEN },
  { authorization: `Bearer ${TOKEN} extra` }, { authorization: `Bearer ${'x'.repeat(8000)}` }, { authorization: `Token ${TOKEN}` },
  { authorization: `Bearer\t${TOKEN.toUpperCase()}` },
];

const UNKNOWN_ROUTES: readonly InjectOptions[] = [
  { method: 'GET', url: '/api' }, { method: 'GET', url: '/api/' }, { method: 'POST', url: '/api/counter' },
  { method: 'PUT', url: '/api/counter/add' }, { method: 'PATCH', url: '/api/counter/k/add' }, { method: 'DELETE', url: '/api/counter/k' },
  { method: 'GET', url: '/api/counter/k/add' }, { method: 'POST', url: '/api/counter/a/b/c' }, { method: 'POST', url: '/api/actors/counter' },
  { method: 'POST', url: '/api/actors/counter/k' }, { method: 'PUT', url: '/api/actors/counter/k/add' }, { method: 'GET', url: '/API/counter' },
  { method: 'GET', url: '/api/actors' }, { method: 'POST', url: '/api/actors/counter/k/add/extra' }, { method: 'GET', url: '/api/dlq/1' },
  { method: 'GET', url: '/api/dlq/1/resubmit' }, { method: 'DELETE', url: '/api/dlq' }, { method: 'POST', url: '/api/dlq' },
  { method: 'OPTIONS', url: '/api/counter/add' }, { method: 'PATCH', url: '/api/dlq/1/resubmit' }, { method: 'GET', url: '/etc/passwd' },
  { method: 'GET', url: '/api/counter/k/../../../../etc/passwd' }, { method: 'POST', url: '/.env' }, { method: 'GET', url: `/api/${'x'.repeat(3000)}` },
  { method: 'POST', url: '/api/counter/add/' }, { method: 'TRACE', url: '/api/counter' }, { method: 'DELETE', url: '/api/actors/counter' },
];

/** One malformed request. */
function malformed(rnd: Rnd): { kind: string; req: InjectOptions } {
  const r = rnd();
  const json = { 'content-type': 'application/json' };
  if (r < 0.22) {
    // A bad type, key or op somewhere in a path.
    const route = int(rnd, 0, 7);
    const bad = (max: number) => badToken(rnd, max);
    const reqs: InjectOptions[] = [
      { method: 'POST', url: `/api/counter/${bad(128)}/add?value=1` },
      { method: 'GET', url: `/api/counter/${bad(128)}` },
      { method: 'POST', url: `/api/actors/${bad(64)}/${goodKey(rnd)}/add?value=1` },
      { method: 'POST', url: `/api/actors/counter/${bad(128)}/add?value=1` },
      { method: 'POST', url: `/api/actors/counter/${goodKey(rnd)}/${bad(64)}?value=1` },
      { method: 'GET', url: `/api/actors/${bad(64)}/${goodKey(rnd)}` },
      { method: 'DELETE', url: `/api/actors/counter/${bad(128)}` },
      { method: 'GET', url: `/api/actors/${bad(64)}` },
    ];
    return { kind: 'bad name', req: { ...reqs[route]!, headers: AUTH } };
  }
  if (r < 0.27) {
    // Well-formed names the gateway does not serve.
    const reqs: InjectOptions[] = [
      { method: 'POST', url: `/api/actors/nosuchtype/${goodKey(rnd)}/add?value=1` },
      { method: 'POST', url: `/api/counter/${goodKey(rnd)}/${pick(rnd, ['inc', 'ADD', 'Add', 'add_', 'delete', 'del', 'x'])}` },
      { method: 'POST', url: `/api/actors/call/${goodKey(rnd)}/add?value=1` },
      { method: 'GET', url: `/api/actors/${pick(rnd, ['Counter', 'counters', 'call', 'nosuchtype'])}/${goodKey(rnd)}` },
    ];
    return { kind: 'unknown actor or op', req: { ...pick(rnd, reqs), headers: AUTH } };
  }
  if (r < 0.45) {
    const path = pick(rnd, [`/api/counter/${goodKey(rnd)}/add`, '/api/counter/add', `/api/actors/counter/${goodKey(rnd)}/add`, `/api/actors/counter/${goodKey(rnd)}/add?wait=true&timeoutMs=500`]);
    return { kind: 'wrong JSON for add', req: { method: 'POST', url: path, payload: pick(rnd, BAD_ADD_BODIES), headers: { ...AUTH, ...json } } };
  }
  if (r < 0.5) {
    const op = pick(rnd, ['reset', 'get']);
    const body = pick(rnd, ['5', '"x"', '[]', '[0]', '{"value":1}', 'true', '0', '{"a":null}', '{', 'null1']);
    return { kind: 'input for a no-input op', req: { method: 'POST', url: `/api/counter/${goodKey(rnd)}/${op}`, payload: body, headers: { ...AUTH, ...json } } };
  }
  if (r < 0.6) {
    const path = pick(rnd, [`/api/counter/${goodKey(rnd)}/add`, '/api/counter/add', `/api/actors/counter/${goodKey(rnd)}/add`]);
    return { kind: 'bad query on a signal', req: { method: 'POST', url: `${path}?${pick(rnd, BAD_SIGNAL_QUERIES)}`, headers: AUTH } };
  }
  if (r < 0.66) {
    const reqs: InjectOptions[] = [
      { method: 'GET', url: `/api/counter/${goodKey(rnd)}?${pick(rnd, BAD_READ_QUERIES)}` },
      { method: 'GET', url: `/api/actors/counter/${goodKey(rnd)}?${pick(rnd, BAD_READ_QUERIES)}` },
      { method: 'GET', url: `/api/actors/counter?${pick(rnd, BAD_LIST_QUERIES)}` },
      { method: 'DELETE', url: `/api/actors/counter/${goodKey(rnd)}?${pick(rnd, ['wait=true', 'x=1', 'value=1'])}` },
      { method: 'GET', url: `/api/dlq?${pick(rnd, ['limit=0', 'limit=1001', 'cursor=-1', 'cursor=abc', 'cursor=1.5', 'x=1', 'limit=1&limit=2', 'limit=1e400', 'cursor=Infinity'])}` },
    ];
    return { kind: 'bad query on a read, list or delete', req: { ...pick(rnd, reqs), headers: AUTH } };
  }
  if (r < 0.72) {
    const size = pick(rnd, [64 * 1024 + 1, 100_000, 1_000_000, 5_000_000]);
    const body = pick(rnd, [
      () => `{"value":${'1'.repeat(size)}}`,
      () => JSON.stringify({ value: 1, pad: 'x'.repeat(size) }),
      () => `[${'1,'.repeat(size / 2)}1]`,
      () => ' '.repeat(size) + '1',
    ])();
    return { kind: 'huge body', req: { method: 'POST', url: `/api/counter/${goodKey(rnd)}/add`, payload: body, headers: { ...AUTH, ...json } } };
  }
  if (r < 0.76) {
    const depth = pick(rnd, [1_000, 10_000, 30_000, 100_000]);
    const body = rnd() < 0.5 ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"value":'.repeat(depth)}1${'}'.repeat(depth)}`;
    return { kind: 'deep body', req: { method: 'POST', url: `/api/counter/${goodKey(rnd)}/add`, payload: body, headers: { ...AUTH, ...json } } };
  }
  if (r < 0.84) {
    const route = pick(rnd, [`/api/counter/${goodKey(rnd)}/add?value=1`, `/api/actors/counter/${goodKey(rnd)}`]);
    const method = route.includes('?') ? 'POST' : 'DELETE';
    return { kind: 'bad Idempotency-Key', req: { method, url: route, headers: { ...AUTH, 'idempotency-key': pick(rnd, BAD_IDEMPOTENCY_KEYS) } } };
  }
  if (r < 0.92) {
    const req = pick(rnd, [
      { method: 'POST', url: `/api/counter/${goodKey(rnd)}/add?value=1` },
      { method: 'GET', url: `/api/counter/${goodKey(rnd)}` },
      { method: 'DELETE', url: `/api/actors/counter/${goodKey(rnd)}` },
      { method: 'POST', url: '/api/dlq/1/resubmit' },
    ] as const);
    const auth = pick(rnd, BAD_AUTH);
    return { kind: 'bad Authorization', req: { ...req, ...(auth ? { headers: auth } : {}) } };
  }
  if (r < 0.96) {
    return { kind: 'unknown route or method', req: { ...pick(rnd, UNKNOWN_ROUTES), headers: AUTH } };
  }
  // Dead letters that do not exist, and ids that are not ids.
  const seq = pick(rnd, ['0', '-1', 'abc', '1.5', '1e3', '1e400', 'Infinity', '99999999999999999999', String(int(rnd, 1, 1_000_000)), '%20', '']);
  return { kind: 'bad or unknown dead letter', req: { method: 'POST', url: `/api/dlq/${seq}/resubmit`, headers: AUTH } };
}

const CASES = 3_000;

describe('hostile input', () => {
  it(`${CASES} malformed HTTP requests: only 4xx with a registered error code, nothing published, no state changed`, async () => {
    // Some state to protect.
    for (const k of ['fz0', 'fz1', 'fz2']) {
      const res = await gateway.app.inject({ method: 'POST', url: `/api/counter/${k}/add?value=7&wait=true`, headers: AUTH });
      expect(res.statusCode).toBe(200);
    }
    const before = await storeMarks();
    const rnd = prng(SEED);
    const byStatus = new Map<number, number>();
    const byKind = new Map<string, number>();
    const byCode = new Map<string, number>();
    const failures: string[] = [];
    for (let i = 0; i < CASES; i++) {
      const { kind, req } = malformed(rnd);
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      const res = await gateway.app.inject(req);
      byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1);
      let code: string | undefined;
      try {
        code = res.json<{ error?: { code?: unknown; message?: unknown } }>().error?.code as string | undefined;
      } catch {
        code = undefined;
      }
      byCode.set(code ?? 'NO_JSON', (byCode.get(code ?? 'NO_JSON') ?? 0) + 1);
      const ok = res.statusCode >= 400 && res.statusCode < 500 && code !== undefined && Object.hasOwn(ERROR_CODES, code) && !res.body.includes('    at ');
      if (!ok && failures.length < 20) {
        failures.push(`#${i} ${kind}: ${req.method} ${(typeof req.url === 'string' ? req.url : JSON.stringify(req.url)).slice(0, 120)} → ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(await storeMarks()).toEqual(before);
    for (const k of ['fz0', 'fz1', 'fz2']) {
      expect((await gateway.app.inject({ method: 'GET', url: `/api/counter/${k}`, headers: AUTH })).json()).toEqual({ value: 7 });
    }
    // Still serving.
    const after = await gateway.app.inject({ method: 'POST', url: '/api/counter/fz9/add?value=2&wait=true', headers: AUTH });
    expect(after.statusCode).toBe(200);
    expect(after.json()).toMatchObject({ result: 2 });
    console.log(
      `[fuzz] ${CASES} malformed requests (seed ${SEED}): statuses ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}, ` +
        `kinds ${JSON.stringify(Object.fromEntries(byKind))}, codes ${JSON.stringify(Object.fromEntries(byCode))}`,
    );
  }, 120_000);

  it('malformed raw HTTP on the socket gets a 4xx status line, and the gateway keeps serving', async () => {
    const { port } = new URL(gateway.url);
    const raw: readonly string[] = [
      'GARBAGE\r\n\r\n',
      'GET\r\n\r\n',
      'GET /api/counter HTTP/9.9\r\nHost: x\r\n\r\n',
      'GET /api/counter HTTP/1.1\r\nHost: x\r\nNo-Colon-Here\r\n\r\n',
      'GET /api/counter HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n',
      'GET /api/counter HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n',
      `GET /api/counter HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      'POST /api/counter/add HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'POST /api/counter/add HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n12',
      'POST /api/counter/add HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /api/counter/add HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n',
      'POST /api/counter/add HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n',
      'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
      `POST /api/counter/add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"value":`,
      `POST /api/counter/add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: \r\nContent-Length: 5\r\n\r\n"abc"`,
      `POST /api/counter/add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"v":[1]}`,
    ];
    const before = await storeMarks();
    const statuses: number[] = [];
    for (const text of raw) statuses.push(await rawStatus(Number(port), text));
    // 0: the server closed the connection without an answer (a request that never ended), still no crash.
    for (const [i, s] of statuses.entries()) expect({ i, ok: s === 0 || (s >= 400 && s < 500) }).toEqual({ i, ok: true });
    expect(statuses.filter((s) => s >= 400).length).toBeGreaterThanOrEqual(raw.length - 2);
    expect(await storeMarks()).toEqual(before);
    const res = await fetch(`${gateway.url}/api/counter/fz8`, { headers: AUTH });
    expect(res.status).toBe(200);
    console.log(`[fuzz] ${raw.length} raw malformed HTTP requests: statuses ${JSON.stringify(statuses)}`);
  });

  it('malformed NATS calls on actors.call.… get error replies with a 4xx status, and change nothing', async () => {
    const before = await storeMarks();
    const rnd = prng(SEED + 1);
    const enc = new TextEncoder();
    const statuses = new Map<string, number>();
    const subjects = (): string => {
      const r = rnd();
      if (r < 0.3) return `actors.call.counter.${goodKey(rnd)}.${pick(rnd, ['inc', 'ADD', 'nope'])}`;
      if (r < 0.5) return `actors.call.${pick(rnd, ['nosuchtype', 'Counter', 'a%b', 'x'.repeat(100)])}.${goodKey(rnd)}.add`;
      if (r < 0.7) return `actors.call.counter.${pick(rnd, ['a%b', 'k'.repeat(200), 'é', 'a~b', '$x'])}.add`;
      return `actors.call.counter.${goodKey(rnd)}.add`;
    };
    const N = 300;
    for (let i = 0; i < N; i++) {
      const subject = subjects();
      const body = subject.endsWith('.add') && !subject.includes('%') ? pick(rnd, BAD_ADD_BODIES) : pick(rnd, ['', '1', '{}', 'x']);
      const h = natsHeaders();
      if (rnd() < 0.2) h.set('Timeout-Ms', pick(rnd, ['abc', '-1', '0', '1e9']));
      const reply = await nc.request(subject, enc.encode(body), { timeout: 5_000, headers: h });
      const status = reply.headers?.get(STATUS_HEADER) ?? 'none';
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      expect({ subject: subject.slice(0, 80), body: body.slice(0, 40), status: Number(status) >= 400 && Number(status) < 500 }).toEqual({
        subject: subject.slice(0, 80),
        body: body.slice(0, 40),
        status: true,
      });
    }
    expect(await storeMarks()).toEqual(before);
    console.log(`[fuzz] ${N} malformed NATS calls: statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  });
});

describe('slow and too many clients', () => {
  let limited: RunningGateway | undefined;
  afterEach(async () => {
    await limited?.close();
    limited = undefined;
  });

  /** A raw connection: what it received, and when it closed (ms after it opened). */
  interface RawConnection {
    readonly received: () => string;
    readonly closed: Promise<number>;
    write(text: string): void;
    destroy(): void;
  }

  async function rawConnection(port: number): Promise<RawConnection> {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    const opened = performance.now();
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - opened)));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return { received: () => data, closed, write: (text) => void socket.write(text, 'latin1'), destroy: () => socket.destroy() };
  }

  /** When each connection closed; fails if one is still open after `ms`. */
  function allClosed(conns: readonly RawConnection[], ms: number): Promise<number[]> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`connections still open after ${ms} ms`)), ms)));
    return Promise.race([Promise.all(conns.map((c) => c.closed)), late]).finally(() => clearTimeout(timer));
  }

  it('a body or headers trickled past the deadlines are cut off with 408 REQUEST_TIMEOUT, with or without a token', async () => {
    limited = await runGateway({
      env: { NATS_URL: server.url, PORT: '0', GATEWAY_AUTH_TOKENS: TOKEN, GATEWAY_HEADERS_TIMEOUT_MS: '300', GATEWAY_RECEIVE_TIMEOUT_MS: '600' },
      logger: log,
    });
    const port = Number(new URL(limited.url).port);
    const before = await storeMarks();
    const head = (auth: boolean): string =>
      `POST /api/counter/trickle/add HTTP/1.1\r\nHost: x\r\n${auth ? `Authorization: Bearer ${TOKEN}\r\n` : ''}Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n`;
    // Writers with a token and clients without one send a byte of a 60,000-byte body every
    // 50 ms; others trickle their headers; one sends nothing at all.
    const conns = await Promise.all(Array.from({ length: 13 }, () => rawConnection(port)));
    const bodies = conns.slice(0, 6);
    const anonymous = conns.slice(6, 10);
    const headers = conns.slice(10, 12);
    for (const c of bodies) c.write(`${head(true)}[`);
    for (const c of anonymous) c.write(`${head(false)}[`);
    for (const c of headers) c.write('POST /api/counter/trickle/add HTTP/1.1\r\n');
    const trickle = setInterval(() => {
      for (const c of [...bodies, ...anonymous]) c.write('1');
      for (const c of headers) c.write('X');
    }, 50);
    try {
      const closedAfter = await allClosed(conns, 5_000);
      // Headers deadline 300 ms, receive deadline 600 ms, checked every 75 ms (a quarter of
      // the headers deadline); measured here 381 and 688 ms.
      const within = (ms: number, lo: number): boolean => ms >= lo && ms < lo + 1_000;
      expect(closedAfter.map((ms, i) => within(ms, i < 10 ? 550 : 250))).toEqual(closedAfter.map(() => true));
      for (const c of bodies) {
        expect(c.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
        expect(JSON.parse(c.received().split('\r\n\r\n')[1] ?? '')).toEqual({
          error: { code: 'REQUEST_TIMEOUT', message: 'the request was not received in time; the connection is closed' },
        });
      }
      // Without a token: 401 at once (before the body), then cut off like the others.
      for (const c of anonymous) expect(c.received()).toMatch(/^HTTP\/1\.1 401 /);
      for (const c of [...headers, conns[12]!]) expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(trickle);
      for (const c of conns) c.destroy();
    }
    expect(await storeMarks()).toEqual(before);
    // A prompt client is served as ever.
    expect((await fetch(`${limited.url}/api/counter/fz8`, { headers: AUTH })).status).toBe(200);
  });

  it('connections over GATEWAY_MAX_CONNECTIONS are closed on arrival and counted; the gateway serves again once some close', async () => {
    limited = await runGateway({ env: { NATS_URL: server.url, PORT: '0', GATEWAY_AUTH_TOKENS: TOKEN, GATEWAY_MAX_CONNECTIONS: '3' }, logger: log });
    const port = Number(new URL(limited.url).port);
    const app = limited.app;
    const open = (): Promise<number> => new Promise((resolve, reject) => app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    const held = await Promise.all(Array.from({ length: 3 }, () => rawConnection(port)));
    await expect.poll(open).toBe(3);
    const over = await rawConnection(port);
    over.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await allClosed([over], 5_000);
    expect(over.received()).toBe('');
    held[0]?.destroy();
    await expect.poll(open).toBe(2);
    const metrics = await (await fetch(`${limited.url}/metrics`)).text();
    expect(metrics).toMatch(/^jetactor_gateway_connections_refused_total 1$/m);
    for (const c of held) c.destroy();
  });

  it('refuses malformed deadline and cap variables at start', async () => {
    const start = (env: Record<string, string>) => runGateway({ env: { NATS_URL: server.url, PORT: '0', ...env }, logger: log });
    await expect(start({ GATEWAY_RECEIVE_TIMEOUT_MS: '0' })).rejects.toThrow(/GATEWAY_RECEIVE_TIMEOUT_MS must be an integer >= 1/);
    await expect(start({ GATEWAY_MAX_CONNECTIONS: '-1' })).rejects.toThrow(/GATEWAY_MAX_CONNECTIONS must be an integer >= 0/);
    await expect(start({ GATEWAY_HEADERS_TIMEOUT_MS: '1e3' })).rejects.toThrow(/GATEWAY_HEADERS_TIMEOUT_MS must be an integer/);
    await expect(start({ GATEWAY_HEADERS_TIMEOUT_MS: '5000', GATEWAY_RECEIVE_TIMEOUT_MS: '1000' })).rejects.toThrow(
      /'headersTimeoutMs' \(5000\) must not exceed 'receiveTimeoutMs' \(1000\)/,
    );
    await expect(start({ GATEWAY_IDLE_TIMEOUT_MS: '30000' })).rejects.toThrow(/'idleTimeoutMs' \(30000\) must exceed 61000 ms/);
  });
});

/** Sends raw bytes and returns the response's status code, or 0 if the connection closed without one. */
function rawStatus(port: number, text: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    let data = '';
    const done = (status: number) => {
      socket.destroy();
      resolve(status);
    };
    socket.setTimeout(1_000, () => done(Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (m) done(Number(m[1]));
    });
    socket.on('error', () => done(Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.on('close', () => done(Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.write(text, 'latin1');
  });
}
