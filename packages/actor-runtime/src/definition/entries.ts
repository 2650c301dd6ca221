/**
 * The operations and queries of a definition: each entry checked and compiled into its input
 * validator and its handler.
 */
import { validateName } from '../protocol/index.js';
import { compileInput, type CompiledInput } from './input-schema.js';

/** An operation or query: its compiled input validator and its handler. */
export interface Compiled<H> {
  input: CompiledInput;
  handler: H;
}

/** Checks the entries of `operations` or `queries` (names, reserved `$` names, shapes) and compiles their inputs. */
export function compileEntries<H>(type: string, kind: 'operation' | 'query', entries: object | undefined): Map<string, Compiled<H>> {
  const out = new Map<string, Compiled<H>>();
  for (const [name, entry] of Object.entries(entries ?? {}) as Array<[string, unknown]>) {
    validateName('op', name);
    if (name.startsWith('$')) throw new TypeError(`actor '${type}': ${kind} '${name}' is reserved`);
    const label = kind === 'operation' ? name : `query ${name}`;
    if (typeof entry === 'function') {
      out.set(name, { input: compileInput(label, undefined), handler: entry as H });
    } else if (typeof entry === 'object' && entry !== null && typeof (entry as { handler?: unknown }).handler === 'function') {
      const spec = entry as { input?: unknown; handler: H };
      out.set(name, { input: compileInput(`${label}`, spec.input), handler: spec.handler });
    } else {
      throw new TypeError(`actor '${type}': ${kind} '${name}' must be a handler function or { input, handler }`);
    }
  }
  return out;
}
