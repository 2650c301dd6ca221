// Preloaded into the worker and the gateway (`node --import ./scripts/lib/exit-with-parent.mjs
// <entry>`) by `npm start`, `npm run worker` and `npm run gateway`:
//
// - the process stops gracefully (it sends itself SIGTERM, which the entry handles by
//   handing its partitions over / draining) as soon as its parent is gone, whatever way the
//   parent ended: a `kill -9` of npm or of the launcher leaves nothing running;
// - a signal repeated within a second (npm forwards the Ctrl-C its process group already got)
//   counts once, so one Ctrl-C is a graceful stop, not a forced one.
//
// A process started by a supervisor with no such preload (`node packages/counter-actor/dist/main.js`)
// is the supervisor's to stop; nothing here changes how it handles signals.

import { mergeRepeatedSignals, whenParentGone } from './parent.mjs';

mergeRepeatedSignals();
whenParentGone((parent) => {
  try {
    process.stderr.write(`parent process ${parent} is gone; stopping (SIGTERM)\n`);
  } catch {
    // nobody reads stderr any more
  }
  process.kill(process.pid, 'SIGTERM');
});
