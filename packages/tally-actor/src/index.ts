/**
 * @packageDocumentation
 * The tally actor: labelled counts with a bounded log (add / remove / clear), hosted by the
 * default worker beside the counter.
 */
export { LabelInput, MAX_ENTRIES, NOT_ENOUGH, tally } from './tally.js';
export type { Tally, TallyEntry, TallyState } from './tally.js';
