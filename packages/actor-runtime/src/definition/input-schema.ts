/**
 * Input validation of operations and queries: each entry's input source (a TypeBox schema,
 * a Standard Schema, a parser function, or none) compiled once into a `parse` function that
 * returns the handler's input or throws an {@link InvalidInputError} naming what is wrong,
 * and the entry's JSON description.
 */
import { KindGuard, OptionalKind, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ConfigError, InvalidInputError } from '../protocol/index.js';
import { explainTypeBoxError, where } from './schema-errors.js';
import type { StandardSchemaV1 } from './standard-schema.js';
import type { InputDescriptor, InputParser, JsonSchema } from './types.js';

/** An entry's input source, ready to use. */
export interface CompiledInput {
  /** Returns the handler's input for `raw` (parsed JSON; `undefined` for an empty payload) or throws {@link InvalidInputError}. */
  parse(raw: unknown): unknown;
  /** The JSON description of the input. */
  readonly descriptor: InputDescriptor;
}

const passThrough: CompiledInput = Object.freeze({ parse: (raw: unknown) => raw, descriptor: Object.freeze({}) });

/** True for a Standard Schema (an object or function with `~standard.validate`). */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const std = (value as { '~standard'?: unknown })['~standard'];
  return typeof std === 'object' && std !== null && typeof (std as { validate?: unknown }).validate === 'function';
}

/**
 * Compiles the input source of one entry. `label` names the entry in error messages
 * (`add`, `query value`). Throws a `TypeError` for a source of no known kind.
 */
export function compileInput(label: string, source: unknown): CompiledInput {
  if (source === undefined) return passThrough;
  // Standard Schema first: some libraries' schemas are callable functions.
  if (isStandardSchema(source)) return compileStandard(label, source);
  if (typeof source === 'function') return compileParser(source as InputParser);
  if (KindGuard.IsSchema(source)) return compileTypeBox(label, source);
  throw new TypeError(`${label}: input must be a TypeBox schema, a Standard Schema or a parser function`);
}

function compileParser(parser: InputParser): CompiledInput {
  return Object.freeze({ parse: (raw: unknown) => parser(raw), descriptor: Object.freeze({}) });
}

/** A plain-JSON copy of a TypeBox schema (its symbol keys are dropped). */
function toJsonSchema(schema: TSchema): JsonSchema {
  return JSON.parse(JSON.stringify(schema)) as JsonSchema;
}

function compileTypeBox(label: string, schema: TSchema): CompiledInput {
  // Compiled once: a check costs about what a hand-written parser does (the worker runs it
  // for every operation it applies).
  const check = TypeCompiler.Compile(schema);
  const optional = (schema as { [OptionalKind]?: unknown })[OptionalKind] === 'Optional';
  const json = toJsonSchema(schema);
  return Object.freeze({
    parse(raw: unknown): unknown {
      if (raw === undefined && optional) return undefined;
      if (check.Check(raw)) return raw;
      if (raw === undefined) throw new InvalidInputError(`${label}: input is required`);
      throw new InvalidInputError(`${label}: ${explainTypeBoxError(schema, check.Errors(raw).First(), raw)}`);
    },
    descriptor: Object.freeze(optional ? { input: json, inputOptional: true as const } : { input: json }),
  });
}

function compileStandard(label: string, schema: StandardSchemaV1): CompiledInput {
  const std = schema['~standard'];
  const validate = (raw: unknown): StandardSchemaV1.Result<unknown> => {
    const result = std.validate(raw);
    if (result instanceof Promise) {
      result.catch(() => undefined);
      throw new ConfigError(`${label}: the input schema (${std.vendor}) validates asynchronously; handlers need a synchronous schema`);
    }
    return result;
  };
  let descriptor: InputDescriptor = {};
  const json = jsonSchemaOf(std);
  if (json) {
    let optional = false;
    try {
      optional = validate(undefined).issues === undefined;
    } catch {
      // an asynchronous schema fails on its first input, with the error above
    }
    descriptor = optional ? { input: json, inputOptional: true } : { input: json };
  }
  return Object.freeze({
    parse(raw: unknown): unknown {
      const result = validate(raw);
      if (result.issues === undefined) return result.value;
      const issue = result.issues[0];
      const path = (issue?.path ?? []).map((p) => (typeof p === 'object' ? p.key : p));
      throw new InvalidInputError(`${label}: ${where(path)}: ${issue?.message ?? 'is invalid'}`);
    },
    descriptor: Object.freeze(descriptor),
  });
}

/** The input JSON Schema of a Standard Schema that implements the Standard JSON Schema extension; undefined otherwise. */
function jsonSchemaOf(std: StandardSchemaV1.Props): JsonSchema | undefined {
  if (typeof std.jsonSchema?.input !== 'function') return undefined;
  try {
    return JSON.parse(JSON.stringify(std.jsonSchema.input({ target: 'draft-07' }))) as JsonSchema;
  } catch {
    return undefined; // a library may refuse a schema it cannot express in JSON Schema
  }
}
