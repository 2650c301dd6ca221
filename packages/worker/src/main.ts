#!/usr/bin/env node
// The default worker: `node packages/worker/dist/main.js` (the `jetactor-worker` command; what
// `npm run worker` and `npm start` run) hosts the counter, the tally, the account, the cart and
// its order, and the device, or those `JETACTOR_ACTORS` lists, as a service of their own. Its
// settings come from the environment (see actors.ts and the runtime's workerOptionsFromEnv); a
// bad value is a start-up error like any other, said in one line.
import { exitWithParent, runWorker } from '@jetactor/actor-runtime';
import { hostedFromEnv } from './actors.js';

// Before any signal listener: stop gracefully with whatever started this process (npm, a
// launcher), however it ended.
exitWithParent();

async function main(): Promise<void> {
  await runWorker(hostedFromEnv(process.env));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? `worker failed to start: ${err.message}` : err);
  process.exit(1);
});
