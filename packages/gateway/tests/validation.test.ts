import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/index.js';
import { bodyOf, errorOf } from './support/http.js';
import { createMemoryClient, type MemoryClient } from './support/memory-client.js';

let client: MemoryClient;
let app: FastifyInstance;

beforeEach(async () => {
  client = createMemoryClient();
  app = await buildApp({ client });
});

afterEach(async () => {
  await app.close();
});

interface BadRequest {
  name: string;
  request: InjectOptions;
  status: number;
  code: string;
}

const json = { 'content-type': 'application/json' };

const bad: BadRequest[] = [
  // Keys and types are single subject tokens that are also KV keys.
  { name: "key with '.'", request: { method: 'POST', url: '/api/counter/a.b/add' }, status: 400, code: 'INVALID_KEY' },
  { name: "key with '*'", request: { method: 'POST', url: '/api/counter/a*/add' }, status: 400, code: 'INVALID_KEY' },
  { name: "key with '>'", request: { method: 'POST', url: '/api/counter/%3E/add' }, status: 400, code: 'INVALID_KEY' },
  { name: 'key with a space', request: { method: 'POST', url: '/api/counter/a%20b/add' }, status: 400, code: 'INVALID_KEY' },
  { name: 'key of 129 characters', request: { method: 'POST', url: `/api/counter/${'k'.repeat(129)}/add` }, status: 400, code: 'INVALID_KEY' },
  { name: "generic route, key with '.'", request: { method: 'POST', url: '/api/actors/counter/a.b/add' }, status: 400, code: 'INVALID_KEY' },
  { name: "generic route, key with '*'", request: { method: 'POST', url: '/api/actors/counter/*/add' }, status: 400, code: 'INVALID_KEY' },
  { name: "type with '.'", request: { method: 'POST', url: '/api/actors/coun.ter/k/add' }, status: 400, code: 'INVALID_TYPE' },
  { name: "type '>'", request: { method: 'POST', url: '/api/actors/%3E/k/add' }, status: 400, code: 'INVALID_TYPE' },
  { name: "reserved type 'call'", request: { method: 'POST', url: '/api/actors/call/k/add' }, status: 400, code: 'INVALID_TYPE' },
  { name: 'type of 65 characters', request: { method: 'POST', url: `/api/actors/${'t'.repeat(65)}/k/add` }, status: 400, code: 'INVALID_TYPE' },
  { name: "operation with '.'", request: { method: 'POST', url: '/api/actors/counter/k/a.b' }, status: 400, code: 'INVALID_OPERATION' },
  { name: "operation '$delete' (runtime-internal)", request: { method: 'POST', url: '/api/actors/counter/k/$delete' }, status: 400, code: 'INVALID_OPERATION' },
  // Unknown actors and operations.
  { name: 'unknown actor type', request: { method: 'POST', url: '/api/actors/nope/k/add' }, status: 404, code: 'UNKNOWN_ACTOR' },
  { name: 'unknown operation', request: { method: 'POST', url: '/api/actors/counter/k/multiply' }, status: 404, code: 'UNKNOWN_OPERATION' },
  { name: 'unknown counter operation', request: { method: 'POST', url: '/api/counter/multiply' }, status: 404, code: 'UNKNOWN_OPERATION' },
  { name: 'unknown counter operation, any key', request: { method: 'POST', url: '/api/counter/k/multiply' }, status: 404, code: 'UNKNOWN_OPERATION' },
  // Invalid input, from the counter's own input parser.
  { name: 'non-integer ?value=1.5', request: { method: 'POST', url: '/api/counter/add?value=1.5' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'non-number ?value=abc', request: { method: 'POST', url: '/api/counter/add?value=abc' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'empty ?value=', request: { method: 'POST', url: '/api/counter/add?value=' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'unsafe ?value=1e300', request: { method: 'POST', url: '/api/counter/add?value=1e300' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'body {"value":1.5}', request: { method: 'POST', url: '/api/counter/add', headers: json, payload: '{"value":1.5}' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'body {"value":"3"}', request: { method: 'POST', url: '/api/counter/add', headers: json, payload: '{"value":"3"}' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'body "3" (a JSON string)', request: { method: 'POST', url: '/api/actors/counter/k/add', headers: json, payload: '"3"' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'body with an unknown field', request: { method: 'POST', url: '/api/counter/add', headers: json, payload: '{"value":1,"x":2}' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'body and ?value= both', request: { method: 'POST', url: '/api/counter/add?value=1', headers: json, payload: '2' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'reset with an input', request: { method: 'POST', url: '/api/counter/reset', headers: json, payload: '5' }, status: 400, code: 'INVALID_INPUT' },
  { name: 'call with invalid input', request: { method: 'POST', url: '/api/actors/counter/k/add?wait=true', headers: json, payload: '[1]' }, status: 400, code: 'INVALID_INPUT' },
  // Bodies that are not JSON.
  { name: 'malformed JSON body', request: { method: 'POST', url: '/api/counter/add', headers: json, payload: '{"value":' }, status: 400, code: 'INVALID_JSON' },
  { name: 'text body that is not JSON', request: { method: 'POST', url: '/api/counter/add', headers: { 'content-type': 'text/plain' }, payload: 'three' }, status: 400, code: 'INVALID_JSON' },
  { name: 'prototype poisoning', request: { method: 'POST', url: '/api/actors/counter/k/add', headers: json, payload: '{"__proto__":{"value":1}}' }, status: 400, code: 'INVALID_JSON' },
  { name: 'oversized body', request: { method: 'POST', url: '/api/actors/counter/k/add', headers: json, payload: `{"value":1,"pad":"${'x'.repeat(70 * 1024)}"}` }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'malformed Content-Type', request: { method: 'POST', url: '/api/counter/add', headers: { 'content-type': 'application/' }, payload: '3' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  // Query parameters and headers.
  { name: 'unknown query parameter', request: { method: 'POST', url: '/api/counter/add?valeu=3' }, status: 400, code: 'INVALID_REQUEST' },
  { name: '?wait=maybe', request: { method: 'POST', url: '/api/actors/counter/k/add?wait=maybe' }, status: 400, code: 'INVALID_REQUEST' },
  { name: '?timeoutMs=0', request: { method: 'POST', url: '/api/actors/counter/k/add?wait=true&timeoutMs=0' }, status: 400, code: 'INVALID_REQUEST' },
  { name: '?timeoutMs above the maximum', request: { method: 'POST', url: '/api/actors/counter/k/add?wait=true&timeoutMs=600001' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'Idempotency-Key with a space', request: { method: 'POST', url: '/api/counter/add', headers: { 'idempotency-key': 'a b' } }, status: 400, code: 'INVALID_IDEMPOTENCY_KEY' },
  { name: 'Idempotency-Key too long', request: { method: 'POST', url: '/api/counter/add', headers: { 'idempotency-key': 'k'.repeat(129) } }, status: 400, code: 'INVALID_IDEMPOTENCY_KEY' },
  { name: 'empty Idempotency-Key', request: { method: 'POST', url: '/api/counter/add', headers: { 'idempotency-key': '' } }, status: 400, code: 'INVALID_IDEMPOTENCY_KEY' },
  { name: 'DELETE with an invalid key', request: { method: 'DELETE', url: '/api/actors/counter/a.b' }, status: 400, code: 'INVALID_KEY' },
  { name: 'DELETE of an unknown type', request: { method: 'DELETE', url: '/api/actors/nope/k' }, status: 404, code: 'UNKNOWN_ACTOR' },
  { name: 'DELETE with a query parameter', request: { method: 'DELETE', url: '/api/actors/counter/k?force=1' }, status: 400, code: 'INVALID_REQUEST' },
  // Reads and lists.
  { name: 'read with an invalid key', request: { method: 'GET', url: '/api/actors/counter/a.b' }, status: 400, code: 'INVALID_KEY' },
  { name: 'read of an unknown type', request: { method: 'GET', url: '/api/actors/nope/k' }, status: 404, code: 'UNKNOWN_ACTOR' },
  { name: 'read with ?minSeq=-1', request: { method: 'GET', url: '/api/actors/counter/k?minSeq=-1' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'counter read with an invalid key', request: { method: 'GET', url: '/api/counter/a%20b' }, status: 400, code: 'INVALID_KEY' },
  { name: 'list of an unknown type', request: { method: 'GET', url: '/api/actors/nope' }, status: 404, code: 'UNKNOWN_ACTOR' },
  { name: "list with ?prefix containing '.'", request: { method: 'GET', url: '/api/actors/counter?prefix=a.b' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'list with ?limit=0', request: { method: 'GET', url: '/api/actors/counter?limit=0' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'list with ?limit=1001', request: { method: 'GET', url: '/api/actors/counter?limit=1001' }, status: 400, code: 'INVALID_REQUEST' },
  // Routes that do not exist.
  { name: 'unknown route', request: { method: 'GET', url: '/api/nothing' }, status: 404, code: 'NOT_FOUND' },
  { name: 'unknown method on a route', request: { method: 'PUT', url: '/api/counter' }, status: 404, code: 'NOT_FOUND' },
  { name: 'POST to a read route', request: { method: 'POST', url: '/api/actors/counter/k' }, status: 404, code: 'NOT_FOUND' },
];

describe('bad requests get the right 4xx, a JSON error body, and publish nothing', () => {
  it.each(bad)('$name → $status $code', async ({ request, status, code }) => {
    const res = await app.inject(request);
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(bodyOf(res))).toEqual(['error']);
    const error = errorOf(res);
    expect(Object.keys(error).sort()).toEqual(['code', 'message']);
    expect(error.code).toBe(code);
    expect(typeof error.message).toBe('string');
    expect(error.message.length).toBeGreaterThan(0);
    expect(res.body).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
    expect(client.published).toEqual([]);
  });
});

describe('error messages say what is wrong', () => {
  it('names the key rule and the offending key', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/counter/a.b/add' });
    expect(errorOf(res).message).toMatch(/key must be 1-128 characters of \[A-Za-z0-9_=-\].*"a\.b"/);
  });

  it('names an unknown query parameter', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/counter/add?valeu=3' });
    expect(errorOf(res).message).toBe('unknown query parameter "valeu"');
  });

  it("passes on the actor parser's reason", async () => {
    const res = await app.inject({ method: 'POST', url: '/api/counter/add?value=1.5' });
    expect(errorOf(res).message).toMatch(/integer/);
  });

  it('explains a union by the alternative the value is meant for: the field and its value', async () => {
    // `?value=1.5` is the input {"value": 1.5}: it said "must be an integer or {"value": <integer>}, got an object".
    const query = await app.inject({ method: 'POST', url: '/api/counter/add?value=1.5' });
    expect(errorOf(query).message).toBe('add: input.value must be integer, got 1.5');
    const body = await app.inject({ method: 'POST', url: '/api/counter/add', headers: json, payload: '{"value":"2"}' });
    expect(errorOf(body).message).toBe('add: input.value must be integer, got the string "2"');
    const bare = await app.inject({ method: 'POST', url: '/api/counter/add', headers: json, payload: '1.5' });
    expect(errorOf(bare).message).toBe('add: input must be integer, got 1.5');
    // A value of none of the alternatives' types: the union as a whole.
    const text = await app.inject({ method: 'POST', url: '/api/counter/add', headers: json, payload: '"x"' });
    expect(errorOf(text).message).toBe('add: input must be an integer or {"value": <integer>}, got the string "x"');
  });

  it('names the unknown operation', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/actors/counter/k/multiply' });
    expect(errorOf(res).message).toMatch(/multiply/);
  });
});

describe('a rejected request changes no state', () => {
  it('leaves the counter as it was', async () => {
    expect((await app.inject({ method: 'POST', url: '/api/counter/add?value=2' })).statusCode).toBe(202);
    for (const r of bad) await app.inject(r.request);
    const res = await app.inject({ method: 'GET', url: '/api/counter' });
    expect(res.json()).toEqual({ value: 2 });
    expect(client.published).toHaveLength(1);
  });
});

describe('bodies that are accepted', () => {
  it('takes an empty body with Content-Type application/json (curl -X POST)', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/counter/add', headers: json });
    expect(res.statusCode).toBe(202);
    expect(client.published[0]?.input).toBeUndefined();
  });

  it('takes no body and no Content-Type', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/counter/reset' });
    expect(res.statusCode).toBe(202);
  });

  it('takes a JSON body sent as a form (curl -d 3)', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/counter/add',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: '3',
    });
    expect(res.statusCode).toBe(202);
    expect(client.published[0]?.input).toBe(3);
  });

  it('takes a JSON text/plain body', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/counter/add', headers: { 'content-type': 'text/plain' }, payload: '{"value":4}' });
    expect(res.statusCode).toBe(202);
    expect(client.published[0]?.input).toEqual({ value: 4 });
  });

  it('takes a body right at the limit', async () => {
    const small = await buildApp({ client, bodyLimit: 100 });
    const payload = `{"value":1${' '.repeat(100 - '{"value":1}'.length)}}`;
    expect(Buffer.byteLength(payload)).toBe(100);
    expect((await small.inject({ method: 'POST', url: '/api/counter/add', headers: json, payload })).statusCode).toBe(202);
    const over = await small.inject({ method: 'POST', url: '/api/counter/add', headers: json, payload: `${payload} ` });
    expect(over.statusCode).toBe(413);
    await small.close();
  });

  it('takes a key of exactly 128 characters and every allowed character', async () => {
    const key = `aZ09_=-${'k'.repeat(121)}`;
    expect(key).toHaveLength(128);
    const res = await app.inject({ method: 'POST', url: `/api/counter/${key}/add` });
    expect(res.statusCode).toBe(202);
    expect(bodyOf(res).key).toBe(key);
  });
});
