#!/usr/bin/env node
// `npm run worker` / `npm run gateway`: the bootstrap (dependencies, build; no nats-server),
// then the npm script `exec`s the part's entry itself:
//
//   node scripts/setup.mjs worker && exec node packages/worker/dist/main.js
//
// so that the part runs as one process, the child of npm, that a supervisor can signal and
// kill directly (no launcher in between), and that stops gracefully once npm is gone (each
// entry does that itself: exitWithParent of @jetactor/actor-runtime). To run
// a part under a supervisor without npm: `node packages/worker/dist/main.js` (worker)
// or `node packages/gateway/dist/main.js` (gateway), after `npm ci` and `npm run build`.
//
// JETACTOR_SKIP_BOOTSTRAP=1 skips `npm ci` and the build (an image built beforehand; tests):
// then only checks that the entry is built.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootstrap, repoRoot } from './lib/bootstrap.mjs';

/** The built entry of each part. */
export const PARTS = Object.freeze({
  worker: join(repoRoot, 'packages', 'worker', 'dist', 'main.js'),
  gateway: join(repoRoot, 'packages', 'gateway', 'dist', 'main.js'),
});

/** Whether JETACTOR_SKIP_BOOTSTRAP asks to skip `npm ci` and the build. */
export function skipBootstrapFromEnv() {
  const v = process.env.JETACTOR_SKIP_BOOTSTRAP ?? '';
  if (v === '' || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  throw new Error(`JETACTOR_SKIP_BOOTSTRAP must be 1 or 0, got ${JSON.stringify(v)}`);
}

/**
 * Throws when a part's entry is not built.
 *
 * @param {(keyof typeof PARTS)[]} parts
 */
export function assertBuilt(parts) {
  for (const part of parts) {
    if (!existsSync(PARTS[part])) {
      throw new Error(`${PARTS[part]} is missing: build first (\`npm run build\`), or unset JETACTOR_SKIP_BOOTSTRAP / drop --no-bootstrap`);
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const part = process.argv[2];
    if (process.argv.length !== 3 || (part !== 'worker' && part !== 'gateway')) {
      throw new Error('usage: node scripts/setup.mjs worker|gateway');
    }
    if (!skipBootstrapFromEnv()) await bootstrap({ nats: false });
    assertBuilt([part]);
  } catch (err) {
    process.stderr.write(`[setup] error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
