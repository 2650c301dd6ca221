/**
 * Subject bindings: actors fed by any NATS subject. An actor type that declares
 * `subscribe: [{ subject: 'devices.*.telemetry', key: 1, op: 'reading' }]` gets, per binding,
 * a capture stream `<stream>_BIND_<type>_<hash of the subject>` that listens on the subject and
 * stores each message as `<prefix>.<type>.<key token>.<op>` (a stream subject transform), and a
 * position in the control bucket (`bindings.pos.<capture>`). The worker that owns the capture's
 * partition moves its messages into the operations stream (processing/binding-mover.ts), whose
 * partition transform stores each as `<p>.<prefix>.<type>.<key>.<op>` with the partition of its
 * actor, so the worker reads it like any other operation.
 *
 * Until issue 18 the operations stream sourced the capture streams (nats-server's sourcing). That
 * de-duplicated bound messages by the publisher's `Nats-Msg-Id` against every other publisher's
 * (a collision stalled the binding on 2.10, dropped the message on 2.15) and, on 2.10, resumed a
 * source where a forged `Nats-Stream-Source` header on a direct publish said. Provisioning takes
 * such sources off the operations stream and starts their movers where the sourcing ended.
 *
 * Why one capture stream per binding with the transform on it: a changed key or op is an update
 * of the capture's transform, taking effect for the next captured message, and the position (a
 * capture sequence) is untouched.
 *
 * A removed binding's capture stream is parked (it stops listening: its only subject becomes its
 * own name), never deleted: what it still holds is moved, and its sequence numbers (which its
 * position refers to) survive for a later return of the binding.
 */
import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { nanos } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { AnyActorDefinition, SubjectBinding } from '../definition/define-actor.js';
import { BINDING_POS_PREFIX, BINDINGS_LOCK_KEY, bindingPositionKey, ConfigError, partitionOf, STREAM_SOURCE_HEADER, type ActorNames } from '../protocol/index.js';
import type { BindingPosition } from '../processing/binding-mover.js';
import { decodeJson, encodeJson } from './records.js';
import type { Topology, TopologyOptions } from './provision.js';

/** One provisioned binding: messages on `subject` become operation `op` of actor `<type>.<token key>`. */
export interface ProvisionedBinding extends SubjectBinding {
  type: string;
  /** The capture stream that listens on `subject`. */
  stream: string;
}

/** What {@link provisionBindings} did. */
export interface BindingsResult {
  /** The bindings of the hosted types, each with its capture stream. */
  bindings: ProvisionedBinding[];
  /** Capture streams of hosted types whose binding is gone: they no longer listen. */
  parked: string[];
}

/** Options of {@link provisionBindings}. */
export interface ProvisionBindingsOptions {
  /** Who holds the provisioning lock (a worker id); shown to the others while they wait. */
  owner: string;
  /** Logger for what was created, updated and parked. */
  log?: Logger;
  /** How long to wait for another process's provisioning, ms. Default 30000. */
  lockTimeoutMs?: number;
}

/** How long the update that takes the capture streams off the operations stream's sources may take (ms). */
const SOURCE_UPDATE_TIMEOUT_MS = 120_000;
/** A lock whose revision has not changed for this long is taken over (its holder died). */
const LOCK_STALE_MS = 10_000;
/** nats-server's error code for a stream whose subjects overlap another stream's. */
const SUBJECTS_OVERLAP = 10065;
/** Room left in a message below the operations stream's limit (which is the payload bound + 4096) for the msg id a mover adds. */
const SOURCE_HEADER_ROOM = 2048;

/** Name of the capture stream of a binding: `<stream>_BIND_<type>_<FNV-1a of the subject, 8 hex digits>`. */
export function captureStreamName(names: Pick<ActorNames, 'stream'>, type: string, subject: string): string {
  // partitionOf mod 2^32 is the plain 32-bit FNV-1a hash of '' + subject.
  return `${names.stream}_BIND_${type}_${partitionOf('', subject, 0x1_0000_0000).toString(16).padStart(8, '0')}`;
}

/** The actor type whose binding `capture` is (`<stream>_BIND_<type>_<8 hex digits>`), or undefined for another name. */
export function captureType(names: Pick<ActorNames, 'stream'>, capture: string): string | undefined {
  const prefix = `${names.stream}_BIND_`;
  const m = /^(.+)_[0-9a-f]{8}$/.exec(capture.slice(prefix.length));
  return capture.startsWith(prefix) && m ? m[1] : undefined;
}

function isCaptureOf(names: Pick<ActorNames, 'stream'>, type: string, stream: string): boolean {
  const prefix = `${names.stream}_BIND_${type}_`;
  return stream.startsWith(prefix) && /^[0-9a-f]{8}$/.test(stream.slice(prefix.length));
}

/** The capture stream's transform: the binding subject to `<prefix>.<type>.{{wildcard(key)}}.<op>`. */
export function bindingTransform(names: Pick<ActorNames, 'subjectPrefix'>, type: string, b: SubjectBinding): { src: string; dest: string } {
  return { src: b.subject, dest: `${names.subjectPrefix}.${type}.{{wildcard(${b.key})}}.${b.op}` };
}

/** True if some subject matches both `a` and `b` (NATS wildcards `*` and `>`). */
export function subjectsCollide(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    const s = x[i];
    const t = y[i];
    if (s === undefined || t === undefined) return s === t;
    if (s === '>' || t === '>') return true;
    if (s !== t && s !== '*' && t !== '*') return false;
  }
}

/** The capture stream of one binding. */
function captureConfig(opts: TopologyOptions, type: string, b: SubjectBinding): Partial<StreamConfig> & { name: string } {
  // Kept a little less long than the operations stream keeps what it applied (retainMs): once
  // the operations stream has purged every message it sourced from a capture, the capture holds
  // only what was never sourced, so a source that must start over from the capture's first
  // message (2.10 keeps no resume position once those messages are purged) applies nothing
  // twice. The cost: a message the operations stream refuses for that long (full) is lost.
  // nats-server's floor for max_age is 100 ms.
  const maxAgeMs = Math.max(100, opts.retainMs - Math.min(60_000, Math.floor(opts.retainMs / 10)));
  return {
    name: captureStreamName(opts.names, type, b.subject),
    description: `jetactor binding: ${b.subject} -> ${opts.names.subjectPrefix}.${type}.<token ${b.key}>.${b.op}`,
    subjects: [b.subject],
    subject_transform: bindingTransform(opts.names, type, b),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.New,
    max_age: nanos(maxAgeMs),
    max_bytes: opts.maxBytes > 0 ? opts.maxBytes : -1,
    max_msg_size: opts.maxPayloadBytes + SOURCE_HEADER_ROOM,
    num_replicas: opts.replicas,
    duplicate_window: nanos(Math.min(opts.duplicateWindowMs, maxAgeMs)),
    metadata: {
      'jetactor.binding.type': type,
      'jetactor.binding.subject': b.subject,
      'jetactor.binding.key': String(b.key),
      'jetactor.binding.op': b.op,
    },
  };
}

/** The fields of a capture's config that provisioning sets; a difference in any is updated. */
const MANAGED_FIELDS = ['description', 'subjects', 'subject_transform', 'discard', 'max_age', 'max_bytes', 'max_msg_size', 'num_replicas', 'duplicate_window', 'metadata'] as const;

function differs(have: Partial<StreamConfig>, want: Partial<StreamConfig>): boolean {
  return MANAGED_FIELDS.some((f) => JSON.stringify(have[f] ?? null) !== JSON.stringify(want[f] ?? null));
}

/** Checks what needs no server: subjects the runtime uses itself, and bindings that overlap each other. */
function checkBindings(names: ActorNames, actors: readonly AnyActorDefinition[]): Array<{ type: string; b: SubjectBinding }> {
  const reserved = [names.subjectPrefix, `${names.subjectPrefix}_dlq`, names.inboxPrefix.split('.')[0]];
  const all: Array<{ type: string; b: SubjectBinding }> = [];
  for (const def of actors) {
    for (const b of def.subscribe) {
      const root = b.subject.split('.')[0] as string;
      if (reserved.includes(root)) {
        throw new ConfigError(`binding '${b.subject}' of actor '${def.type}': subjects under '${root}.' are the runtime's own (operations, dead letters, inboxes)`);
      }
      const other = all.find((o) => subjectsCollide(o.b.subject, b.subject));
      if (other) {
        throw new ConfigError(
          `binding '${b.subject}' of actor '${def.type}' overlaps binding '${other.b.subject}' of actor '${other.type}': ` +
            'a message on both would be captured twice; make the subjects disjoint',
        );
      }
      all.push({ type: def.type, b });
    }
  }
  return all;
}

/**
 * Names the stream a refused binding overlaps (nats-server says only "subjects overlap with an
 * existing stream"). Asked only once the server refused, so a worker whose capture streams exist
 * needs no permission to list streams. Always throws.
 */
async function explainOverlap(jsm: JetStreamManager, { type, b }: { type: string; b: SubjectBinding }, own: string, cause: Error): Promise<never> {
  let other: { name: string; subject: string } | undefined;
  try {
    for await (const si of jsm.streams.list(b.subject)) {
      if (si.config.name === own) continue;
      const subjects = si.config.subjects ?? [];
      other = { name: si.config.name, subject: subjects.find((x) => subjectsCollide(x, b.subject)) ?? subjects.join(', ') };
      break;
    }
  } catch {
    // No permission to list streams: say what the server said.
  }
  const where = other ? `stream '${other.name}' (subject '${other.subject}')` : `an existing stream (${cause.message})`;
  throw new ConfigError(`binding '${b.subject}' of actor '${type}' overlaps ${where}: NATS stores a message in one stream only; remove the overlap or bind another subject`, undefined, { cause });
}

/** Creates the capture stream or brings its managed fields to `want`; resolves with its creation time (ms). */
async function ensureCapture(jsm: JetStreamManager, binding: { type: string; b: SubjectBinding }, want: Partial<StreamConfig> & { name: string }, log?: Logger): Promise<number> {
  let have: StreamConfig | null = null;
  let created = 0;
  try {
    const info = await jsm.streams.info(want.name);
    have = info.config;
    created = Date.parse(info.created);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
  }
  if (!have) {
    try {
      const info = await jsm.streams.add(want);
      log?.info({ stream: want.name, subject: want.subjects?.[0] }, 'binding capture stream created');
      return Date.parse(info.created);
    } catch (err) {
      if (!(err instanceof JetStreamApiError)) throw err;
      if (err.code === SUBJECTS_OVERLAP) await explainOverlap(jsm, binding, want.name, err);
      const info = await jsm.streams.info(want.name);
      have = info.config;
      created = Date.parse(info.created);
    }
  }
  const subject = have.metadata?.['jetactor.binding.subject'];
  if (subject !== undefined && subject !== want.metadata?.['jetactor.binding.subject']) {
    throw new ConfigError(`stream ${want.name} belongs to the binding '${subject}', not '${want.metadata?.['jetactor.binding.subject']}' (a hash collision of the two subjects): rename one`);
  }
  if (differs(have, want)) {
    await jsm.streams.update(want.name, { ...have, ...want }).catch(async (err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === SUBJECTS_OVERLAP) await explainOverlap(jsm, binding, want.name, err);
      throw err;
    });
    log?.info({ stream: want.name, subject: want.subjects?.[0], transform: want.subject_transform }, 'binding capture stream updated');
  }
  return created;
}

/** Stops a capture stream listening (its subject becomes its own name); what it holds is still moved. */
async function park(jsm: JetStreamManager, name: string, log?: Logger): Promise<boolean> {
  const have = (await jsm.streams.info(name)).config;
  if (have.subjects?.length === 1 && have.subjects[0] === name && !have.subject_transform) return false;
  await jsm.streams.update(name, { ...have, subjects: [name], subject_transform: undefined });
  log?.info({ stream: name, was: have.subjects }, 'binding removed: its capture stream no longer listens');
  return true;
}

/**
 * Takes the provisioning lock in the control bucket for `fn`: capture streams are created and
 * updated, and the operations stream's sources are read, changed and written back (nats-server has
 * no compare-and-set for a stream update). A lock whose revision stays the
 * same for {@link LOCK_STALE_MS} (its holder died) is taken over.
 */
async function withLock<T>(control: KV, owner: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const value = encodeJson({ owner, at: new Date().toISOString() });
  const deadline = performance.now() + timeoutMs;
  let seen = null as { rev: number; since: number } | null;
  let rev = 0;
  for (;;) {
    rev = await control.create(BINDINGS_LOCK_KEY, value).catch((err: unknown) => {
      if (err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)) return 0;
      throw err;
    });
    if (rev > 0) break;
    const e = await control.get(BINDINGS_LOCK_KEY);
    const now = performance.now();
    if (e && e.operation === 'PUT') {
      if (seen?.rev !== e.revision) seen = { rev: e.revision, since: now };
      else if (now - seen.since >= LOCK_STALE_MS) rev = await control.update(BINDINGS_LOCK_KEY, value, e.revision).catch(() => 0);
    }
    if (rev > 0) break;
    if (now > deadline) {
      throw new ConfigError(`the subject bindings could not be provisioned: ${BINDINGS_LOCK_KEY} in the control bucket is held (${e ? new TextDecoder().decode(e.value) : 'released'})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Held for long (a hand-over scans the operations stream's headers): renewed, so that nobody
  // takes it over as stale meanwhile.
  let renewing = Promise.resolve();
  const renew = setInterval(() => {
    renewing = renewing.then(async () => {
      rev = await control.update(BINDINGS_LOCK_KEY, value, rev).catch(() => rev);
    });
  }, LOCK_STALE_MS / 4);
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    await renewing;
    await control.delete(BINDINGS_LOCK_KEY, { previousSeq: rev }).catch(() => undefined);
  }
}

/** True for the name of any type's capture stream (the operations stream sourced them before the movers). */
function isAnyCapture(names: Pick<ActorNames, 'stream'>, stream: string): boolean {
  return stream.startsWith(`${names.stream}_BIND_`);
}

/** The capture streams that have a position in the control bucket (a mover moves each). */
async function positionedCaptures(control: KV): Promise<string[]> {
  const out: string[] = [];
  for await (const k of await control.keys(`${BINDING_POS_PREFIX}>`)) out.push(k.slice(BINDING_POS_PREFIX.length));
  return out;
}

/** Captures whose hand-over from the operations stream's sourcing began and did not finish (a provisioning that died). */
async function handoversUnfinished(control: KV): Promise<string[]> {
  const out: string[] = [];
  for (const capture of await positionedCaptures(control)) {
    const e = await control.get(bindingPositionKey(capture));
    if (e && e.operation === 'PUT' && decodeJson<BindingPosition>(e.value)?.handover) out.push(capture);
  }
  return out;
}

/** Writes a capture's first position (nothing moved yet) unless it has one. */
async function ensurePosition(control: KV, capture: string, created: number): Promise<void> {
  const value: BindingPosition = { stream: capture, created, seq: 0, updatedAt: new Date().toISOString() };
  await control.create(bindingPositionKey(capture), encodeJson(value)).catch((err: unknown) => {
    if (err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)) return;
    throw err;
  });
}

/**
 * The capture seq of the last message the operations stream holds from each of `captures`, by the
 * `Nats-Stream-Source` header nats-server put on what it sourced (`<capture> <seq> <filter> <dest>`):
 * what the server itself reads, newest first, to resume a source on 2.10. One pass over the
 * stream's headers (an ordered consumer, headers only), once per deployment.
 */
async function lastSourced(jsm: JetStreamManager, stream: string, captures: ReadonlySet<string>, first: number, last: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (last === 0 || last < first) return out;
  const consumer = await jsm.jetstream().consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: first, headers_only: true });
  try {
    let seq = first - 1;
    while (seq < last) {
      const batch = await consumer.fetch({ max_messages: 10_000, expires: 2000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        seq = m.seq;
        let source = '';
        try {
          source = m.headers?.get(STREAM_SOURCE_HEADER) ?? '';
        } catch {
          // Malformed headers: not the server's.
        }
        const [name, at] = source.split(' ');
        if (name !== undefined && captures.has(name) && at !== undefined && /^\d{1,15}$/.test(at)) out.set(name, Number(at));
        if (seq >= last) batch.stop();
      }
      if (got === 0) break; // purged meanwhile: nothing more to read
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return out;
}

/**
 * Hands capture streams that the operations stream sources (made by a version before the binding
 * movers) over to the movers: removes them from its sources, which stops the sourcing, then writes
 * each capture's position where the sourcing ended (the last capture seq the operations stream holds
 * a copy of; with none, before the capture's first message, as nats-server 2.10 itself resumes),
 * never below a position already written.
 */
async function handOverSources(topo: Pick<Topology, 'jsm' | 'control'> & Partial<Pick<Topology, 'nc'>>, opts: TopologyOptions, config: StreamConfig, captures: string[], log?: Logger): Promise<void> {
  const { jsm, control } = topo;
  const { names } = opts;
  // First a position that stops every mover (`handover`), so that nothing moves these captures,
  // nor starts them from their first message, until their place is known; a hand-over that dies
  // midway is done again by the next provisioning (it finds these).
  for (const capture of captures) {
    const key = bindingPositionKey(capture);
    // A mover of this capture (an older worker sourced it again) may write its position meanwhile: read again.
    for (let attempt = 0; ; attempt++) {
      const e = await control.get(key);
      const had = e && e.operation === 'PUT' ? decodeJson<BindingPosition>(e.value) : null;
      if (had?.handover) break;
      const value = encodeJson({ stream: capture, created: had?.created ?? 0, seq: had?.seq ?? 0, handover: true, updatedAt: new Date().toISOString() } satisfies BindingPosition);
      const written = await (e ? control.update(key, value, e.revision) : control.create(key, value)).then(
        () => true,
        (err: unknown) => {
          if (attempt < 5 && err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)) return false;
          throw err;
        },
      );
      if (written) break;
    }
  }
  const sourced = (config.sources ?? []).filter((x) => captures.includes(x.name));
  let state = (await jsm.streams.info(names.stream)).state;
  if (sourced.length > 0) {
    // Removing sources from a large stream can take the server seconds: longer than a request's default timeout.
    const updater = topo.nc ? await jetstreamManager(topo.nc, { timeout: SOURCE_UPDATE_TIMEOUT_MS }) : jsm;
    state = (await updater.streams.update(names.stream, { ...config, sources: (config.sources ?? []).filter((x) => !captures.includes(x.name)) })).state;
  }
  const last = await lastSourced(jsm, names.stream, new Set(captures), state.first_seq, state.last_seq);
  for (const capture of captures) {
    let ci;
    try {
      ci = await jsm.streams.info(capture);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) continue;
      throw err;
    }
    const created = Date.parse(ci.created);
    // Read after the sourcing stopped: a forged header naming a seq the capture never had is ignored.
    const found = last.get(capture);
    let seq = found === undefined ? Math.max(0, ci.state.first_seq - 1) : Math.min(found, ci.state.last_seq);
    const key = bindingPositionKey(capture);
    const e = await control.get(key);
    const had = e && e.operation === 'PUT' ? decodeJson<BindingPosition>(e.value) : null;
    if (had && had.created === created) seq = Math.max(seq, had.seq);
    // Without `handover`: its mover may start.
    const value = encodeJson({ stream: capture, created, seq, updatedAt: new Date().toISOString() } satisfies BindingPosition);
    if (e) await control.update(key, value, e.revision);
    else await control.create(key, value);
    log?.info({ capture, seq, found: found ?? null }, 'binding capture stream no longer sourced by the operations stream: its mover goes on after seq');
  }
}

/**
 * Provisions the subject bindings of the hosted actor types (idempotent; safe to run from
 * several workers at once): refuses bindings that overlap each other or the runtime's subjects,
 * creates or updates each binding's capture stream (one that overlaps another stream is refused
 * with a {@link ConfigError} naming that stream and its subject), gives each a position in the
 * control bucket (`bindings.pos.<capture>`, from the capture's first message), which the worker
 * owning the capture's partition moves on (processing/binding-mover.ts), and parks the capture
 * streams of the hosted types' removed bindings. Capture streams that the operations stream still
 * sources (a deployment made before the movers) are taken off its sources and get a position where
 * the sourcing ended. A worker whose types have no bindings, and never had, makes one stream info
 * request and one key listing; one whose capture streams are as they should be, also one info
 * request per capture stream and a lock round trip in the control bucket.
 */
export async function provisionBindings(
  topo: Pick<Topology, 'jsm' | 'control'> & Partial<Pick<Topology, 'nc'>>,
  opts: TopologyOptions,
  actors: readonly AnyActorDefinition[],
  po: ProvisionBindingsOptions,
): Promise<BindingsResult> {
  const { names } = opts;
  const { jsm, control } = topo;
  const wanted = checkBindings(names, actors).map(({ type, b }) => ({ type, b, config: captureConfig(opts, type, b) }));
  const sourced = async () => {
    const config = (await jsm.streams.info(names.stream)).config;
    return { config, captures: (config.sources ?? []).map((s) => s.name).filter((n) => isAnyCapture(names, n)) };
  };
  const stale = (captures: string[]) => captures.filter((n) => actors.some((d) => isCaptureOf(names, d.type, n)) && !wanted.some((w) => w.config.name === n));
  if (wanted.length === 0 && (await sourced()).captures.length === 0 && stale(await positionedCaptures(control)).length === 0 && (await handoversUnfinished(control)).length === 0) {
    return { bindings: [], parked: [] };
  }
  return withLock(control, po.owner, po.lockTimeoutMs ?? 30_000, async () => {
    const created = new Map<string, number>();
    for (const w of wanted) created.set(w.config.name, await ensureCapture(jsm, w, w.config, po.log));
    const { config, captures } = await sourced();
    const unfinished = await handoversUnfinished(control);
    const handOver = [...new Set([...captures, ...unfinished])];
    if (handOver.length > 0) await handOverSources(topo, opts, config, handOver, po.log);
    for (const w of wanted) await ensurePosition(control, w.config.name, created.get(w.config.name) as number);
    const parked: string[] = [];
    for (const n of stale(await positionedCaptures(control))) if (await park(jsm, n, po.log)) parked.push(n);
    return { bindings: wanted.map((w) => ({ type: w.type, ...w.b, stream: w.config.name })), parked };
  });
}
