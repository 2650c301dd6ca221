/** Names of subject bindings' capture streams, and the checks of bindings that need no server (see bindings.ts). */
import type { AnyActorDefinition, SubjectBinding } from '../definition/define-actor.js';
import { ConfigError, partitionOf, type ActorNames } from '../protocol/index.js';

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

/** True for the name of a capture stream of `type`'s bindings. */
export function isCaptureOf(names: Pick<ActorNames, 'stream'>, type: string, stream: string): boolean {
  const prefix = `${names.stream}_BIND_${type}_`;
  return stream.startsWith(prefix) && /^[0-9a-f]{8}$/.test(stream.slice(prefix.length));
}

/** True for the name of any type's capture stream (the operations stream sourced them before the movers). */
export function isAnyCapture(names: Pick<ActorNames, 'stream'>, stream: string): boolean {
  return stream.startsWith(`${names.stream}_BIND_`);
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

/** Checks what needs no server: subjects the runtime uses itself, and bindings that overlap each other. */
export function checkBindings(names: ActorNames, actors: readonly AnyActorDefinition[]): Array<{ type: string; b: SubjectBinding }> {
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
