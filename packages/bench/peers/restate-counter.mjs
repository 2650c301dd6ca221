#!/usr/bin/env node
// The peer of jetactor's counter in `npm run bench -- --peers`: a Restate virtual object
// `counter` with `add` (exclusive: adds the input, 1 when there is none, and answers the new
// value) and `get` (shared). The bench copies this file into the cache folder where it
// installed @restatedev/restate-sdk (.cache/peers/restate) and runs it from there, so the
// import below resolves there and the SDK is never a dependency of the repository.
//
//   PORT=9080 RESTATE_LOGGING=WARN node .cache/peers/restate/restate-counter.mjs
//
// Plain Node ESM, no build step.

import { createServer } from 'node:http2';

// The SDK uses Promise.withResolvers (Node 22+); Node 20 lacks it.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

const restate = await import('@restatedev/restate-sdk');

const counter = restate.object({
  name: 'counter',
  handlers: {
    add: async (ctx, input) => {
      const by = typeof input === 'number' ? input : typeof input?.value === 'number' ? input.value : 1;
      const value = ((await ctx.get('count')) ?? 0) + by;
      ctx.set('count', value);
      return value;
    },
    get: restate.handlers.object.shared(async (ctx) => (await ctx.get('count')) ?? 0),
  },
});

// HTTP/2 (what `restate.serve` uses), on loopback only.
const server = createServer(restate.createEndpointHandler({ services: [counter] }));
server.listen(Number(process.env.PORT ?? 9080), '127.0.0.1', () => {
  process.stdout.write(`restate counter service listening on ${server.address().port}\n`);
});
const stop = () => process.exit(0);
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
