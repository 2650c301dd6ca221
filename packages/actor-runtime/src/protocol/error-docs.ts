/**
 * docs/errors.md, generated from the error table (tests/protocol-errors.test.ts fails when the
 * file differs from what {@link errorTableMarkdown} makes).
 */
import { ERROR_TABLE, type ErrorInfo } from './error-table.js';

/** The Markdown of docs/errors.md. */
export function errorTableMarkdown(): string {
  const rows = Object.entries(ERROR_TABLE as Readonly<Record<string, ErrorInfo>>).map(
    ([code, info]) => `| \`${code}\` | ${info.status ?? '—'} | ${info.description.replace(/\|/g, '\\|')} |`,
  );
  return [
    '# Errors',
    '',
    '<!-- Generated from packages/actor-runtime/src/protocol/error-table.ts; a test (tests/protocol-errors.test.ts) fails when this file differs. -->',
    'This table is generated from the one error table of the runtime (`packages/actor-runtime/src/protocol/error-table.ts`),',
    'and a test checks that this file is what it generates: change the table, then regenerate this file.',
    '',
    'Every error is JSON `{"error":{"code":"...","message":"..."}}` with a fitting status, never',
    'a stack trace. A 4xx never changes any state. Any error result of an operation under `?wait=true`',
    "is sent as 422 with the worker's own code, even if that code has another status here; a runtime",
    'code of status 500 reaches a client only that way (otherwise the gateway answers `INTERNAL_ERROR`).',
    'Codes without a status are the CLI\'s own (it prints `jetactor: CODE: message` and exits with 1).',
    '',
    '| code | status | meaning |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
