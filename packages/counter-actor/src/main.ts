#!/usr/bin/env node
// The default worker: `node packages/counter-actor/dist/main.js` (what `npm run worker` and
// `npm start` run) hosts the counter, the tally, the account, the cart and its order, and the
// device (or those `JETACTOR_ACTORS` lists, as a service of their own). The actor packages are imported here, not at the top: the cart and the device read
// CART_IDLE_MS and DEVICE_OFFLINE_MS when they load, and a bad value is a start-up error
// like any other, said in one line.
import { exitWithParent, runWorker } from '@jetactor/actor-runtime/worker';
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
  const all = [counter, tally, account, cart, order, device];
  // JETACTOR_ACTORS=tally,counter hosts only those: a service of its own (derived from the types
  // unless JETACTOR_SERVICE names it), which applies only their operations.
  const only = (process.env.JETACTOR_ACTORS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = only.filter((t) => !all.some((a) => a.type === t));
  if (unknown.length > 0) throw new Error(`JETACTOR_ACTORS names no actor type of this worker: ${unknown.join(', ')} (it hosts ${all.map((a) => a.type).join(', ')})`);
  const actors = only.length === 0 ? all : all.filter((a) => only.includes(a.type));
  await runWorker({ actors, service: only.length === 0 ? 'default' : undefined });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? `worker failed to start: ${err.message}` : err);
  process.exit(1);
});
