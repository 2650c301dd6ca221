/**
 * The one module that reaches into nats.js past its public API (besides protocol/nats-errors.ts,
 * which imports `jserrors` from its internal entry). Each function says what it
 * relies on; tests/nats-internals.test.ts pins that behaviour against a real server, so an
 * upgrade of nats.js that changes it fails there and nowhere else.
 */
import type { KV } from '@nats-io/kv';
import type { MsgHdrs } from '@nats-io/nats-core';

/**
 * The subject a KV bucket stores `key` under, for writing (`$KV.<bucket>.<key>` unless the
 * bucket is mirrored or uses an API prefix). Relies on the KV implementation's
 * `subjectForKey(key, edit)` (nats.js kv 3.x), falling back to the default layout.
 */
export function kvWriteSubject(kv: KV, key: string): string {
  const bucket = kv as unknown as { subjectForKey?: (k: string, edit?: boolean) => string; bucket?: string };
  if (typeof bucket.subjectForKey === 'function') return bucket.subjectForKey(key, true);
  return `$KV.${String(bucket.bucket)}.${key}`;
}

/**
 * The stream and name of the ordered consumer behind a KV watch, read when asked (an ordered
 * consumer renames itself when it resets). Relies on the watch iterator's `_data` holding the
 * consumer info (nats.js kv 3.x); undefined when it does not.
 */
export function watchConsumerOf(it: unknown): { stream: string; name: string } | undefined {
  const data = (it as { _data?: { stream?: unknown; name?: unknown } } | null)?._data;
  return typeof data?.stream === 'string' && typeof data.name === 'string' ? { stream: data.stream, name: data.name } : undefined;
}

/**
 * Headers for one publish, made as the bytes nats.js sends. A `headers()` object keeps a map,
 * canonicalizes every name and encodes the block again at each publish (with TextEncoder):
 * ~3% of a worker's CPU when it writes a record per operation. Relies on the connection's
 * `publish` calling nothing but `encode()` on `options.headers` (nats-core 3.x). Values must
 * not hold CR or LF (a header block cannot carry them; nats.js refuses them the same way).
 */
export function publishHeaders(pairs: ReadonlyArray<readonly [string, string]>): MsgHdrs {
  let block = 'NATS/1.0\r\n';
  for (const [name, value] of pairs) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new TypeError(`header ${JSON.stringify(name)}: names and values cannot contain CR or LF`);
    block += `${name}: ${value}\r\n`;
  }
  const bytes = Buffer.from(`${block}\r\n`);
  return { encode: () => bytes } as unknown as MsgHdrs;
}
