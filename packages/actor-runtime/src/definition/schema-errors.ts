/**
 * Turns a TypeBox validation error into one sentence that says where the input is wrong,
 * what was expected and what came: `input.value must be an integer, got the string "2"`.
 * A union is explained by the one alternative whose JSON type the value has (so `1.5` for
 * "an integer or an object" reads "must be an integer"), else by the list of alternatives
 * (or the union's `description`).
 */
import type { TSchema } from '@sinclair/typebox';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';

/** `input`, `input.value`, `input.items[2]` for a path of keys. */
export function where(path: ReadonlyArray<PropertyKey>): string {
  let out = 'input';
  for (const k of path) {
    if (typeof k === 'number' || (typeof k === 'string' && /^\d+$/.test(k))) out += `[${String(k)}]`;
    else if (typeof k === 'string' && /^[A-Za-z_$][\w$]*$/.test(k)) out += `.${k}`;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

/** The keys of a TypeBox error path (`/items/2`); JSON Pointer escapes undone. */
function keysOf(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** A short description of a value, for "got …". */
export function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}

/** A schema read as plain JSON (TypeBox types its keywords `any`). */
type Schema = Readonly<Record<string, unknown>>;

const article = (noun: string): string => (/^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`);

/** What a schema expects, in words: `an integer`, `null`, `"on" or "off"`, `an integer, an object or null`. */
export function expected(schema: Schema): string {
  if (typeof schema.description === 'string' && Array.isArray(schema.anyOf)) return schema.description;
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.anyOf)) return list((schema.anyOf as Schema[]).map(expected));
  if (Array.isArray(schema.enum)) return list(schema.enum.map((v) => JSON.stringify(v)));
  const type = schema.type;
  if (type === 'null') return 'null';
  if (type === 'object' && schema.additionalProperties === false && Object.keys((schema.properties as object | undefined) ?? {}).length === 0) return 'an empty object';
  if (typeof type === 'string') return article(type);
  if (Array.isArray(type)) return list(type.map((t) => (t === 'null' ? 'null' : article(String(t)))));
  return 'a valid value';
}

function list(items: string[]): string {
  if (items.length <= 1) return items[0] ?? 'nothing';
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** True if `value` has the JSON type `schema` declares (any type when it declares none). */
function hasTypeOf(schema: Schema, value: unknown): boolean {
  if ('const' in schema) return typeof schema.const === typeof value && (schema.const === null) === (value === null);
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Schema[]).some((s) => hasTypeOf(s, value));
  const types = Array.isArray(schema.type) ? (schema.type as unknown[]) : schema.type === undefined ? null : [schema.type];
  if (types === null) return true;
  return types.some((t) => {
    switch (t) {
      case 'integer':
      case 'number':
        return typeof value === 'number';
      case 'null':
        return value === null;
      case 'array':
        return Array.isArray(value);
      case 'object':
        return typeof value === 'object' && value !== null && !Array.isArray(value);
      default:
        return typeof value === t;
    }
  });
}

/**
 * The alternative of a union schema (`anyOf` or `oneOf`) that explains why `value` failed it:
 * the only one whose JSON type the value has (`{"value": 1.5}` for "an integer or an object"
 * is the object's), or undefined when none or several do.
 */
export function unionVariantFor(union: unknown, value: unknown): number | undefined {
  const u = (union ?? {}) as Schema;
  const variants = (Array.isArray(u.anyOf) ? u.anyOf : Array.isArray(u.oneOf) ? u.oneOf : []) as Schema[];
  const fitting = variants.flatMap((v, i) => (hasTypeOf(v, value) ? [i] : []));
  return fitting.length === 1 ? fitting[0] : undefined;
}

/** One sentence for the first error of a value that failed `schema` (the error may be undefined if TypeBox gave none). */
export function explainTypeBoxError(schema: TSchema, error: ValueError | undefined, value: unknown): string {
  if (!error) return `input must be ${expected(schema)}, got ${shown(value)}`;
  const s = error.schema as Schema;
  const at = where(keysOf(error.path));
  const got = `, got ${shown(error.value)}`;
  switch (error.type) {
    case ValueErrorType.Union: {
      const i = unionVariantFor(s, error.value);
      const only = i === undefined ? undefined : error.errors[i]?.First();
      if (only) return explainTypeBoxError((s.anyOf as TSchema[])[i as number] as TSchema, only, error.value);
      return `${at} must be ${expected(s)}${got}`;
    }
    case ValueErrorType.ObjectRequiredProperty:
      return `${at} is required`;
    case ValueErrorType.ObjectAdditionalProperties:
    case ValueErrorType.IntersectUnevaluatedProperties: {
      const keys = keysOf(error.path);
      return `unexpected property ${JSON.stringify(keys[keys.length - 1] ?? '')} in ${where(keys.slice(0, -1))}`;
    }
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `${at} must be <= ${String(s.maximum)}${got}`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `${at} must be >= ${String(s.minimum)}${got}`;
    case ValueErrorType.IntegerExclusiveMaximum:
    case ValueErrorType.NumberExclusiveMaximum:
      return `${at} must be < ${String(s.exclusiveMaximum)}${got}`;
    case ValueErrorType.IntegerExclusiveMinimum:
    case ValueErrorType.NumberExclusiveMinimum:
      return `${at} must be > ${String(s.exclusiveMinimum)}${got}`;
    case ValueErrorType.IntegerMultipleOf:
    case ValueErrorType.NumberMultipleOf:
      return `${at} must be a multiple of ${String(s.multipleOf)}${got}`;
    case ValueErrorType.StringMinLength:
      return `${at} must be at least ${String(s.minLength)} characters long${got}`;
    case ValueErrorType.StringMaxLength:
      return `${at} must be at most ${String(s.maxLength)} characters long${got}`;
    case ValueErrorType.StringPattern:
      return `${at} must match ${String(s.pattern)}${got}`;
    case ValueErrorType.StringFormat:
      return `${at} must be a string of format ${String(s.format)}${got}`;
    case ValueErrorType.ArrayMinItems:
      return `${at} must have at least ${String(s.minItems)} items`;
    case ValueErrorType.ArrayMaxItems:
      return `${at} must have at most ${String(s.maxItems)} items`;
    case ValueErrorType.ArrayUniqueItems:
      return `${at} must not repeat an item`;
    case ValueErrorType.Integer:
    case ValueErrorType.Number:
    case ValueErrorType.String:
    case ValueErrorType.Boolean:
    case ValueErrorType.Null:
    case ValueErrorType.Object:
    case ValueErrorType.Array:
    case ValueErrorType.Literal:
    case ValueErrorType.Tuple:
      return `${at} must be ${expected(s)}${got}`;
    default:
      return `${at}: ${error.message.charAt(0).toLowerCase()}${error.message.slice(1)}${got}`;
  }
}
