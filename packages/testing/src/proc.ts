/**
 * Reading the process table (Linux /proc): for tests that check what a process left running.
 */
import { readFileSync } from 'node:fs';

/** Whether process `pid` runs; a zombie (exited, not yet reaped) counts as gone. */
export function processRuns(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '';
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The pids of the children of process `pid`; none when it is gone. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
