/**
 * Every key of the control bucket (`actors_ctl`): builders, and one parser
 * {@link parseControlKey} that tells the kind of any key.
 *
 * | key | what |
 * |---|---|
 * | `members.<id>` | a worker's heartbeat |
 * | `leases.<p>`, `leases.<lane>.<p>` | partition p's lease (the default lane keeps the single-service key) |
 * | `checkpoints.<p>`, `checkpoints.<lane>.<p>` | partition p's checkpoint |
 * | `lanes.<id>` | a registered lane (service): its types and versions |
 * | `types.<type>` | a registered actor type (the gateway's registry) |
 * | `unsent.<p>.<type>.<key>` | marker: the record holds sends a full stream refused |
 * | `bindings.pos.<capture>` | a capture stream's position (binding movers) |
 * | `bindings.lock` | the subject bindings' provisioning lock |
 * | `retention` | the retention loop's last purge |
 * | `salt` | the deployment's salt of msg ids and MACs |
 */

/** Id of the lane whose leases and checkpoints keep the keys of the single-service layout. */
export const DEFAULT_LANE = 'default';

/** Prefixes of the keyed kinds (each ends with `.`; watch `<prefix>>`). */
export const ControlPrefix = {
  Member: 'members.',
  Lease: 'leases.',
  Checkpoint: 'checkpoints.',
  Lane: 'lanes.',
  Type: 'types.',
  Unsent: 'unsent.',
  BindingPosition: 'bindings.pos.',
} as const;

/** Prefix of the registry's keys: `types.<type>`. */
export const TYPE_KEY_PREFIX = ControlPrefix.Type;
/** Prefix of the capture streams' positions: `bindings.pos.<capture stream>`. */
export const BINDING_POS_PREFIX = ControlPrefix.BindingPosition;

/** Control key of an actor type's registration: `types.<type>`. */
export function typeKey(type: string): string {
  return `${TYPE_KEY_PREFIX}${type}`;
}

/** Control key of a capture stream's position: `bindings.pos.<capture>`. */
export function bindingPositionKey(capture: string): string {
  return `${BINDING_POS_PREFIX}${capture}`;
}

/** The key of the subject bindings' provisioning lock. */
export const BINDINGS_LOCK_KEY = 'bindings.lock';
/** The key of the retention loop's last purge. */
export const RETENTION_KEY = 'retention';
/** The key of the deployment's salt. */
export const SALT_KEY = 'salt';

/**
 * The key of partition `p`'s lease or checkpoint for `lane`: the default lane keeps the keys of
 * the single-service layout (`leases.<p>`), so a store written before lanes is read as is.
 */
function unitKey(prefix: string, p: number, lane?: string): string {
  return lane === undefined || lane === DEFAULT_LANE ? `${prefix}${p}` : `${prefix}${lane}.${p}`;
}

/** Parses a lease or checkpoint key (`<prefix><p>` or `<prefix><lane>.<p>`); lane undefined for the default lane. */
export function parseUnitKey(prefix: string, key: string): { lane?: string; partition: number } | null {
  if (!key.startsWith(prefix)) return null;
  const rest = key.slice(prefix.length);
  const dot = rest.lastIndexOf('.');
  const ptext = dot < 0 ? rest : rest.slice(dot + 1);
  if (!/^\d+$/.test(ptext)) return null;
  const partition = Number(ptext);
  if (dot < 0) return { partition };
  const lane = rest.slice(0, dot);
  return lane === DEFAULT_LANE ? { partition } : { lane, partition };
}

/** Control bucket keys. */
export const controlKeys = {
  member: (id: string) => `${ControlPrefix.Member}${id}`,
  lease: (p: number, lane?: string) => unitKey(ControlPrefix.Lease, p, lane),
  checkpoint: (p: number, lane?: string) => unitKey(ControlPrefix.Checkpoint, p, lane),
  /** A registered lane (service): its types and versions. */
  lane: (id: string) => `${ControlPrefix.Lane}${id}`,
  /** A registered actor type. */
  type: typeKey,
  /** Marker: the record of `stateKey` (partition p) holds sends a full stream refused. */
  unsent: (p: number, stateKey: string) => `${ControlPrefix.Unsent}${p}.${stateKey}`,
  /** A capture stream's position. */
  bindingPosition: bindingPositionKey,
  bindingsLock: BINDINGS_LOCK_KEY,
  /** The retention loop's last purge. */
  retention: RETENTION_KEY,
  salt: SALT_KEY,
} as const;

/** A control key, parsed. `lane` is absent for the default lane. */
export type ControlKey =
  | { kind: 'member'; id: string }
  | { kind: 'lease'; partition: number; lane?: string }
  | { kind: 'checkpoint'; partition: number; lane?: string }
  | { kind: 'lane'; id: string }
  | { kind: 'type'; type: string }
  | { kind: 'unsent'; partition: number; stateKey: string }
  | { kind: 'bindingPosition'; capture: string }
  | { kind: 'bindingsLock' }
  | { kind: 'retention' }
  | { kind: 'salt' };

/** Builds the key of a parsed {@link ControlKey}: `buildControlKey(parseControlKey(k)) === k` for every key it parses. */
export function buildControlKey(k: ControlKey): string {
  switch (k.kind) {
    case 'member':
      return controlKeys.member(k.id);
    case 'lease':
      return controlKeys.lease(k.partition, k.lane);
    case 'checkpoint':
      return controlKeys.checkpoint(k.partition, k.lane);
    case 'lane':
      return controlKeys.lane(k.id);
    case 'type':
      return controlKeys.type(k.type);
    case 'unsent':
      return controlKeys.unsent(k.partition, k.stateKey);
    case 'bindingPosition':
      return controlKeys.bindingPosition(k.capture);
    case 'bindingsLock':
      return BINDINGS_LOCK_KEY;
    case 'retention':
      return RETENTION_KEY;
    case 'salt':
      return SALT_KEY;
  }
}

/** The part of `key` after `prefix`, when it starts with it and something follows. */
function rest(key: string, prefix: string): string | undefined {
  return key.startsWith(prefix) && key.length > prefix.length ? key.slice(prefix.length) : undefined;
}

/** Tells what a control key is; null for a key of no known kind. */
export function parseControlKey(key: string): ControlKey | null {
  if (key === BINDINGS_LOCK_KEY) return { kind: 'bindingsLock' };
  if (key === RETENTION_KEY) return { kind: 'retention' };
  if (key === SALT_KEY) return { kind: 'salt' };
  let r: string | undefined;
  if ((r = rest(key, ControlPrefix.Member)) !== undefined) return { kind: 'member', id: r };
  if ((r = rest(key, ControlPrefix.Lane)) !== undefined) return { kind: 'lane', id: r };
  if ((r = rest(key, ControlPrefix.Type)) !== undefined) return { kind: 'type', type: r };
  if ((r = rest(key, ControlPrefix.BindingPosition)) !== undefined) return { kind: 'bindingPosition', capture: r };
  for (const kind of ['lease', 'checkpoint'] as const) {
    const u = parseUnitKey(kind === 'lease' ? ControlPrefix.Lease : ControlPrefix.Checkpoint, key);
    if (u !== null) return { kind, ...u };
  }
  if ((r = rest(key, ControlPrefix.Unsent)) !== undefined) {
    const dot = r.indexOf('.');
    const p = r.slice(0, dot);
    if (dot > 0 && /^\d+$/.test(p) && dot < r.length - 1) return { kind: 'unsent', partition: Number(p), stateKey: r.slice(dot + 1) };
  }
  return null;
}
