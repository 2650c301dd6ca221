import { InvalidInputError, defineActor } from '../../src/internal.js';

/** A counter like the product's, defined here so the runtime's tests need no other package. */
export const testCounter = defineActor({
  type: 'counter',
  initialState: (): number => 0,
  operations: {
    add: {
      input: (raw: unknown) => {
        const v = raw === undefined ? 1 : typeof raw === 'object' && raw !== null && 'value' in raw ? raw.value : raw;
        if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new InvalidInputError('add takes an integer');
        return v;
      },
      handler: (s: number, n: number) => ({ state: s + n, result: s + n }),
    },
    reset: () => ({ state: 0, result: 0 }),
    get: (s: number) => ({ state: s, result: s }),
    explode: () => {
      throw new Error('handler bug');
    },
  },
});
