#!/usr/bin/env node
// The default worker: `node packages/counter-actor/dist/main.js` (what `npm run worker` and
// `npm start` run) hosts the counter and the tally.
import { runWorker } from '@jetactor/actor-runtime';
import { tally } from '@jetactor/tally-actor';
import { counter } from './counter.js';

runWorker({ actors: [counter, tally] }).catch((err: unknown) => {
  console.error(err instanceof Error ? `worker failed to start: ${err.message}` : err);
  process.exit(1);
});
