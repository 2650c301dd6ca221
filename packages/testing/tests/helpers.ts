import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A stream/bucket name no other test uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** The state letter of `pid` in /proc (`R`, `S`, `T` stopped, `Z` zombie…), if it exists. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name, is the state.
    const end = stat.lastIndexOf(')');
    return stat.slice(end + 2, end + 3);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process (a zombie counts as dead: it waits for its parent to reap it). */
export function isAlive(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z';
}
