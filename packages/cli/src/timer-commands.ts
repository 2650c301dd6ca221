/** The timer commands: `schedule`, `timers`, `cancel-timer`. */
import type { Command } from 'commander';
import type { TimerInfo } from '@jetactor/actor-runtime/client';
import { integer, parseInput, type WithBackend } from './args.js';
import { CliError } from './errors.js';
import { show, table } from './output.js';

/** Options of `schedule`. */
interface ScheduleFlags {
  delay?: number;
  at?: string;
  every?: number;
  cron?: string;
  id?: string;
  idempotencyKey?: string;
}

/** Adds the timer commands to `program`. */
export function timerCommands(program: Command, withBackend: WithBackend): void {
  program
    .command('schedule')
    .description('publish an operation to run later, as a timer of the actor; prints the timer id and time')
    .argument('<type>', 'actor type')
    .argument('<key>', 'actor key')
    .argument('<op>', 'operation')
    .argument('[input]', 'operation input as JSON')
    .option('--delay <ms>', 'run it this many ms from now', integer('--delay', 0))
    .option('--at <time>', 'run it at this time: ISO 8601 (e.g. 2030-01-01T09:00:00Z) or ms since the epoch; a past time runs at once')
    .option('--every <ms>', 'recurring: again every this many ms (at least 100)', integer('--every', 1))
    .option('--cron <expr>', "recurring: at each match of this cron expression (5 or 6 fields, UTC), e.g. '0 * * * *'")
    .option('--id <id>', 'timer id (replaces a timer of the same id); default: from the idempotency key, else random')
    .option('-i, --idempotency-key <key>', 'de-duplicates retries (a retry gets the same timer id and time)')
    .action(async (type: string, key: string, op: string, raw: string | undefined, opts: ScheduleFlags, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        if (opts.delay === undefined && opts.at === undefined && opts.every === undefined && opts.cron === undefined) {
          throw new CliError('USAGE', 'give --delay <ms>, --at <time>, --every <ms> or --cron <expr>');
        }
        const r = await b.schedule(type, key, op, parseInput(raw), {
          delayMs: opts.delay,
          at: opts.at,
          every: opts.every,
          cron: opts.cron,
          id: opts.id,
          idempotencyKey: opts.idempotencyKey,
        });
        out.result(r, () => `scheduled ${op} for ${type}/${key} at ${r.at} (timer ${r.id}, seq ${r.seq}${r.duplicate ? ', duplicate' : ''})`);
      }),
    );

  program
    .command('timers')
    .description("list an actor's timers, soonest first")
    .argument('<type>', 'actor type')
    .argument('<key>', 'actor key')
    .action(async (type: string, key: string, _opts: unknown, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        const list = await b.timers(type, key);
        out.result(list, () => (list.timers.length === 0 ? `no timers on ${type}/${key}` : formatTimers(type, key, list.timers)));
      }),
    );

  program
    .command('cancel-timer')
    .description("cancel one of an actor's timers (--wait: until applied, and say whether there was one)")
    .argument('<type>', 'actor type')
    .argument('<key>', 'actor key')
    .argument('<id>', 'timer id (see jetactor timers)')
    .option('--wait', 'wait until the cancel is applied', false)
    .option('-i, --idempotency-key <key>', 'de-duplicates retries')
    .action(async (type: string, key: string, id: string, opts: { wait: boolean; idempotencyKey?: string }, cmd: Command) =>
      withBackend(cmd, async (b, out, g) => {
        const r = await b.cancelTimer(type, key, id, { wait: opts.wait, timeoutMs: g.timeout, idempotencyKey: opts.idempotencyKey });
        out.result(r, () => {
          if (!('result' in r)) return `cancel of timer ${id} sent to ${type}/${key} (seq ${r.seq}${r.duplicate ? ', duplicate' : ''})`;
          const cancelled = r.result === null ? 'cancel applied (outcome no longer kept)' : r.result.cancelled ? 'cancelled' : 'no such timer';
          return `${type}/${key} timer ${id}: ${cancelled} (seq ${r.seq})`;
        });
      }),
    );
}

function formatTimers(type: string, key: string, timers: readonly TimerInfo[]): string {
  return table(
    ['ID', 'AT', 'OP', 'TARGET', 'INPUT', 'REPEAT'],
    timers.map((t) => {
      const target = t.target.type === type && t.target.key === key ? '-' : `${t.target.type}/${t.target.key}`;
      const repeat = t.every !== undefined ? `every ${t.every} ms` : t.cron !== undefined ? `cron ${t.cron}` : '-';
      return [t.id, t.at, t.op, target, t.input === undefined ? '-' : show(t.input, 40), repeat];
    }),
  );
}
