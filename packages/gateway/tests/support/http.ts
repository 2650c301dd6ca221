import type { LightMyRequestResponse } from 'fastify';

/** The `error` of a JSON error response. */
export function errorOf(res: LightMyRequestResponse): { code: string; message: string } {
  return res.json<{ error: { code: string; message: string } }>().error;
}

/** A JSON response body as a loose record. */
export function bodyOf(res: LightMyRequestResponse): Record<string, unknown> {
  return res.json<Record<string, unknown>>();
}
