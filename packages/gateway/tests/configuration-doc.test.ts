/**
 * The configuration table (docs/configuration.md, or README.md's "Configuration" section) lists
 * exactly the variables the worker's and the gateway's environment schemas define, each under
 * the process that reads it: a variable added to a schema without a row, or a row left for a
 * variable no schema reads, fails here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { WORKER_ENV } from '@jetactor/actor-runtime';
import { describe, expect, it } from 'vitest';
import { GATEWAY_ENV } from '../src/env.js';

const ROOT = new URL('../../../', import.meta.url);

/** Variables the worker and the gateway read outside these schemas: the runtime's NATS connection (`connectionOptionsFromEnv`) and `exitWithParent`. */
const READ_ELSEWHERE = [
  'NATS_URL',
  'NATS_USER',
  'NATS_PASS',
  'NATS_TOKEN',
  'NATS_NKEY_SEED',
  'NATS_CREDS',
  'NATS_TLS_CA',
  'NATS_TLS_CERT',
  'NATS_TLS_KEY',
  'JETACTOR_EXIT_WITH_PARENT',
];

/** The rows of the configuration table: each variable with the processes of its "read by" column. */
function configurationRows(): Map<string, string[]> {
  const docs = new URL('docs/configuration.md', ROOT);
  const text = existsSync(docs) ? readFileSync(docs, 'utf8') : readFileSync(new URL('README.md', ROOT), 'utf8').split(/^## Configuration$/m)[1]?.split(/^## /m)[0];
  if (text === undefined) throw new Error('no configuration table found');
  const rows = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // | `NAME` (or `A` / `B`, `A`, `B`) | default | read by | meaning |
    if (cells.length < 5 || !cells[1]?.startsWith('`')) continue;
    const readers = (cells[3] ?? '').split(',').map((r) => r.trim().replace(/ \(`runWorker`\)$/, ''));
    for (const [, name] of (cells[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)) if (name !== undefined) rows.set(name, readers);
  }
  return rows;
}

describe('the configuration table', () => {
  const rows = configurationRows();
  const readBy = (process: string): string[] =>
    [...rows].filter(([, readers]) => readers.includes(process) || readers.includes('all')).map(([name]) => name);

  it("lists exactly the worker's and the gateway's variables", () => {
    const defined = new Set([...Object.keys(WORKER_ENV.properties), ...Object.keys(GATEWAY_ENV.properties), ...READ_ELSEWHERE]);
    const listed = new Set([...readBy('worker'), ...readBy('gateway')]);
    expect([...listed].filter((name) => !defined.has(name)).sort()).toEqual([]);
    expect([...defined].filter((name) => !listed.has(name)).sort()).toEqual([]);
  });

  it('lists each under the process that reads it', () => {
    expect(Object.keys(WORKER_ENV.properties).filter((name) => !readBy('worker').includes(name))).toEqual([]);
    expect(Object.keys(GATEWAY_ENV.properties).filter((name) => !readBy('gateway').includes(name))).toEqual([]);
  });
});
