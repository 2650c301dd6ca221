/** The subject bindings of a definition (`subscribe`): checked and frozen when the actor is defined. */
import type { SubjectBinding } from './types.js';

/** A subject token a binding may use literally: what NATS allows in a token, less wildcards. */
const LITERAL_TOKEN = /^[A-Za-z0-9_=-]{1,64}$/;

/** Checks the bindings of a definition: literal or `*` tokens, a key wildcard that exists, an operation the type has. */
export function compileBindings(type: string, raw: unknown, ops: ReadonlyMap<string, unknown>): readonly SubjectBinding[] {
  if (raw === undefined) return Object.freeze([]);
  if (!Array.isArray(raw)) throw new TypeError(`actor '${type}': subscribe must be an array of { subject, key, op }`);
  const out: SubjectBinding[] = [];
  for (const b of raw as unknown[]) {
    const { subject, key, op } = (b ?? {}) as Partial<SubjectBinding>;
    const where = `actor '${type}': binding ${JSON.stringify(subject)}`;
    if (typeof subject !== 'string' || subject.length > 200) throw new TypeError(`${where}: subject must be a string of at most 200 characters`);
    const tokens = subject.split('.');
    if (tokens.some((t) => t !== '*' && !LITERAL_TOKEN.test(t))) {
      throw new TypeError(`${where}: each token must be '*' or [A-Za-z0-9_=-] ('>' is not allowed: the key must be one token)`);
    }
    if (tokens[0] === '*' || tokens[0] === 'actors' || tokens[0]?.startsWith('$') || tokens[0] === '_INBOX') {
      throw new TypeError(`${where}: the first token must be a literal other than 'actors' and '_INBOX'`);
    }
    const wildcards = tokens.filter((t) => t === '*').length;
    if (typeof key !== 'number' || !Number.isInteger(key) || key < 1 || key > wildcards) {
      throw new TypeError(`${where}: key must be the number (from 1) of one of its ${wildcards} '*' tokens`);
    }
    if (typeof op !== 'string' || !ops.has(op)) throw new TypeError(`${where}: op ${JSON.stringify(op)} is not an operation of the type`);
    out.push(Object.freeze({ subject, key, op }));
  }
  return Object.freeze(out);
}
