import { ActorError, ErrorCode, InvalidInputError, defineActor } from '@jetactor/actor-runtime';

/**
 * Parses the input of `add`: a bare integer (`3`), `{"value": 3}`, or nothing (1).
 * Anything else (a fraction, a string, a number outside the safe integer range) is an
 * {@link InvalidInputError}.
 */
export function parseAddInput(raw: unknown): number {
  if (raw === undefined || raw === null) return 1;
  let value: unknown = raw;
  if (typeof raw === 'object' && !Array.isArray(raw)) {
    const obj = raw as Record<string, unknown>;
    const extra = Object.keys(obj).filter((k) => k !== 'value');
    if (extra.length > 0) throw new InvalidInputError(`add takes {"value": <integer>}; unexpected field '${extra[0]}'`);
    value = 'value' in obj ? obj.value : 1;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidInputError(`add takes an integer or {"value": <integer>}, got ${describe(value)}`);
  }
  if (!Number.isInteger(value)) throw new InvalidInputError(`add takes an integer, got ${value}`);
  if (!Number.isSafeInteger(value)) {
    throw new InvalidInputError(`add value ${value} is outside the safe integer range (±${Number.MAX_SAFE_INTEGER})`);
  }
  return value;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}…` : v)}`;
  return typeof v;
}

/** Operations that take no input accept nothing or null. */
function noInput(op: string) {
  return (raw: unknown): undefined => {
    if (raw !== undefined && raw !== null && !(typeof raw === 'object' && !Array.isArray(raw) && Object.keys(raw).length === 0)) {
      throw new InvalidInputError(`${op} takes no input`);
    }
    return undefined;
  };
}

/**
 * The counter from the seed recipe: `add` (default 1), `reset` and `get`.
 * State is a safe integer; an `add` whose result leaves the safe range is an error
 * result and leaves the state unchanged.
 */
export const counter = defineActor({
  type: 'counter',
  initialState: (): number => 0,
  operations: {
    add: {
      input: parseAddInput,
      handler: (state: number, amount: number) => {
        const next = state + amount;
        if (!Number.isSafeInteger(next)) {
          throw new ActorError(ErrorCode.ResultOutOfRange, `counter would become ${next}, outside the safe integer range`);
        }
        return { state: next, result: next };
      },
    },
    reset: { input: noInput('reset'), handler: () => ({ state: 0, result: 0 }) },
    get: { input: noInput('get'), handler: (state: number) => ({ state, result: state }) },
  },
});

/** The counter's definition type, derived from the definition. */
export type Counter = typeof counter;
