/**
 * Validates an operation's input at the gateway against the JSON Schema its worker
 * registered, with Ajv (what Fastify validates routes with). Each schema is compiled once,
 * cached by type, operation and a hash of the schema (a re-registered, changed schema
 * compiles anew).
 */
import { createHash } from 'node:crypto';
import { InvalidInputError, describeValue, inputPath, unionVariantFor, type InputDescriptor, type JsonSchema } from '@jetactor/actor-runtime';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** Most compiled schemas kept; past it the oldest is dropped (registrations are few). */
const MAX_COMPILED = 1024;

/** `input`, `input.value`, `input.items[2]` for an Ajv instance path (`/items/2`, JSON Pointer). */
function where(instancePath: string): string {
  const keys = instancePath === '' ? [] : instancePath.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  return inputPath(keys);
}

/** One sentence for the first failure: `input.qty must be integer, got 1.5`. */
function explain(errors: readonly ErrorObject[]): string {
  // A union fails with each alternative's error and then its own: explained by the one
  // alternative whose JSON type the value has (`{"value": 1.5}` for "an integer or an object":
  // `input.value must be integer, got 1.5`), else as a whole (by its description when it has
  // one), at the outermost path that failed.
  const union = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').sort((a, b) => a.instancePath.length - b.instancePath.length)[0];
  if (union) {
    const i = unionVariantFor(union.parentSchema, union.data);
    const inner = i === undefined ? [] : errors.filter((x) => x.schemaPath.startsWith(`${union.schemaPath}/${i}/`));
    if (inner.length > 0) return explain(inner);
  }
  const e = union ?? errors[0];
  if (!e) return 'input is invalid';
  const at = where(e.instancePath);
  const description = (e.parentSchema as { description?: unknown } | undefined)?.description;
  if (union && typeof description === 'string') return `${at} must be ${description}, got ${describeValue(e.data)}`;
  if (e.keyword === 'additionalProperties') return `${at} has an unknown field '${String(e.params.additionalProperty)}'`;
  if (e.keyword === 'required') return `${where(`${e.instancePath}/${String(e.params.missingProperty)}`)} is required`;
  return `${at} ${e.message ?? 'is invalid'}, got ${describeValue(e.data)}`;
}

/** Checks inputs against registered schemas. */
export interface InputValidator {
  /**
   * Throws an `InvalidInputError` (400 `INVALID_INPUT`) naming the field when `input` does
   * not match the operation's schema. Input of an operation without a schema (a parser or a
   * bare handler) passes: its worker validates it.
   */
  check(type: string, op: string, described: InputDescriptor, input: unknown): void;
}

/** Creates an {@link InputValidator} with its own Ajv instance and cache. */
export function createInputValidator(): InputValidator {
  // No coercion, no defaults: the gateway checks what the worker will get, and changes nothing.
  const ajv = new Ajv({ allErrors: false, verbose: true, strict: false, coerceTypes: false, useDefaults: false, validateFormats: false });
  const compiled = new Map<string, ValidateFunction>();
  // By the schema object as registered: a catalog entry keeps its schemas, so a request
  // finds its function without serializing and hashing the schema again.
  const bySchema = new WeakMap<JsonSchema, { type: string; op: string; fn: ValidateFunction }>();
  const compile = (type: string, op: string, schema: JsonSchema): ValidateFunction => {
    const known = bySchema.get(schema);
    if (known !== undefined && known.type === type && known.op === op) return known.fn;
    const text = JSON.stringify(schema);
    const id = `${type}\u0000${op}\u0000${createHash('sha256').update(text).digest('base64url')}`;
    let fn = compiled.get(id);
    if (!fn) {
      fn = ajv.compile(JSON.parse(text) as object);
      if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
      compiled.set(id, fn);
    }
    bySchema.set(schema, { type, op, fn });
    return fn;
  };
  return {
    check(type, op, described, input) {
      const schema = described.input;
      if (schema === undefined) return;
      if (input === undefined) {
        if (described.inputOptional) return;
        throw new InvalidInputError(`${op}: input is required`);
      }
      const fn = compile(type, op, schema);
      if (!fn(input)) throw new InvalidInputError(`${op}: ${explain(fn.errors ?? [])}`);
    },
  };
}
