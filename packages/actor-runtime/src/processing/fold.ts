/**
 * The pure part of processing: folding one key's operations onto its record. No I/O; what
 * must be written, answered and logged is returned for the committer.
 *
 * The record keeps the state as the JSON text KV stores (`json`), never as a live object a
 * handler could have changed: each fold parses its own copy, a handler's outcome is
 * serialized at once (so a state that cannot be stored is that operation's error, not a
 * commit that fails forever), and "changed" means "serializes differently". A handler that
 * mutates its input in place therefore loses nothing, and what the worker caches is exactly
 * what KV holds.
 */
import { DELETE_OPERATION, type AnyActorDefinition, type OperationContext } from '../definition/define-actor.js';
import { isRefusal } from '../definition/refusals.js';
import { CANCEL_TIMER_OPERATION, FIRE_TIMER_OPERATION, validateTimerId, PartitionBlockedError, UnknownActorError, decodePayload } from '../protocol/index.js';
import { cancelledIds, checkTimerCount, nextOccurrence, parseFire, scheduledTimers, timerOfRequest, type EffectOrigin, type FirePayload } from '../effects/effects.js';
import { sendsOf } from './sends.js';
import { EffectsDraft } from './effects-draft.js';
import { type DecodedOp } from './decode.js';
import { checkRecordSize, initialJson, opName, outcomeJson, parseLive, storableInput, UNPARSED } from './fold-json.js';
import { checkKnown, migrateRecord, setVersion, unknownOperationAction, versionOf } from './fold-versions.js';
import { failureOf, touch, type FoldEnv, type KeyFold } from './key-fold.js';
import { fitReceived, isDuplicateSend, trustedSend, withSend } from './send-dedup.js';
import type { CachedRecord } from './record-cache.js';

/** What a handler sees; the `Date` is made only if the handler reads `time`. */
class OpContext implements OperationContext {
  constructor(
    readonly type: string,
    readonly key: string,
    readonly op: string,
    readonly seq: number,
    private readonly ms: number,
    readonly timer?: string,
  ) {}

  get time(): Date {
    return new Date(this.ms);
  }
}

/**
 * Folds one key's operations (stream order) onto a copy of `base`: operations at or below
 * the record's seq are skipped (applied before a crash or hand-over), failures become error
 * results and dead letters, an outcome that leaves the stored JSON as it was writes nothing
 * (a read on a never-written actor creates no record). Sends join the record's outbox and
 * timers its timer list, so both are committed with the state they came with.
 */
export function foldKey(base: CachedRecord, ops: readonly DecodedOp[], env: FoldEnv): KeyFold {
  const rec: CachedRecord = { ...base };
  const fx = new EffectsDraft(base.timers, base.outbox);
  const f: KeyFold = { rec, fx, dirty: false };
  let live: unknown = UNPARSED;
  for (const op of ops) {
    if (op.seq <= rec.seq) continue; // applied before a crash or hand-over: never twice
    // A send applied before, stored again after the duplicate window: never twice either.
    const sent = op.send && trustedSend(op.send, env.salt, env.stream, env.partitions);
    if (sent && isDuplicateSend(rec.received, sent)) continue;
    const def = env.actors.get(op.type);
    // A record a newer version wrote is never overwritten: the partition waits here (not an
    // operation's error, so nothing is answered, kept or dead-lettered).
    if (def && versionOf(rec) > def.version) {
      throw new PartitionBlockedError({ reason: 'newer-record', seq: op.seq, type: op.type, key: op.key, op: op.op, version: def.version, recordVersion: versionOf(rec) });
    }
    try {
      if (!def) {
        if (unknownOperationAction(env, op.type, op.op) === 'wait') {
          throw new PartitionBlockedError({ reason: 'unknown-operation', seq: op.seq, type: op.type, key: op.key, op: op.op, version: 0 });
        }
        throw new UnknownActorError(op.type);
      }
      if (op.op !== DELETE_OPERATION && op.op !== FIRE_TIMER_OPERATION) checkKnown(def, op.op, op, env);
      if (rec.json === null) setVersion(rec, def.version);
      else if (versionOf(rec) < def.version && op.op !== DELETE_OPERATION) {
        // Before any handler sees it (and before a timer or cancel writes it back).
        migrateRecord(f, def, op, env);
        live = UNPARSED;
      }
      const origin: EffectOrigin = { type: op.type, key: op.key, seq: op.seq, time: op.time };
      let resultJson = 'null';
      if (op.op === DELETE_OPERATION) {
        if (rec.json !== null || fx.timerCount > 0) {
          rec.json = null;
          if (fx.timerCount > 0) {
            fx.clearTimers();
            f.timersChanged = true;
          }
          touch(f, op.seq);
        }
        live = UNPARSED;
      } else if (op.op === CANCEL_TIMER_OPERATION) {
        const id = (decodePayload(op.data) as { id?: unknown } | undefined)?.id;
        validateTimerId(id);
        const cancelled = fx.deleteTimer(id);
        if (cancelled) {
          f.timersChanged = true;
          touch(f, op.seq);
        }
        resultJson = JSON.stringify({ cancelled, id });
      } else if (op.op === FIRE_TIMER_OPERATION) {
        live = fire(f, def, op, origin, live, env);
        resultJson = 'null';
      } else if (op.timer) {
        // A client's timer: checked now (operation and input), applied when it fires.
        const inputText = op.data.length === 0 ? undefined : storableInput(decodePayload(op.data));
        def.parseInput(op.op, inputText === undefined ? undefined : (JSON.parse(inputText) as unknown));
        const timer = timerOfRequest(op.timer, op.op, inputText, origin);
        const json = rec.json ?? initialJson(def, env.maxStateBytes);
        const mark = fx.mark();
        try {
          fx.setTimer(timer);
          checkTimerCount(fx.timerCount);
          checkRecordSize(json, fx, env.maxStateBytes);
        } catch (err) {
          fx.rollback(mark);
          throw err;
        }
        rec.json = json;
        f.timersChanged = true;
        touch(f, op.seq);
        resultJson = JSON.stringify({ scheduled: op.op, type: op.type, key: op.key, id: timer.id, at: new Date(timer.at).toISOString() });
      } else {
        const current = live === UNPARSED ? parseLive(rec, def, env) : live;
        live = UNPARSED; // the handler may change `current` in place, and may throw half-way
        const out = applyUser(f, def, current, op.op, decodePayload(op.data), new OpContext(op.type, op.key, op.op, op.seq, op.time), origin, env);
        live = out.live;
        resultJson = out.result;
      }
      if (op.reply || op.hasMsgId) {
        const body = `{"result":${resultJson},"seq":${op.seq}}`;
        if (op.reply) (f.replies ??= []).push({ inbox: op.reply, body });
        if (op.hasMsgId) (f.outcomes ??= []).push({ seq: op.seq, body });
      }
      (f.applied ??= []).push(opName(op.type, op.op));
      if (env.debug) (f.trace ??= []).push({ op, state: rec.json });
    } catch (err) {
      if (err instanceof PartitionBlockedError) throw err;
      live = UNPARSED;
      // The committer answers and keeps the outcome of every failure, and dead-letters those
      // that are no refusal. A send its receiver refuses stays a dead letter: its sender has
      // committed, no caller hears of it, and it is kept for an operator to resubmit.
      (f.failures ??= []).push(failureOf(op, err, !sent && isRefusal(err)));
    }
    if (sent) {
      rec.received = withSend(rec.received, sent, env.partitions);
      touch(f, op.seq);
    }
  }
  fx.finish(rec);
  if (rec.received) rec.received = fitReceived(rec, env.maxStateBytes);
  return f;
}

/**
 * Runs a user operation and takes its outcome: state, result, sends and timers, all checked
 * before any of it is kept (a bad send or timer fails the operation as a bad state does).
 */
function applyUser(f: KeyFold, def: AnyActorDefinition, current: unknown, opName: string, input: unknown, ctx: OperationContext, origin: EffectOrigin, env: FoldEnv): { result: string; live: unknown } {
  const rec = f.rec;
  const before = rec.json ?? initialJson(def, env.maxStateBytes);
  const raw = def.apply(current, opName, input, ctx);
  const out = outcomeJson(raw, env.maxStateBytes);
  const { send, schedule, cancel } = raw as { send?: unknown; schedule?: unknown; cancel?: unknown };
  const sends = sendsOf(send, origin, env);
  const gone = cancelledIds(cancel);
  const added = scheduledTimers(schedule, origin, env.maxStateBytes);
  // Applied to the draft in place (cost: this outcome's timers and sends), undone if they do not fit.
  const fx = f.fx;
  const mark = fx.mark();
  let timersDiffer = added.length > 0;
  try {
    for (const id of gone) if (fx.deleteTimer(id)) timersDiffer = true;
    for (const t of added) fx.setTimer(t);
    checkTimerCount(fx.timerCount);
    for (const s of sends) fx.send(s);
    // Also when the record already holds timers or sends: a growing state must fit beside them.
    if (fx.hasEffects) checkRecordSize(out.state, fx, env.maxStateBytes);
  } catch (err) {
    fx.rollback(mark);
    throw err;
  }
  const changed = out.state !== before;
  // A never-written actor that only sets a timer or sends exists from now on, in its initial state.
  if (changed || ((timersDiffer || sends.length > 0) && rec.json === null)) rec.json = out.state;
  if (timersDiffer) f.timersChanged = true;
  if (changed || timersDiffer || sends.length > 0) touch(f, ctx.seq);
  return { result: out.result, live: out.live };
}

/**
 * A timer firing: the fire message names the timer (id, the seq that set it, its time), so a
 * replaced, cancelled or already fired timer — or a forged message — matches nothing and is
 * ignored, and one due later than the message's stream time is early and ignored too (the
 * owner fires it again). A match is taken off (or moved to its next occurrence) and its
 * operation applied here, or sent when it targets another actor; a failing handler leaves
 * the timer fired (it is a dead letter like any failed operation).
 */
function fire(f: KeyFold, def: AnyActorDefinition, op: DecodedOp, origin: EffectOrigin, live: unknown, env: FoldEnv): unknown {
  const rec = f.rec;
  let payload: FirePayload | null = null;
  try {
    payload = parseFire(decodePayload(op.data));
  } catch {
    payload = null;
  }
  const t = payload ? f.fx.timer(payload.id) : undefined;
  if (!payload || !t || t.n !== payload.n || t.at !== payload.at || op.time < t.at) {
    // Nothing to fire; let the committer check the timer index against the record.
    f.reindex = true;
    return live;
  }
  const nextAt = nextOccurrence(t, op.time);
  if (nextAt === undefined) f.fx.deleteTimer(t.id);
  else f.fx.setTimer({ ...t, at: nextAt });
  f.timersChanged = true;
  touch(f, op.seq);
  const input = t.input === undefined ? undefined : (JSON.parse(t.input) as unknown);
  if (t.type !== op.type || t.key !== op.key) {
    for (const s of sendsOf([{ type: t.type, key: t.key, op: t.op, input }], origin, env)) f.fx.send(s);
    return live;
  }
  const current = live === UNPARSED ? parseLive(rec, def, env) : live;
  try {
    checkKnown(def, t.op, op, env);
    return applyUser(f, def, current, t.op, input, new OpContext(op.type, op.key, t.op, op.seq, op.time, t.id), origin, env).live;
  } catch (err) {
    if (err instanceof PartitionBlockedError) throw err;
    // The dead letter names the operation the timer applied (subject, op and input), not
    // `$fire`: resubmitting it applies that operation (a `$fire` would match no timer).
    const data = t.input === undefined ? new Uint8Array(0) : new TextEncoder().encode(t.input);
    const subject = `${op.subject.slice(0, op.subject.lastIndexOf('.') + 1)}${t.op}`;
    const { timer: _request, ...fired } = op;
    (f.failures ??= []).push(failureOf({ ...fired, op: t.op, subject, data, reply: undefined, hasMsgId: false, names: undefined }, err, isRefusal(err)));
    return UNPARSED;
  }
}
