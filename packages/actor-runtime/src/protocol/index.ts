/**
 * @packageDocumentation
 * The wire contract of jetactor: subjects, names and their rule, headers, the codecs of
 * operations, replies, queries and dead letters, the control bucket's keys, and the one error
 * table. Everything else imports it; it imports nothing of the runtime.
 */
export * from './control-keys.js';
export * from './dead-letters.js';
export * from './error-docs.js';
export * from './error-table.js';
export * from './errors.js';
export * from './headers.js';
export * from './name-rules.js';
export * from './names.js';
export * from './nats-errors.js';
export * from './queries.js';
export * from './replies.js';
export * from './subjects.js';
