#!/usr/bin/env node
// Gateway entry point: `node packages/gateway/dist/main.js` (what `npm run gateway` runs).
import cluster from 'node:cluster';
import { exitWithParent } from '@jetactor/actor-runtime/worker';
import { connectionShares, gatewayProcesses, isSupervisor, superviseGateways } from './processes.js';
import { runGateway } from './run-gateway.js';

// Before any signal listener: stop with whatever started this process (npx, npm, a launcher),
// however it ended. A copy of a multi-process gateway stops with its supervisor instead (below).
if (!cluster.isWorker) exitWithParent();

/** How long a graceful shutdown may take before the process exits anyway, in ms. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

let processes = 1;
let shares: number[] = [];
try {
  processes = gatewayProcesses(process.env);
  if (isSupervisor(processes)) shares = connectionShares(process.env, processes);
} catch (err) {
  console.error(`gateway failed to start: ${(err as Error).message}`);
  process.exit(1);
}
// GATEWAY_PROCESSES > 1: this process forks the gateways and supervises them.
if (isSupervisor(processes)) process.exit(await superviseGateways(processes, shares));

try {
  const gateway = await runGateway();
  const log = gateway.app.log;
  log.info({ url: gateway.url }, 'gateway listening');

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down: closing HTTP, then draining NATS');
    setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    gateway.close().then(
      // Exit explicitly: a NATS connect still waiting for its first server keeps timers alive.
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // A copy of a multi-process gateway stops with its supervisor, however that ended.
  if (cluster.isWorker) process.on('disconnect', () => stop('SIGTERM'));
} catch (err) {
  console.error(err instanceof Error ? `gateway failed to start: ${err.message}` : err);
  process.exit(1);
}
