/**
 * The Standard Schema interface (https://standardschema.dev, v1), as the types a schema
 * library's objects carry under `~standard` (zod, valibot, arktype and others). The spec asks
 * consumers to copy these types rather than depend on a package; only the shape matters.
 * Types only: nothing here runs.
 */

/** A Standard Schema: any object (or function) with a `~standard` property of this shape. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaV1.Props<Input, Output>;
}

// A namespace is how the spec groups its types; it holds no values.
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace StandardSchemaV1 {
  /** The `~standard` property. */
  interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    /** Validates a value; jetactor accepts only schemas that answer synchronously. */
    readonly validate: (value: unknown, options?: { readonly libraryOptions?: Record<string, unknown> | undefined }) => Result<Output> | Promise<Result<Output>>;
    /** The inferred types (present for typing only). */
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
    /**
     * The Standard JSON Schema extension: converts the schema to JSON Schema. When present,
     * the definition's {@link ActorDescriptor} carries the operation's input JSON Schema.
     */
    readonly jsonSchema?: { readonly input: (options: { readonly target: string }) => Record<string, unknown> } | undefined;
  }
  /** What `validate` returns. */
  type Result<Output> = { readonly value: Output; readonly issues?: undefined } | { readonly issues: ReadonlyArray<Issue> };
  /** One validation problem. */
  interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
  }
}

/** The type a Standard Schema accepts. */
export type StandardInput<T extends StandardSchemaV1> = NonNullable<T['~standard']['types']>['input'];
/** The type a Standard Schema produces. */
export type StandardOutput<T extends StandardSchemaV1> = NonNullable<T['~standard']['types']>['output'];
