/**
 * Gateway auth: bearer tokens with scopes (read, write, admin), the start-up policy
 * (auth off only on loopback or by `GATEWAY_AUTH=off`), the per-client rate limit, and
 * the dead-letter routes' scopes. HTTP through `inject` on an in-memory client.
 */
import type { DeadLetter } from '@jetactor/actor-runtime/client';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, decideAuth, isLoopbackHost, parseAuthTokens, resolveGatewayOptions, runGateway } from '../src/index.js';
import type { RunningGateway } from '../src/index.js';
import { bodyOf, errorOf } from './support/http.js';
import { createMemoryClient, type MemoryClient } from './support/memory-client.js';

const READER = 'reader-token-0123456789';
const WRITER = 'writer-token-0123456789';
const ADMIN = 'admin-token-0123456789ab';
const ALL = 'all-scopes-token-0123456';
const TOKENS = `${READER}:read;${WRITER}:read,write;${ADMIN}:admin,read;${ALL}`;

let app: FastifyInstance | undefined;
let gateway: RunningGateway | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
  await gateway?.close();
  gateway = undefined;
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function deadLetter(dlqSeq: number, payload = '"abc"'): DeadLetter {
  return {
    dlqSeq,
    seq: 100 + dlqSeq,
    subject: `actors.counter.k${dlqSeq}.add`,
    type: 'counter',
    key: `k${dlqSeq}`,
    op: 'add',
    code: 'INVALID_INPUT',
    message: 'add takes an integer',
    payload,
    time: new Date(0).toISOString(),
  };
}

async function scopedApp(client: MemoryClient = createMemoryClient()): Promise<{ app: FastifyInstance; client: MemoryClient }> {
  app = await buildApp({ client, authTokens: parseAuthTokens(TOKENS) });
  return { app, client };
}

describe('GATEWAY_AUTH_TOKENS', () => {
  it('parses scoped entries, and a token without scopes gets them all', () => {
    expect(parseAuthTokens('tokA:read,write; tokB:read ;tokC')).toEqual([
      { token: 'tokA', scopes: ['read', 'write'] },
      { token: 'tokB', scopes: ['read'] },
      { token: 'tokC', scopes: ['read', 'write', 'admin'] },
    ]);
    expect(parseAuthTokens('tokA:admin')).toEqual([{ token: 'tokA', scopes: ['admin'] }]);
  });

  it('keeps the plain comma list (the older form): every token gets every scope', () => {
    expect(parseAuthTokens(' t1, t2 ,,')).toEqual([
      { token: 't1', scopes: ['read', 'write', 'admin'] },
      { token: 't2', scopes: ['read', 'write', 'admin'] },
    ]);
    expect(parseAuthTokens('')).toEqual([]);
    expect(parseAuthTokens(undefined)).toEqual([]);
  });

  it('refuses unknown scopes, empty scope lists, repeated tokens and spaces, without echoing the secret', () => {
    expect(() => parseAuthTokens('s3cretA:read,delete')).toThrow(/entry 1: unknown scope "delete"/);
    expect(() => parseAuthTokens('s3cretA:read;s3cretB:')).toThrow(/entry 2: no scopes/);
    expect(() => parseAuthTokens('s3cretA:read;s3cretA:write')).toThrow(/repeats an earlier token/);
    expect(() => parseAuthTokens('s3cret A:read')).toThrow(/visible ASCII/);
    for (const bad of ['s3cretA:read,delete', 's3cretA:read;s3cretA:write']) {
      try {
        parseAuthTokens(bad);
      } catch (err) {
        expect((err as Error).message).not.toContain('s3cretA');
      }
    }
  });
});

describe('start-up auth policy', () => {
  it('uses the tokens when given', () => {
    expect(decideAuth({ GATEWAY_AUTH_TOKENS: 'tokA:read' }, '0.0.0.0')).toEqual({ mode: 'tokens', tokens: [{ token: 'tokA', scopes: ['read'] }] });
  });

  it('runs without auth on loopback only, or by an explicit GATEWAY_AUTH=off', () => {
    expect(decideAuth({}, '127.0.0.1')).toEqual({ mode: 'off', reason: 'loopback' });
    expect(decideAuth({}, '::1')).toEqual({ mode: 'off', reason: 'loopback' });
    expect(() => decideAuth({}, '0.0.0.0')).toThrow(/refusing to listen on 0\.0\.0\.0 without auth.*GATEWAY_AUTH=off/);
    expect(() => decideAuth({}, '10.1.2.3')).toThrow(/refusing/);
    expect(decideAuth({ GATEWAY_AUTH: 'off' }, '0.0.0.0')).toEqual({ mode: 'off', reason: 'explicit' });
  });

  it('refuses contradictions and unknown values', () => {
    expect(() => decideAuth({ GATEWAY_AUTH: 'off', GATEWAY_AUTH_TOKENS: 'tokA' }, '127.0.0.1')).toThrow(/both set/);
    expect(() => decideAuth({ GATEWAY_AUTH: 'on' }, '127.0.0.1')).toThrow(/GATEWAY_AUTH_TOKENS is empty/);
    expect(() => decideAuth({ GATEWAY_AUTH: 'no' }, '127.0.0.1')).toThrow(/'on' or 'off'/);
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
  });

  it('runGateway refuses a non-loopback HOST without tokens, and says loudly when auth is off', async () => {
    await expect(runGateway({ env: { HOST: '0.0.0.0', PORT: '0', NATS_URL: 'nats://127.0.0.1:1' }, logger: pino({ level: 'silent' }) })).rejects.toThrow(
      /refusing to listen on 0\.0\.0\.0 without auth/,
    );

    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    gateway = await runGateway({ env: { HOST: '0.0.0.0', PORT: '0', GATEWAY_AUTH: 'off', NATS_URL: 'nats://127.0.0.1:1' }, logger });
    expect(lines.find((l) => l.auth === 'off')).toMatchObject({ level: 40, reason: 'explicit', msg: expect.stringMatching(/^AUTH IS OFF/) as string });
    await gateway.close();
    gateway = undefined;

    lines.length = 0;
    gateway = await runGateway({ env: { PORT: '0', NATS_URL: 'nats://127.0.0.1:1' }, logger });
    expect(lines.find((l) => l.auth === 'off')).toMatchObject({ level: 40, reason: 'loopback', host: '127.0.0.1' });
    await gateway.close();
    gateway = undefined;

    lines.length = 0;
    gateway = await runGateway({ env: { PORT: '0', NATS_URL: 'nats://127.0.0.1:1', GATEWAY_AUTH_TOKENS: `short:read;${ALL}` }, logger });
    const on = lines.find((l) => l.auth === 'tokens');
    expect(on).toMatchObject({ tokens: [{ id: 'token-1', scopes: ['read'] }, { id: 'token-2', scopes: ['read', 'write', 'admin'] }] });
    expect(JSON.stringify(lines)).not.toContain(ALL);
    expect(lines.find((l) => l.weak === 1)).toBeDefined();
    const res = await gateway.app.inject({ method: 'GET', url: '/api/counter' });
    expect(res.statusCode).toBe(401);
  });

  it('rejects a bad GATEWAY_RATE_LIMIT', async () => {
    await expect(runGateway({ env: { PORT: '0', GATEWAY_RATE_LIMIT: 'lots', NATS_URL: 'nats://127.0.0.1:1' }, logger: pino({ level: 'silent' }) })).rejects.toThrow(
      /GATEWAY_RATE_LIMIT must be an integer >= 0/,
    );
  });
});

describe('scopes', () => {
  const write: InjectOptions[] = [
    { method: 'POST', url: '/api/counter/add?value=1' },
    { method: 'POST', url: '/api/counter/k1/add?value=1' },
    { method: 'POST', url: '/api/actors/counter/k1/add?value=1&wait=true' },
    { method: 'POST', url: '/api/counter/reset' },
    { method: 'DELETE', url: '/api/actors/counter/k1' },
  ];
  const read: InjectOptions[] = [
    { method: 'GET', url: '/api/counter' },
    { method: 'GET', url: '/api/counter/k1' },
    { method: 'GET', url: '/api/actors/counter/k1' },
    { method: 'GET', url: '/api/actors/counter' },
    { method: 'GET', url: '/api/dlq' },
  ];

  it('401 without a token or with a wrong one, on every route; nothing is published', async () => {
    const { app, client } = await scopedApp();
    const wrong = [{}, bearer('wrong-token'), bearer(`${WRITER}x`), bearer(WRITER.slice(0, -1)), { authorization: `Basic ${WRITER}` }, { authorization: WRITER }];
    for (const req of [...write, ...read, { method: 'POST', url: '/api/dlq/1/resubmit' } as const]) {
      for (const headers of wrong) {
        const res = await app.inject({ ...req, headers });
        expect({ url: req.url, status: res.statusCode, code: errorOf(res).code }).toEqual({ url: req.url, status: 401, code: 'UNAUTHORIZED' });
        expect(res.headers['www-authenticate']).toBe('Bearer');
      }
    }
    expect(client.published).toEqual([]);
  });

  it('403 for a read-only token on every write route; nothing is published', async () => {
    const { app, client } = await scopedApp();
    for (const req of write) {
      const res = await app.inject({ ...req, headers: bearer(READER) });
      expect({ url: req.url, status: res.statusCode, code: errorOf(res).code }).toEqual({ url: req.url, status: 403, code: 'FORBIDDEN' });
      expect(res.headers['www-authenticate']).toBe('Bearer error="insufficient_scope", scope="write"');
      expect(errorOf(res).message).toMatch(/lacks the 'write' scope/);
    }
    expect(client.published).toEqual([]);
  });

  it('the right token passes: read on reads, write on writes', async () => {
    const { app, client } = await scopedApp();
    for (const req of read) expect((await app.inject({ ...req, headers: bearer(READER) })).statusCode).toBe(200);
    const statuses = [];
    for (const req of write) statuses.push((await app.inject({ ...req, headers: bearer(WRITER) })).statusCode);
    expect(statuses).toEqual([202, 202, 200, 202, 202]);
    expect(client.published.map((p) => `${p.method} ${p.key} ${p.op}`)).toEqual([
      'signal counter add',
      'signal k1 add',
      'call k1 add',
      'signal counter reset',
      'delete k1 $delete',
    ]);
    for (const req of [...read, ...write]) expect((await app.inject({ ...req, headers: bearer(ALL) })).statusCode).toBeLessThan(300);
  });

  it('scopes are independent: an admin token without write cannot signal', async () => {
    const { app } = await scopedApp();
    const res = await app.inject({ method: 'POST', url: '/api/counter/add', headers: bearer(ADMIN) });
    expect(res.statusCode).toBe(403);
  });

  it('checks the token before validating the request', async () => {
    const { app } = await scopedApp();
    const res = await app.inject({ method: 'POST', url: '/api/actors/bad.type/k/add', headers: bearer(READER) });
    expect(errorOf(res).code).toBe('FORBIDDEN');
    const anon = await app.inject({ method: 'POST', url: '/api/counter/add', payload: 'x'.repeat(100_000) });
    expect(anon.statusCode).toBe(401);
  });
});

describe('dead-letter routes', () => {
  it('list with read scope, paged by cursor', async () => {
    const client = createMemoryClient();
    client.dead.push(deadLetter(1), deadLetter(2), deadLetter(3));
    const { app } = await scopedApp(client);
    const first = await app.inject({ method: 'GET', url: '/api/dlq?limit=2', headers: bearer(READER) });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ items: [deadLetter(1), deadLetter(2)], nextCursor: 2 });
    const rest = await app.inject({ method: 'GET', url: '/api/dlq?limit=2&cursor=2', headers: bearer(READER) });
    expect(rest.json()).toEqual({ items: [deadLetter(3)], nextCursor: null });
    for (const url of ['/api/dlq?limit=0', '/api/dlq?limit=5000', '/api/dlq?cursor=-1', '/api/dlq?cursor=abc', '/api/dlq?other=1']) {
      const res = await app.inject({ method: 'GET', url, headers: bearer(READER) });
      expect({ url, status: res.statusCode, code: errorOf(res).code }).toEqual({ url, status: 400, code: 'INVALID_REQUEST' });
    }
  });

  it('resubmit needs admin; it publishes the original operation again', async () => {
    const client = createMemoryClient();
    client.dead.push(deadLetter(1, '{"value":4}'));
    const { app } = await scopedApp(client);
    for (const token of [READER, WRITER]) {
      const res = await app.inject({ method: 'POST', url: '/api/dlq/1/resubmit', headers: bearer(token) });
      expect(res.statusCode).toBe(403);
      expect(errorOf(res).message).toMatch(/'admin' scope/);
    }
    expect(client.published).toEqual([]);
    const ok = await app.inject({ method: 'POST', url: '/api/dlq/1/resubmit', headers: bearer(ADMIN) });
    expect(ok.statusCode).toBe(202);
    expect(bodyOf(ok)).toEqual({ resubmitted: 1, seq: 1 });
    expect(client.published).toMatchObject([{ method: 'resubmit', type: 'counter', key: 'k1', op: 'add', input: { value: 4 } }]);

    const missing = await app.inject({ method: 'POST', url: '/api/dlq/99/resubmit', headers: bearer(ADMIN) });
    expect(missing.statusCode).toBe(404);
    expect(errorOf(missing)).toEqual({ code: 'UNKNOWN_DEAD_LETTER', message: 'no dead letter 99' });
    for (const seq of ['0', '-1', 'abc', '1.5', '99999999999999999999']) {
      const bad = await app.inject({ method: 'POST', url: `/api/dlq/${seq}/resubmit`, headers: bearer(ADMIN) });
      expect({ seq, status: bad.statusCode }).toEqual({ seq, status: 400 });
    }
  });
});

describe('rate limit', () => {
  it('answers 429 RATE_LIMITED with Retry-After once a client used its budget; clients are counted apart', async () => {
    const client = createMemoryClient();
    app = await buildApp({ client, authTokens: parseAuthTokens(TOKENS), rateLimitPerMinute: 5 });
    for (let i = 0; i < 5; i++) expect((await app.inject({ method: 'GET', url: '/api/counter', headers: bearer(READER) })).statusCode).toBe(200);
    const limited = await app.inject({ method: 'POST', url: '/api/counter/add', headers: bearer(READER) });
    expect(limited.statusCode).toBe(429);
    expect(errorOf(limited).code).toBe('RATE_LIMITED');
    expect(errorOf(limited).message).toMatch(/rate limit of 5 requests per 60 s exceeded/);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another token from the same address has its own budget.
    expect((await app.inject({ method: 'GET', url: '/api/counter', headers: bearer(WRITER) })).statusCode).toBe(200);
    // Health checks are never limited.
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect(client.published).toEqual([]);
  });

  it('limits token guessing by address', async () => {
    app = await buildApp({ client: createMemoryClient(), authTokens: parseAuthTokens(TOKENS), rateLimitPerMinute: 3 });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await app.inject({ method: 'GET', url: '/api/counter', headers: bearer(`guess-${i}`) })).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });

  it('is off by default: one client well past the old 6000 a minute is never throttled; 0 also turns it off', async () => {
    expect(resolveGatewayOptions({ client: createMemoryClient() }).rateLimitPerMinute).toBe(0);
    expect(() => resolveGatewayOptions({ client: createMemoryClient(), rateLimitPerMinute: -1 })).toThrow(/'rateLimitPerMinute'/);
    app = await buildApp({ client: createMemoryClient(), authTokens: parseAuthTokens(TOKENS) });
    const statuses = new Map<number, number>();
    for (let i = 0; i < 7_000; i++) {
      const res = await app.inject({ method: 'GET', url: '/api/counter', headers: bearer(READER) });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 200: 7_000 });
    await app.close();
    app = await buildApp({ client: createMemoryClient(), rateLimitPerMinute: 0 });
    for (let i = 0; i < 50; i++) expect((await app.inject({ method: 'GET', url: '/api/counter' })).statusCode).toBe(200);
  });
});
