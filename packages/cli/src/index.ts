/**
 * @packageDocumentation
 * The `jetactor` command line: signal, call, get, list, watch, status and dead letters,
 * against NATS (`NATS_URL`) or a gateway (`--gateway`).
 */
export { CLI_VERSION } from './version.js';
