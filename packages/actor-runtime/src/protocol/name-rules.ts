/**
 * The rule for a valid actor type, key, operation and timer id, written once: as lengths,
 * regular-expression patterns (for JSON Schema and OpenAPI), prose (for errors and docs) and
 * the one message a bad name gets, from the gateway and from the worker alike. No imports:
 * the error table's descriptions are built from it too.
 */

/** Maximum length of an actor type name. */
export const MAX_TYPE_LENGTH = 64;
/** Maximum length of an actor key. */
export const MAX_KEY_LENGTH = 128;
/** Maximum length of an operation name. */
export const MAX_OP_LENGTH = 64;
/** Maximum length of a timer id. */
export const MAX_TIMER_ID_LENGTH = 64;
/**
 * Types that cannot be used because they collide with other subjects: `call` (the gateway's
 * `actors.call.<type>.<key>.<op>`) and `query` (the workers' `actors.query.<type>.<key>.<name>`).
 */
export const RESERVED_TYPES: ReadonlySet<string> = new Set(['call', 'query']);

/** A field whose value is a name. */
export type NameField = 'type' | 'key' | 'op' | 'timerId';

/** Characters of a type, key or timer id: one subject token that is also a valid KV key. */
const NAME_CHARS = 'A-Za-z0-9_=-';
/** Characters of an operation name (no `=`). */
const OP_CHARS = 'A-Za-z0-9_-';

const MAX: Readonly<Record<NameField, number>> = { type: MAX_TYPE_LENGTH, key: MAX_KEY_LENGTH, op: MAX_OP_LENGTH, timerId: MAX_TIMER_ID_LENGTH };
const CHARS: Readonly<Record<NameField, string>> = { type: NAME_CHARS, key: NAME_CHARS, op: OP_CHARS, timerId: NAME_CHARS };

/** Longest value of `field`. */
export function maxNameLength(field: NameField): number {
  return MAX[field];
}

/**
 * The JSON Schema / regular-expression pattern of a valid `field` (length included), e.g.
 * `^[A-Za-z0-9_=-]{1,128}$` for a key. An operation a caller names never starts with `$` (those
 * are the runtime's own: `$cancel`, `$fire`, `$delete`).
 */
export function namePattern(field: NameField): string {
  return `^[${CHARS[field]}]{1,${MAX[field]}}$`;
}

const PATTERNS: Readonly<Record<NameField, RegExp>> = {
  type: new RegExp(namePattern('type')),
  key: new RegExp(namePattern('key')),
  op: new RegExp(namePattern('op')),
  timerId: new RegExp(namePattern('timerId')),
};
/** The runtime's own operations (`$cancel`, `$fire`, `$delete`) are operation names with a leading `$`. */
const RUNTIME_OP = new RegExp(`^\\$[${OP_CHARS}]{1,${MAX_OP_LENGTH - 1}}$`);

const WHAT: Readonly<Record<NameField, string>> = { type: 'type', key: 'key', op: 'operation', timerId: 'timer id' };

/**
 * The rule in words, e.g. ``key must be 1-128 characters of [A-Za-z0-9_=-] (no '.', '*', '>' or spaces)``.
 * With `code`, the character class is set in backticks (Markdown).
 */
export function nameRule(field: NameField, code = false): string {
  const tail =
    field === 'type'
      ? ` and not ${[...RESERVED_TYPES].sort().map((t) => (code ? `\`${t}\`` : `'${t}'`)).join(', ')}`
      : field === 'key'
        ? code ? ' (no `.`, `*`, `>` or spaces)' : " (no '.', '*', '>' or spaces)"
        : '';
  return `${WHAT[field]} must be ${nameChars(field, code)}${tail}`;
}

/** The length and characters of a valid `field`, e.g. ``1-128 characters of [A-Za-z0-9_=-]`` (`code`: the class in backticks). */
export function nameChars(field: NameField, code = false): string {
  const cls = `[${CHARS[field]}]`;
  return `1-${MAX[field]} characters of ${code ? `\`${cls}\`` : cls}`;
}

/** A value as an error message shows it: JSON, cut at 64 characters (with the full length). */
export function shownName(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return text.length > 64 ? `${JSON.stringify(`${text.slice(0, 64)}…`)}, ${text.length} characters` : JSON.stringify(text);
}

/** The one message of a bad name: the rule and what came, e.g. `key must be … (got "a.b")`. */
export function nameErrorMessage(field: NameField, value: unknown): string {
  return `${nameRule(field)} (got ${shownName(value)})`;
}

/**
 * True when `value` is a valid `field`. With `runtimeOps`, an operation may also be one of the
 * runtime's own (`$` and a name: `$cancel`, `$fire`, `$delete`), as stored operations are.
 */
export function isValidName(field: NameField, value: unknown, runtimeOps = false): value is string {
  if (typeof value !== 'string') return false;
  if (field === 'op' && runtimeOps && RUNTIME_OP.test(value)) return true;
  return PATTERNS[field].test(value) && !(field === 'type' && RESERVED_TYPES.has(value));
}
