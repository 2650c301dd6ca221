/**
 * The records step of a commit: reads the records a batch needs, folds each key's operations
 * onto them ({@link foldKeys}, pure), stores what the operations leave besides their state
 * (dead letters, kept outcomes) and then writes the changed records with CAS.
 */
import { ActorError, ErrorCode, toErrorBody } from '../protocol/index.js';
import { newRecord, type CommitterOptions } from './commit-types.js';
import type { RecordLoader } from './commit-sends.js';
import type { DecodedOp } from './decode.js';
import { foldKey } from './fold.js';
import type { Failure, FoldEnv, KeyFold } from './key-fold.js';
import type { CachedRecord } from './record-cache.js';
import { writeRecords } from './record-io.js';
import { isDuplicateSend, trustedSend } from './send-dedup.js';
import { storeSideOutputs } from './side-outputs.js';

/** Weight of one observed cache miss in the estimate of new keys. */
const NEW_KEY_ALPHA = 0.02;

/** What the fold of a committer's batches needs to know besides the operations. */
export function foldEnvOf(o: CommitterOptions): FoldEnv {
  const { actors, maxStateBytes, maxSendBytes, log, topology, names } = o;
  return {
    actors,
    maxStateBytes,
    maxSendBytes,
    debug: log.isLevelEnabled('debug'),
    salt: topology.salt,
    stream: topology.streamCreated,
    partitions: topology.partitions,
    subjectPrefix: names.subjectPrefix,
    unknownOperation: o.unknownOperation,
  };
}

/** Folds the operations of each of `keys` (from `groups`) onto its record in `bases` (a new record when absent) into `folds`. Pure. */
export function foldKeys(keys: Iterable<string>, groups: ReadonlyMap<string, DecodedOp[]>, bases: ReadonlyMap<string, CachedRecord>, partition: number, env: FoldEnv, folds: Map<string, KeyFold>): void {
  for (const k of keys) folds.set(k, foldKey(bases.get(k) ?? newRecord(partition), groups.get(k) ?? [], env));
}

/** Reads, folds and writes a committer's records; learns how often a key it has not cached is new. */
export class RecordStep {
  /**
   * Share of cache misses that were keys never written (moving average). While it is at
   * least one half, misses are guessed new instead of read first; the create's CAS checks it.
   */
  private newKeyRate = 0.75;
  /** Keys whose records this batch read from the store: their timers are checked against the index. */
  readonly loaded = new Set<string>();

  constructor(
    private readonly o: CommitterOptions,
    private readonly loadInto: RecordLoader,
  ) {}

  /**
   * Folds every key and writes the changed records. Records not in the cache are read, or,
   * while most such keys turn out to be new (a fresh keyspace), guessed new: the create's CAS
   * checks the guess, and a key that exists fails it (10071), is read and folded again.
   * Dead letters and kept outcomes (of `nameFailures` and the folds) are stored before any
   * record. The records of this batch are held here, not only in the cache, so a cache
   * smaller than one batch's keys still works.
   */
  async readFoldAndWrite(groups: Map<string, DecodedOp[]>, nameFailures: readonly Failure[]): Promise<Map<string, KeyFold>> {
    const { cache, partition } = this.o;
    const env = foldEnvOf(this.o);
    const folds = new Map<string, KeyFold>();
    const bases = new Map<string, CachedRecord>();
    const load = async (keys: string[]) => {
      for (const k of keys) this.loaded.add(k);
      await this.loadInto(keys, bases);
    };
    const guessed = new Set<string>();
    const missing: string[] = [];
    for (const k of groups.keys()) {
      const hit = cache.get(k);
      if (hit) bases.set(k, hit);
      else missing.push(k);
    }
    if (missing.length > 0) {
      if (this.newKeyRate >= 0.5) for (const k of missing) guessed.add(k);
      else {
        await load(missing);
        for (const k of missing) this.learnNewKey(bases.get(k)?.revision === 0);
      }
    }
    foldKeys(groups.keys(), groups, bases, partition, env, folds);
    // Only a write checks a guess: a guessed key that writes nothing (a read, an error) is read
    // now, and so is one that leaves outcomes or dead letters (they are stored before any write).
    const unchecked = [...guessed].filter((k) => {
      const f = folds.get(k);
      return !f?.dirty || f.failures !== undefined || f.outcomes !== undefined;
    });
    if (unchecked.length > 0) {
      await load(unchecked);
      for (const k of unchecked) {
        guessed.delete(k);
        this.learnNewKey(bases.get(k)?.revision === 0);
        foldKeys([k], groups, bases, partition, env, folds);
      }
    }
    await storeSideOutputs(this.o, nameFailures, folds.values());
    const refused = new Map<string, unknown>();
    const existed = await writeRecords(this.o, [...folds].filter(([, f]) => f.dirty).map(([k]) => k), folds, guessed, refused);
    for (const k of guessed) this.learnNewKey(!existed.includes(k));
    if (existed.length > 0) {
      await load(existed);
      for (const k of existed) guessed.delete(k);
      foldKeys(existed, groups, bases, partition, env, folds);
      await storeSideOutputs(this.o, [], existed.map((k) => folds.get(k) as KeyFold));
      await writeRecords(this.o, existed.filter((k) => folds.get(k)?.dirty), folds, guessed, refused);
    }
    if (refused.size > 0) await this.failUnwritable(refused, groups, folds, bases, load, env);
    return folds;
  }

  /**
   * Records the store refused for their size (a bound the worker could not know, such as a
   * bucket's lower max_msg_size): each such key keeps its last stored state, and its operations
   * of this batch fail with STATE_TOO_LARGE (error results, dead letters, kept outcomes) instead
   * of the partition stopping at them.
   */
  private async failUnwritable(
    refused: Map<string, unknown>,
    groups: Map<string, DecodedOp[]>,
    folds: Map<string, KeyFold>,
    bases: Map<string, CachedRecord>,
    load: (keys: string[]) => Promise<void>,
    env: FoldEnv,
  ): Promise<void> {
    const { partition, topology, log } = this.o;
    const unread = [...refused.keys()].filter((k) => !bases.has(k));
    if (unread.length > 0) await load(unread);
    const failed: KeyFold[] = [];
    for (const [k, cause] of refused) {
      const base = bases.get(k) ?? newRecord(partition);
      const earlier = folds.get(k)?.failures ?? [];
      const error = toErrorBody(new ActorError(ErrorCode.StateTooLarge, `the record of ${k} could not be stored (${String(cause)}); the state is unchanged`));
      const failures: Failure[] = [];
      for (const op of groups.get(k) ?? []) {
        if (op.seq <= base.seq) continue;
        const sent = op.send && trustedSend(op.send, topology.salt, topology.streamCreated, topology.partitions);
        if (sent && isDuplicateSend(base.received, sent)) continue;
        failures.push(earlier.find((x) => x.op === op) ?? { op, error, cause });
      }
      log.warn({ partition, key: k, err: String(cause) }, 'a record was refused for its size: its operations of this batch fail');
      const f = foldKey(base, [], env);
      if (failures.length > 0) f.failures = failures;
      folds.set(k, f);
      failed.push(f);
    }
    await storeSideOutputs(this.o, [], failed);
  }

  private learnNewKey(wasNew: boolean): void {
    this.newKeyRate += NEW_KEY_ALPHA * ((wasNew ? 1 : 0) - this.newKeyRate);
  }
}
