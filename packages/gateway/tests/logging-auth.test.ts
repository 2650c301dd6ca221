import type { FastifyInstance } from 'fastify';
import { ActorError, ErrorCode } from '@jetactor/actor-runtime';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, resolveGatewayOptions } from '../src/index.js';
import { errorOf } from './support/http.js';
import { createMemoryClient, type MemoryClient } from './support/memory-client.js';

type LogLine = Record<string, unknown>;

let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function appWithLogs(opts: { authTokens?: string[]; client?: MemoryClient } = {}): Promise<{ app: FastifyInstance; lines: LogLine[]; raw: string[] }> {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const stream = {
    write: (msg: string) => {
      raw.push(msg);
      lines.push(JSON.parse(msg) as LogLine);
    },
  };
  app = await buildApp({ client: opts.client ?? createMemoryClient(), logger: { level: 'info', stream }, ...(opts.authTokens ? { authTokens: opts.authTokens } : {}) });
  return { app, lines, raw };
}

describe('request logs', () => {
  it('write one line per request with type, key, op, seq, status and duration', async () => {
    const { app, lines } = await appWithLogs();
    await app.inject({ method: 'POST', url: '/api/counter/k1/add?value=3' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'request', method: 'POST', type: 'counter', key: 'k1', op: 'add', seq: 1, status: 202 });
    expect(typeof lines[0]?.ms).toBe('number');
  });

  it('carry the request id, each field once', async () => {
    const { app, lines, raw } = await appWithLogs();
    const res = await app.inject({ method: 'POST', url: '/api/counter/k1/add?value=3' });
    expect(res.statusCode).toBe(202);
    expect(lines[0]).toMatchObject({ reqId: expect.stringMatching(/^req-/) as string, type: 'counter', key: 'k1', op: 'add' });
    for (const field of ['reqId', 'type', 'key', 'op', 'seq', 'status']) expect(raw[0]?.split(`"${field}":`).length).toBe(2);
  });

  it('name the seed route\'s fixed type and key on a failed request\'s warning too', async () => {
    const client = createMemoryClient();
    const { app, lines } = await appWithLogs({ client });
    client.failWith = new ActorError(ErrorCode.StreamFull, 'full');
    const res = await app.inject({ method: 'POST', url: '/api/counter/reset' });
    expect(res.statusCode).toBe(503);
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, msg: 'request failed', type: 'counter', key: 'counter', op: 'reset', code: 'STREAM_FULL' }),
      expect.objectContaining({ level: 30, msg: 'request', type: 'counter', key: 'counter', op: 'reset', code: 'STREAM_FULL', status: 503 }),
    ]);
    expect(lines[0]?.reqId).toBe(lines[1]?.reqId);
  });

  it('carry the seed route\'s fixed type and key', async () => {
    const { app, lines } = await appWithLogs();
    await app.inject({ method: 'POST', url: '/api/counter/reset' });
    expect(lines).toEqual([expect.objectContaining({ msg: 'request', type: 'counter', key: 'counter', op: 'reset', seq: 1, status: 202 })]);
  });

  it('log a rejected request on its one line with its code and no stack', async () => {
    const { app, lines } = await appWithLogs();
    await app.inject({ method: 'POST', url: '/api/actors/counter/k/nope' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'request', type: 'counter', key: 'k', op: 'nope', code: 'UNKNOWN_OPERATION', status: 404 });
    expect(JSON.stringify(lines[0])).not.toContain('stack');
  });

  it('redact the Authorization header', async () => {
    const { app, lines } = await appWithLogs({ authTokens: ['s3cret-token'] });
    // Log the request headers on purpose, as a debugging hook might.
    app.addHook('onResponse', (request, _reply, done) => {
      request.log.info({ headers: request.headers }, 'headers');
      done();
    });
    await app.inject({ method: 'GET', url: '/api/counter', headers: { authorization: 'Bearer s3cret-token' } });
    const text = JSON.stringify(lines);
    expect(text).not.toContain('s3cret-token');
    expect(lines.find((l) => l.msg === 'headers')).toMatchObject({ headers: { authorization: '[redacted]' } });
  });
});

describe('bearer auth (when tokens are configured)', () => {
  it('rejects /api requests without a valid token with 401 and publishes nothing', async () => {
    const client = createMemoryClient();
    app = await buildApp({ client, authTokens: ['t1', 'other-token'] });
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic dDE=' }, { authorization: 'Bearer t1x' }]) {
      const res = await app.inject({ method: 'POST', url: '/api/counter/add', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(errorOf(res).code).toBe('UNAUTHORIZED');
    }
    expect(client.published).toEqual([]);
    const ok = await app.inject({ method: 'POST', url: '/api/counter/add', headers: { authorization: 'Bearer other-token' } });
    expect(ok.statusCode).toBe(202);
  });

  it('leaves /healthz and /readyz open', async () => {
    app = await buildApp({ client: createMemoryClient(), authTokens: ['t1'] });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('is off without tokens', async () => {
    app = await buildApp({ client: createMemoryClient() });
    expect((await app.inject({ method: 'GET', url: '/api/counter' })).statusCode).toBe(200);
  });
});

describe('options', () => {
  it('fill in the defaults', () => {
    const o = resolveGatewayOptions({ client: createMemoryClient() });
    expect(o).toMatchObject({ bodyLimit: 65536, defaultTimeoutMs: 5000, maxTimeoutMs: 60000, requestTimeoutMs: 5000, authTokens: [] });
    expect(o.isReady()).toBe(true);
  });

  it('name the offending field', () => {
    const client = createMemoryClient();
    expect(() => resolveGatewayOptions({ client, bodyLimit: -1 })).toThrow(/'bodyLimit'/);
    expect(() => resolveGatewayOptions({ client, defaultTimeoutMs: 10, maxTimeoutMs: 5 })).toThrow(/'defaultTimeoutMs'/);
    expect(() => resolveGatewayOptions({ client, authTokens: [''] })).toThrow(/'authTokens'/);
    expect(() => resolveGatewayOptions({ client: 42 as never })).toThrow(/'client'/);
  });
});
