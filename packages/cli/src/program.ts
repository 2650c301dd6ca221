import { Command, Option } from 'commander';
import { type ClusterStatus, type DeadLetter } from '@jetactor/actor-runtime/client';
import { whenParentGone } from '@jetactor/actor-runtime/worker';
import { integer, parseInput, type GlobalOptions, type WithBackend } from './args.js';
import type { Backend, Snapshot } from './backend.js';
import { createGatewayBackend } from './backends/gateway-backend.js';
import { createNatsBackend } from './backends/nats-backend.js';
import { CliError } from './errors.js';
import { timerCommands } from './timer-commands.js';
import { createOutput, show, table } from './output.js';
import { CLI_VERSION } from './version.js';

/** Where the CLI reads its environment and writes its output; tests replace them. */
export interface CliIo {
  env?: NodeJS.ProcessEnv;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/** Default timeout of requests, calls and `--min-seq` reads, in ms. */
export const DEFAULT_TIMEOUT_MS = 5_000;

const EXAMPLES = `
Examples:
  $ jetactor signal counter mykey add 3          # publish; prints the operation's seq
  $ jetactor call counter mykey add '{"value":2}' # wait for the result
  $ jetactor get counter mykey
  $ jetactor list counter --prefix my
  $ jetactor watch counter mykey                 # live changes until Ctrl-C
  $ jetactor status                              # workers, partitions, lag
  $ jetactor dlq                                 # failed operations
  $ jetactor schedule counter mykey add 5 --delay 60000   # run add 5 in a minute
  $ jetactor schedule counter mykey add 1 --every 5000 --id tick
  $ jetactor timers counter mykey                # the actor's timers, soonest first
  $ jetactor cancel-timer counter mykey tick --wait
  $ jetactor --gateway http://127.0.0.1:3000 get counter mykey --json

Environment:
  NATS_URL            NATS server(s) (default nats://127.0.0.1:4222); NATS_CREDS, NATS_NKEY_SEED,
                      NATS_USER/NATS_PASS, NATS_TOKEN, NATS_TLS_CA/CERT/KEY as for the worker
  JETACTOR_GATEWAY    use this gateway instead of NATS (as --gateway)
  JETACTOR_TOKEN      bearer token for the gateway (as --token)
`;

/**
 * Builds the `jetactor` program. Each command connects (NATS, or the gateway with
 * `--gateway`), runs, prints and closes; failures print `jetactor: CODE: message` to
 * stderr and set exit code 1.
 */
export function createProgram(io: CliIo = {}): Command {
  const env = io.env ?? process.env;
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;

  const program = new Command('jetactor')
    .description('Signal, call, read, list and watch durable actors on NATS JetStream; schedule operations as timers; see workers, partitions and dead letters.')
    .version(CLI_VERSION, '-V, --version')
    .addOption(new Option('--nats <url>', 'NATS server URL(s), comma-separated (default: $NATS_URL or nats://127.0.0.1:4222)'))
    .addOption(new Option('--gateway <url>', 'talk to a jetactor gateway over HTTP instead of NATS').env('JETACTOR_GATEWAY'))
    .addOption(new Option('--token <token>', 'bearer token for the gateway').env('JETACTOR_TOKEN'))
    .option('--json', 'print JSON (one document, or one line per change for watch)', false)
    .option('--timeout <ms>', 'timeout of requests, calls and --min-seq reads, in ms', integer('--timeout', 1), DEFAULT_TIMEOUT_MS)
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError('(run jetactor --help for usage)');

  /** Runs `work` with a backend and the output, turning failures into exit code 1. */
  const withBackend: WithBackend = async (cmd, work) => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    const out = createOutput(g.json, stdout, stderr);
    let backend: Backend | undefined;
    try {
      if (g.gateway !== undefined && g.nats !== undefined) throw new CliError('USAGE', 'give either --nats or --gateway, not both');
      backend =
        g.gateway !== undefined
          ? createGatewayBackend({ url: g.gateway, token: g.token, timeoutMs: g.timeout })
          : await createNatsBackend({ url: g.nats, env, timeoutMs: g.timeout });
      await work(backend, out, g);
    } catch (err) {
      const code = err instanceof CliError ? err.code : err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'ERROR';
      out.error(code, err instanceof Error ? err.message : String(err));
      process.exitCode = 1;
    } finally {
      await backend?.close().catch(() => undefined);
    }
  };

  program
    .command('signal')
    .description('publish an operation (no waiting for it to be applied); prints its stream seq')
    .argument('<type>', 'actor type, e.g. counter')
    .argument('<key>', 'actor key')
    .argument('<op>', 'operation, e.g. add')
    .argument('[input]', 'operation input as JSON, e.g. 3 or \'{"value":3}\'')
    .option('-i, --idempotency-key <key>', 'de-duplicates retries of the same operation')
    .action(async (type: string, key: string, op: string, raw: string | undefined, opts: { idempotencyKey?: string }, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        const r = await b.signal(type, key, op, parseInput(raw), { idempotencyKey: opts.idempotencyKey });
        out.result({ signaled: op, type, key, seq: r.seq, ...(r.duplicate ? { duplicate: true } : {}) }, () =>
          `signaled ${op} to ${type}/${key} (seq ${r.seq}${r.duplicate ? ', duplicate' : ''})`,
        );
      }),
    );

  program
    .command('call')
    .description('apply an operation and print its result once the state is committed')
    .argument('<type>', 'actor type')
    .argument('<key>', 'actor key')
    .argument('<op>', 'operation')
    .argument('[input]', 'operation input as JSON')
    .option('-i, --idempotency-key <key>', 'de-duplicates retries of the same operation')
    .action(async (type: string, key: string, op: string, raw: string | undefined, opts: { idempotencyKey?: string }, cmd: Command) =>
      withBackend(cmd, async (b, out, g) => {
        const r = await b.call(type, key, op, parseInput(raw), { idempotencyKey: opts.idempotencyKey, timeoutMs: g.timeout });
        out.result({ result: r.result, seq: r.seq, ...(r.duplicate ? { duplicate: true } : {}) }, () =>
          `${show(r.result, 2000)}  (seq ${r.seq}${r.duplicate ? ', duplicate: applied before' : ''})`,
        );
      }),
    );

  program
    .command('get')
    .description("read an actor's state")
    .argument('<type>', 'actor type')
    .argument('<key>', 'actor key')
    .option('--min-seq <seq>', 'wait until the state includes the operation with this seq', integer('--min-seq', 0))
    .action(async (type: string, key: string, opts: { minSeq?: number }, cmd: Command) =>
      withBackend(cmd, async (b, out, g) => {
        const s = await b.get(type, key, { minSeq: opts.minSeq, timeoutMs: g.timeout });
        out.result(s, () => `${type}/${key} = ${show(s.state, 2000)}  (seq ${s.seq}, revision ${s.revision})`);
      }),
    );

  program
    .command('list')
    .description('list the actors of a type, a page at a time in the order of their last update (--all: every actor once, by key)')
    .argument('<type>', 'actor type')
    .option('--prefix <prefix>', 'only keys that start with this')
    .option('--limit <n>', 'actors per page (1-1000)', integer('--limit', 1), 100)
    .option('--cursor <cursor>', 'go on from the nextCursor of the previous page')
    .option('--all', 'follow nextCursor through every page', false)
    .action(async (type: string, opts: { prefix?: string; limit: number; cursor?: string; all: boolean }, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        const items: Snapshot[] = [];
        let cursor = opts.cursor;
        let nextCursor: string | null;
        do {
          const page = await b.list(type, { prefix: opts.prefix, limit: opts.limit, cursor });
          items.push(...page.items);
          nextCursor = page.nextCursor;
          cursor = nextCursor ?? undefined;
        } while (opts.all && nextCursor !== null);
        // Pages follow the order of updates, so an actor updated while paging comes again: keep its newest.
        if (opts.all) items.splice(0, items.length, ...latestByKey(items));
        out.result({ items, nextCursor }, () => {
          if (items.length === 0) return `no ${type} actors${opts.prefix ? ` with prefix '${opts.prefix}'` : ''}`;
          const t = table(['KEY', 'STATE', 'SEQ'], items.map((s) => [s.key, show(s.state, 60), s.seq]));
          return nextCursor === null ? t : `${t}\n… more: --cursor ${nextCursor} (or --all)`;
        });
      }),
    );

  program
    .command('watch')
    .description("print an actor's state changes as they are committed (all actors of the type without a key); Ctrl-C stops")
    .argument('<type>', 'actor type')
    .argument('[key]', 'actor key; omit to watch every actor of the type')
    .option('-n, --count <n>', 'exit after this many changes', integer('--count', 1))
    .option('--updates-only', 'skip the current state; print only later changes (always so without a key)', false)
    .action(async (type: string, key: string | undefined, opts: { count?: number; updatesOnly: boolean }, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        const stream = await b.watch(type, key, { updatesOnly: key === undefined || opts.updatesOnly });
        const stop = (): void => stream.stop();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        // `npx jetactor watch` stopped with a SIGTERM to npx: npx's `sh -c` dies, not this process.
        const unwatchParent = whenParentGone(stop);
        if (!out.json) stderr.write(`watching ${type}/${key ?? '*'} (Ctrl-C to stop)\n`);
        let seen = 0;
        try {
          for await (const c of stream) {
            out.result(c, () =>
              c.deleted
                ? `${new Date(c.updatedAt ?? Date.now()).toLocaleTimeString()}  ${c.type}/${c.key} deleted  (seq ${c.seq})`
                : `${new Date(c.updatedAt ?? Date.now()).toLocaleTimeString()}  ${c.type}/${c.key} = ${show(c.state, 2000)}  (seq ${c.seq})`,
            );
            if (opts.count !== undefined && ++seen >= opts.count) break;
          }
        } finally {
          stream.stop();
          unwatchParent();
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      }),
    );

  timerCommands(program, withBackend);

  program
    .command('status')
    .description('workers, the partitions each owns, checkpoints and lag')
    .action(async (_opts: unknown, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        const s = await b.status();
        out.result(s, () => formatStatus(s));
      }),
    );

  const services = program.command('services').description('the services (workers hosting the same actor types) on this NATS: their types, versions, workers and partitions');
  services
    .command('list', { isDefault: true })
    .description('list the registered services')
    .action(async (_opts: unknown, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        const s = await b.status();
        out.result(s.services ?? [], () => formatServices(s));
      }),
    );
  services
    .command('rm')
    .description('remove a service none of whose workers runs: its registration, leases, checkpoints and the types only it hosted (their operations become dead letters)')
    .argument('<id>', 'the service id (SERVICE column of `services`)')
    .action(async (id: string, _opts: unknown, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        const r = await b.removeService(id);
        out.result(r, () => `removed service ${r.removed}${r.types.length > 0 ? `; types no longer registered: ${r.types.join(', ')}` : ''}`);
      }),
    );

  const dlq = program.command('dlq').description("dead letters: operations the workers could not apply (bad input, a handler's crash, ...); a handler's deliberate refusal is no dead letter");
  dlq
    .command('list', { isDefault: true })
    .description('list dead letters, oldest first')
    .option('--limit <n>', 'dead letters per page (1-1000)', integer('--limit', 1), 100)
    .option('--cursor <dlqSeq>', 'start after this dead letter (the nextCursor of the previous page)', integer('--cursor', 0))
    .action(async (opts: { limit: number; cursor?: number }, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        const page = await b.deadLetters({ limit: opts.limit, cursor: opts.cursor });
        out.result(page, () => formatDeadLetters(page.items, page.nextCursor));
      }),
    );
  dlq
    .command('resubmit')
    .description("publish a dead letter's operation again")
    .argument('<dlqSeq>', 'the dead letter (its DLQ column)', integer('<dlqSeq>', 1))
    .action(async (dlqSeq: number, _opts: unknown, cmd: Command) =>
      withBackend(cmd, async (b, out) => {
        const r = await b.resubmit(dlqSeq);
        out.result({ resubmitted: dlqSeq, seq: r.seq, ...(r.duplicate ? { duplicate: true } : {}) }, () =>
          `resubmitted dead letter ${dlqSeq} as seq ${r.seq}${r.duplicate ? ' (duplicate: resubmitted before)' : ''}`,
        );
      }),
    );

  return program;
}

function formatStatus(s: ClusterStatus): string {
  const members =
    s.members.length === 0
      ? 'no live worker'
      : table(
          ['WORKER', 'PARTITIONS', 'LAG'],
          s.members.map((m) => {
            const lag = s.partitions.filter((p) => p.owner === m.id).reduce((sum, p) => sum + (p.lag ?? 0), 0);
            return [m.id, m.partitions.join(',') || '-', lag];
          }),
        );
  const partitions = table(
    ['PARTITION', 'OWNER', 'CHECKPOINT', 'LAG'],
    s.partitions.map((p) => [p.partition, p.owner ?? '-', p.checkpoint, p.lag ?? '-']),
  );
  // Partitions that wait at an operation their owner must not apply (a record a newer version wrote).
  const waits = (s.blocked ?? []).map(
    (b) => `partition ${b.partition} WAITS at seq ${b.seq} (${b.type}/${b.key} ${b.op}): ${b.reason === 'newer-record' ? `record written by version ${b.recordVersion}, owner runs version ${b.version}` : b.reason}`,
  );
  return [members, partitions, ...(waits.length > 0 ? [waits.join('\n')] : [])].join('\n\n');
}

function formatServices(s: ClusterStatus): string {
  const list = s.services ?? [];
  if (list.length === 0) return 'no service registered';
  return table(
    ['SERVICE', 'TYPES', 'LIVE', 'WORKERS', 'OWNED'],
    list.map((x) => [
      x.id,
      Object.entries(x.types).map(([t, v]) => `${t}@${v}`).join(','),
      x.live ? 'yes' : x.inactive ? `NO, INACTIVE since ${x.seenAt ?? x.registeredAt} (remove it: services rm)` : 'NO (its operations wait)',
      x.members.join(',') || '-',
      `${x.partitions.filter((p) => p.owner !== null).length}/${x.partitions.length}`,
    ]),
  );
}

function formatDeadLetters(items: readonly DeadLetter[], nextCursor: number | null): string {
  if (items.length === 0) return 'no dead letters';
  const t = table(
    ['DLQ', 'SEQ', 'ACTOR', 'OP', 'CODE', 'MESSAGE', 'TIME'],
    items.map((d) => [d.dlqSeq, d.seq, `${d.type}/${d.key}`, d.op, d.code, `${d.resubmitted ? `(resubmitted from ${d.resubmitted}) ` : ''}${d.message.length > 60 ? `${d.message.slice(0, 59)}…` : d.message}`, d.time]),
  );
  return nextCursor === null ? t : `${t}\n… more: --cursor ${nextCursor}`;
}

/** Runs the CLI with `argv` (as `process.argv`); resolves when the command is done. */
export async function run(argv: readonly string[], io: CliIo = {}): Promise<void> {
  await createProgram(io).parseAsync([...argv]);
}

/** One snapshot per key, the newest (highest revision), sorted by key. */
function latestByKey(items: readonly Snapshot[]): Snapshot[] {
  const byKey = new Map<string, Snapshot>();
  for (const s of items) {
    const seen = byKey.get(s.key);
    if (!seen || s.revision > seen.revision) byKey.set(s.key, s);
  }
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
