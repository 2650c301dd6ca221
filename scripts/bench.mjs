#!/usr/bin/env node
// `npm run bench`: the benchmark suite (packages/bench). Installs dependencies if needed,
// finds or fetches a nats-server >= 2.10, builds, then runs the suite, which starts its own
// nats-server, prints progress on stderr, a table on stdout and writes
// bench-results/latest.json.
//
//   npm run bench                 full run (several minutes)
//   npm run bench -- --quick      smoke run (about a minute)
//   npm run bench -- --help       every option (--only=, --out=, --markdown=, --cpu-prof)
//
// Plain Node ESM with builtins only, like the other scripts.

import { join } from 'node:path';
import { bootstrap, repoRoot, runInherit } from './lib/bootstrap.mjs';

const { natsServer } = await bootstrap();
const code = await runInherit(process.execPath, [join(repoRoot, 'packages/bench/dist/main.js'), ...process.argv.slice(2)], {
  env: { NATS_SERVER_BIN: natsServer?.bin, JETACTOR_ROOT: repoRoot },
});
process.exit(code);
