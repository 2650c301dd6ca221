import { ActorError, NoInput, Type, defineActor, type Static } from '@jetactor/actor-runtime';

/** Most entries a tally keeps in its log; older ones drop off (the counts stay). */
export const MAX_ENTRIES = 100;

/** Code of the error result of removing more than a label holds. */
export const NOT_ENOUGH = 'NOT_ENOUGH';

/**
 * A label: 1-64 characters of letters, digits, `_`, `-`, `.` or `:`, but not `__proto__`
 * (as a key of a plain object it would set the prototype, not a count).
 */
const Label = Type.String({ minLength: 1, maxLength: 64, pattern: '^(?!__proto__$)[A-Za-z0-9_.:-]+$' });
/** How many to add or remove at once: 1 to 1,000,000 (default 1). */
const Amount = Type.Integer({ minimum: 1, maximum: 1_000_000 });

/** The input of `add` and `remove`: `{"label": "apples", "n": 3}` (`n` defaults to 1). */
export const LabelInput = Type.Object({ label: Label, n: Type.Optional(Amount) }, { additionalProperties: false });

/** One logged change. */
export interface TallyEntry {
  label: string;
  /** Positive for `add`, negative for `remove`. */
  n: number;
  /** When the operation was stored (ISO 8601; the same on replay). */
  at: string;
}

/** A tally's state: the count of each label, and the latest changes, oldest first. */
export interface TallyState {
  counts: Record<string, number>;
  entries: TallyEntry[];
}

function log(state: TallyState, entry: TallyEntry): void {
  state.entries.push(entry);
  if (state.entries.length > MAX_ENTRIES) state.entries.splice(0, state.entries.length - MAX_ENTRIES);
}

/**
 * A tally: labelled counts and a log of the last {@link MAX_ENTRIES} changes. `add` grows a
 * label (and adds it), `remove` shrinks it (a label at 0 is dropped; removing more than it
 * holds is the error result `NOT_ENOUGH`, the state unchanged), `clear` empties everything.
 * Queries `count` (one label) and `labels` answer from the stored state.
 */
export const tally = defineActor({
  type: 'tally',
  initialState: (): TallyState => ({ counts: {}, entries: [] }),
  operations: {
    add: {
      input: LabelInput,
      handler: (state, { label, n = 1 }, ctx) => {
        const count = (state.counts[label] ?? 0) + n;
        state.counts[label] = count;
        log(state, { label, n, at: ctx.time.toISOString() });
        return { state, result: count };
      },
    },
    remove: {
      input: LabelInput,
      handler: (state, { label, n = 1 }, ctx) => {
        const held = state.counts[label] ?? 0;
        if (held < n) throw new ActorError(NOT_ENOUGH, `tally has ${held} of '${label}', cannot remove ${n}`);
        const count = held - n;
        if (count === 0) delete state.counts[label];
        else state.counts[label] = count;
        log(state, { label, n: -n, at: ctx.time.toISOString() });
        return { state, result: count };
      },
    },
    clear: {
      input: NoInput,
      handler: (state) => ({ state: { counts: {}, entries: [] }, result: Object.keys(state.counts).length }),
    },
  },
  queries: {
    count: { input: Type.Object({ label: Label }, { additionalProperties: false }), handler: (state, { label }) => state.counts[label] ?? 0 },
    labels: { input: NoInput, handler: (state) => Object.keys(state.counts).sort() },
  },
});

/** The input of `add` and `remove`, as a type. */
export type LabelInput = Static<typeof LabelInput>;

/** The tally's definition type, derived from the definition. */
export type Tally = typeof tally;
