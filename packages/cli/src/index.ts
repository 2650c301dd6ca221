/**
 * @packageDocumentation
 * The `jetactor` command line: signal, call, get, list, watch, status and dead letters,
 * against NATS (`NATS_URL`) or a gateway (`--gateway`).
 */
export type { Backend, ChangeStream, Snapshot } from './backend.js';
export { createGatewayBackend, parseEvents } from './backends/gateway-backend.js';
export type { GatewayBackendOptions } from './backends/gateway-backend.js';
export { createNatsBackend } from './backends/nats-backend.js';
export type { NatsBackendOptions } from './backends/nats-backend.js';
export { CliError } from './errors.js';
export { createOutput, show, table } from './output.js';
export type { Output } from './output.js';
export { createProgram, DEFAULT_TIMEOUT_MS, run } from './program.js';
export type { CliIo } from './program.js';
export { CLI_VERSION } from './version.js';
