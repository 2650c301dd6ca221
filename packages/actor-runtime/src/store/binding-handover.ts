/** Hands capture streams that the operations stream sources (made before the movers) over to the movers. */
import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { bindingPositionKey, STREAM_SOURCE_HEADER } from '../protocol/index.js';
import type { BindingPosition } from './binding-positions.js';
import type { Topology } from './provision.js';
import { decodeJson, encodeJson } from './records.js';
import type { TopologyOptions } from './topology-options.js';

/** How long the update that takes the capture streams off the operations stream's sources may take (ms). */
const SOURCE_UPDATE_TIMEOUT_MS = 120_000;

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
export async function handOverSources(topo: Pick<Topology, 'jsm' | 'control'> & Partial<Pick<Topology, 'nc'>>, opts: TopologyOptions, config: StreamConfig, captures: string[], log?: Logger): Promise<void> {
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
