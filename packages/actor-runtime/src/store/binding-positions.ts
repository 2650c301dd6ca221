/** The position of each capture stream's mover in the control bucket (`bindings.pos.<capture>`). */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { BINDING_POS_PREFIX, bindingPositionKey } from '../protocol/index.js';
import { decodeJson, encodeJson } from './records.js';

/** Where a capture stream's mover stands. */
export interface BindingPosition {
  /** The capture stream. */
  stream: string;
  /** Its creation time (ms): a recreated capture stream starts again at seq 1. */
  created: number;
  /** Every capture message up to this seq is stored in the operations stream. */
  seq: number;
  updatedAt: string;
  /** Set while provisioning hands the capture over from the operations stream's sourcing: no mover runs. */
  handover?: true;
}

/** The capture streams that have a position in the control bucket (a mover moves each). */
export async function positionedCaptures(control: KV): Promise<string[]> {
  const out: string[] = [];
  for await (const k of await control.keys(`${BINDING_POS_PREFIX}>`)) out.push(k.slice(BINDING_POS_PREFIX.length));
  return out;
}

/** Captures whose hand-over from the operations stream's sourcing began and did not finish (a provisioning that died). */
export async function handoversUnfinished(control: KV): Promise<string[]> {
  const out: string[] = [];
  for (const capture of await positionedCaptures(control)) {
    const e = await control.get(bindingPositionKey(capture));
    if (e && e.operation === 'PUT' && decodeJson<BindingPosition>(e.value)?.handover) out.push(capture);
  }
  return out;
}

/** Writes a capture's first position (nothing moved yet) unless it has one. */
export async function ensurePosition(control: KV, capture: string, created: number): Promise<void> {
  const value: BindingPosition = { stream: capture, created, seq: 0, updatedAt: new Date().toISOString() };
  await control.create(bindingPositionKey(capture), encodeJson(value)).catch((err: unknown) => {
    if (err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)) return;
    throw err;
  });
}
