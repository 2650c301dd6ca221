#!/usr/bin/env node
// Worker entry point: `node packages/counter-actor/dist/main.js` (what `npm run worker` runs).
import { runWorker } from './run-worker.js';

runWorker().catch((err: unknown) => {
  console.error(err instanceof Error ? `worker failed to start: ${err.message}` : err);
  process.exit(1);
});
