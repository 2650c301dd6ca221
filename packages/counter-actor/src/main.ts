#!/usr/bin/env node
// The default worker: `node packages/counter-actor/dist/main.js` (what `npm run worker` and
// `npm start` run) hosts the counter, the tally, the account, the cart and its order, and the
// device. The actor packages are imported here, not at the top: the cart and the device read
// CART_IDLE_MS and DEVICE_OFFLINE_MS when they load, and a bad value is a start-up error
// like any other, said in one line.
import { exitWithParent, runWorker } from '@jetactor/actor-runtime';
import { counter } from './counter.js';

// Before any signal listener: stop gracefully with whatever started this process (npm, a
// launcher), however it ended.
exitWithParent();

async function main(): Promise<void> {
  const [{ tally }, { account }, { cart, order }, { device }] = await Promise.all([
    import('@jetactor/tally-actor'),
    import('@jetactor/account-actor'),
    import('@jetactor/cart-actor'),
    import('@jetactor/device-actor'),
  ]);
  await runWorker({ actors: [counter, tally, account, cart, order, device], service: 'default' });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? `worker failed to start: ${err.message}` : err);
  process.exit(1);
});
