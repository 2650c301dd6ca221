/** What the commands share: global options, argument parsers and the backend runner. */
import { InvalidArgumentError, type Command } from 'commander';
import type { Backend } from './backend.js';
import { CliError } from './errors.js';
import { show, type Output } from './output.js';

/** The program's global options. */
export interface GlobalOptions {
  nats?: string;
  gateway?: string;
  token?: string;
  json: boolean;
  timeout: number;
}

/** Runs `work` with a backend (NATS or the gateway, by the global options) and the output; failures become exit code 1. */
export type WithBackend = (cmd: Command, work: (backend: Backend, out: Output, g: GlobalOptions) => Promise<void>) => Promise<void>;

/** A commander parser for an integer >= `min`. */
export function integer(name: string, min: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/** The operation's input: JSON text, or nothing. */
export function parseInput(raw: string | undefined): unknown {
  if (raw === undefined || raw.trim() === '') return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new CliError('USAGE', `input must be JSON, e.g. 3 or '{"value":3}', got ${show(raw)}`);
  }
}
