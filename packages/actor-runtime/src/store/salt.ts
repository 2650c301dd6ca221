/** The deployment's shared salt (control key `salt`) and the msg-id MACs made with it. */
import type { KV } from '@nats-io/kv';
import { createHmac, randomBytes } from 'node:crypto';
import { SALT_KEY } from '../protocol/index.js';

/**
 * The deployment's shared salt: created once (CAS create), read by everyone after. Secret from
 * whoever cannot read the control bucket (a publisher allowed only operation subjects): the
 * runtime's `Nats-Msg-Id`s are derived from it so that no such publisher can forge one.
 */
export async function sharedSalt(control: KV): Promise<string> {
  const stored = async (): Promise<string | null> => {
    const entry = await control.get(SALT_KEY);
    let salt: unknown;
    try {
      salt = entry && entry.operation === 'PUT' ? (entry.json<{ salt?: unknown }>().salt ?? null) : null;
    } catch {
      salt = null;
    }
    return typeof salt === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(salt) ? salt : null;
  };
  // Read first: it is there but once per deployment, and a client (the gateway) may not write the bucket.
  const have = await stored();
  if (have !== null) return have;
  const fresh = randomBytes(9).toString('base64url');
  try {
    await control.create(SALT_KEY, new TextEncoder().encode(JSON.stringify({ salt: fresh })));
    return fresh;
  } catch (err) {
    // Created by another process in between.
    const other = await stored();
    if (other !== null) return other;
    throw err;
  }
}

/**
 * The part of a runtime `Nats-Msg-Id` that only holders of the salt can make: the HMAC-SHA256,
 * keyed with the salt, of `parts` (which hold no NUL, so they cannot run into each other), as
 * the first `chars` characters of its base64url. The same parts give the same value, and the
 * salt cannot be read back from it.
 */
export function saltedMac(salt: string, parts: readonly string[], chars = 32): string {
  return createHmac('sha256', salt).update(parts.join('\0')).digest('base64url').slice(0, chars);
}
