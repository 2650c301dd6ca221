import { readFileSync } from 'node:fs';
import { ActorError, InvalidInputError, OperationFailedError, TimeoutError, UnknownActorError } from '@jetactor/actor-runtime';
import { JetStreamApiError } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';
import { ClosedConnectionError, TimeoutError as NatsTimeoutError } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, GatewayError, toHttpError } from '../src/index.js';

const ERRORS_DOC = new URL('../../../docs/errors.md', import.meta.url);

/** The `| \`CODE\` | status | ... |` rows of docs/errors.md (codes with an HTTP status). */
function documentedCodes(markdown: string): Map<string, number> {
  const rows = new Map<string, number>();
  for (const line of markdown.split('\n')) {
    const m = /^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) rows.set(m[1], Number(m[2]));
  }
  return rows;
}

describe('error registry', () => {
  it('has an HTTP error status and a description for every code', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z_]+$/);
      expect(info.status).toBeGreaterThanOrEqual(400);
      expect(info.status).toBeLessThan(600);
      expect(info.description.length).toBeGreaterThan(10);
    }
  });

  it('is documented, code by code with its status, in docs/errors.md', () => {
    const documented = documentedCodes(readFileSync(ERRORS_DOC, 'utf8'));
    const registered = new Map(Object.entries(ERROR_CODES).map(([code, info]) => [code, info.status]));
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(registered));
  });

  it('gives a GatewayError its registered status', () => {
    const err = new GatewayError('UNKNOWN_ACTOR', 'nope');
    expect(err.statusCode).toBe(404);
    expect(err.code).toBe('UNKNOWN_ACTOR');
    expect(new GatewayError('TIMEOUT', 'late', { status: 503 }).statusCode).toBe(503);
  });
});

describe('toHttpError', () => {
  it('maps runtime errors by class and code', () => {
    expect(toHttpError(new InvalidInputError('bad'), true)).toEqual({ status: 400, code: 'INVALID_INPUT', message: 'bad' });
    expect(toHttpError(new UnknownActorError('x'), true)).toMatchObject({ status: 404, code: 'UNKNOWN_ACTOR' });
    expect(toHttpError(new TimeoutError('late'), true)).toEqual({ status: 504, code: 'TIMEOUT', message: 'late' });
    expect(toHttpError(new ActorError('PAYLOAD_TOO_LARGE', 'big'), true)).toMatchObject({ status: 413 });
  });

  it("sends an operation's error result as 422 with the worker's code, even a 400 code", () => {
    expect(toHttpError(new OperationFailedError('INVALID_INPUT', 'bad', 7), true)).toEqual({ status: 422, code: 'INVALID_INPUT', message: 'bad' });
    expect(toHttpError(new OperationFailedError('SOMETHING_NEW', 'odd', 7), true)).toMatchObject({ status: 422, code: 'SOMETHING_NEW' });
  });

  it('hides internal runtime errors behind INTERNAL_ERROR', () => {
    expect(toHttpError(new ActorError('FENCED', 'secret detail'), true)).toEqual({
      status: 500,
      code: 'INTERNAL_ERROR',
      message: 'internal server error',
    });
    expect(toHttpError(new Error('at /src/secret.ts:12'), true)).toEqual({ status: 500, code: 'INTERNAL_ERROR', message: 'internal server error' });
    expect(toHttpError('a string', true)).toMatchObject({ status: 500 });
    expect(toHttpError(null, true)).toMatchObject({ status: 500 });
  });

  it('answers NATS trouble with 503, and anything unexpected while NATS is down too', () => {
    expect(toHttpError(new ClosedConnectionError(), true)).toMatchObject({ status: 503, code: 'NATS_UNAVAILABLE' });
    expect(toHttpError(new NatsTimeoutError(), true)).toMatchObject({ status: 504, code: 'TIMEOUT' });
    expect(toHttpError(new NatsTimeoutError(), false)).toMatchObject({ status: 503, code: 'NATS_UNAVAILABLE' });
    expect(toHttpError(new TimeoutError('late'), false)).toMatchObject({ status: 503, code: 'NATS_UNAVAILABLE' });
    expect(toHttpError(new Error('whatever'), false)).toMatchObject({ status: 503, code: 'NATS_UNAVAILABLE' });
  });

  it('answers a missing stream or bucket with 503 NOT_PROVISIONED', () => {
    expect(toHttpError(new jserrors.JetStreamNotEnabled('no responders'), true)).toMatchObject({ status: 503, code: 'NOT_PROVISIONED' });
    const notFound = new JetStreamApiError({ code: 404, err_code: 10059, description: 'stream not found' });
    expect(toHttpError(notFound, true)).toMatchObject({ status: 503, code: 'NOT_PROVISIONED' });
    const other = new JetStreamApiError({ code: 500, err_code: 10999, description: 'other' });
    expect(toHttpError(other, true)).toMatchObject({ status: 500, code: 'INTERNAL_ERROR' });
  });

  it('keeps client errors 4xx while NATS is down', () => {
    expect(toHttpError(new InvalidInputError('bad'), false)).toMatchObject({ status: 400, code: 'INVALID_INPUT' });
    expect(toHttpError(Object.assign(new Error('too big'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }), false)).toMatchObject({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    });
  });
});
