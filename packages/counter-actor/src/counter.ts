import { ActorError, ErrorCode, NoInput, Type, defineActor, type Static } from '@jetactor/actor-runtime';

const SafeInteger = Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER });

/**
 * The input of `add`: a bare integer (`3`), `{"value": 3}`, or nothing, `null` or `{}` (1).
 * A fraction, a string, another field or a number outside the safe integer range is an
 * `InvalidInputError` that says so (`add: input must be an integer, got 1.5`).
 */
export const AddInput = Type.Optional(
  Type.Union([SafeInteger, Type.Object({ value: Type.Optional(SafeInteger) }, { additionalProperties: false }), Type.Null()], {
    description: 'an integer or {"value": <integer>}',
  }),
);

/** The amount a valid `add` input stands for. */
function amountOf(input: Static<typeof AddInput> | undefined): number {
  if (typeof input === 'number') return input;
  return input?.value ?? 1;
}

/**
 * The counter from the seed recipe: `add` (default 1), `reset` and `get`, and the query `get`
 * (the value, read from the stored state without a trip through the stream). State is a safe
 * integer; an `add` whose result leaves the safe range is an error result (`RESULT_OUT_OF_RANGE`)
 * and leaves the state unchanged.
 */
export const counter = defineActor({
  type: 'counter',
  initialState: (): number => 0,
  operations: {
    add: {
      input: AddInput,
      handler: (state, input) => {
        const next = state + amountOf(input);
        if (!Number.isSafeInteger(next)) {
          throw new ActorError(ErrorCode.ResultOutOfRange, `counter would become ${next}, outside the safe integer range`);
        }
        return { state: next, result: next };
      },
    },
    reset: { input: NoInput, handler: () => ({ state: 0, result: 0 }) },
    // Kept as an operation (POST /api/actors/counter/<key>/get, ordered after what came before);
    // the query of the same name answers without the stream.
    get: { input: NoInput, handler: (state) => ({ state, result: state }) },
  },
  queries: {
    get: { input: NoInput, handler: (state) => state },
  },
});

/**
 * Validates the input of `add` and returns its amount: `3` → 3, `{"value": 2}` → 2, nothing,
 * `null` or `{}` → 1; throws `InvalidInputError` otherwise.
 */
export function parseAddInput(raw: unknown): number {
  return amountOf(counter.parseInput('add', raw) as Static<typeof AddInput>);
}

/** The counter's definition type, derived from the definition. */
export type Counter = typeof counter;
