/** The bench's command line (see main.ts for what each option does). */
import { join, resolve } from 'node:path';

/** Sections of a run, in the order they run. */
export const SECTIONS = ['raw', 'apply', 'services', 'latency', 'http', 'list', 'timers', 'durability', 'peers', 'soak'] as const;
/** A section of the suite. */
export type Section = (typeof SECTIONS)[number];
/**
 * Sections that run unless `--only` says otherwise: all but `peers`, which needs `--peers`,
 * `soak` (an hour by default), which needs `--only=soak`, and `services` (about 4 minutes),
 * which needs `--only=services` (with `raw` for its limits: `--only=raw,services`).
 */
export const DEFAULT_SECTIONS: readonly Section[] = SECTIONS.filter((s) => s !== 'peers' && s !== 'soak' && s !== 'services');

/** Default length of the soak section, in minutes. */
export const DEFAULT_SOAK_MINUTES = 60;
/** Longest soak the option accepts: a week, in minutes. */
export const MAX_SOAK_MINUTES = 7 * 24 * 60;

/** Parsed options. */
export interface Args {
  quick: boolean;
  only: Set<Section>;
  /** nats-server binaries, one run of the suite each; empty: the default binary. */
  servers: string[];
  out: string;
  markdown: string | null;
  cpuProf: boolean;
  nice: number | null;
  /** Apply-rate scenarios to run, by key count (`--apply-keys=1,1000`); null: all of the run's sizes. */
  applyKeys: number[] | null;
  /** Length of the soak section (`--minutes=N`), in minutes. */
  minutes: number;
  /**
   * Seconds between two samples of the soak (hidden `--sample-seconds=N`, default 60: a sample
   * a minute); shorter only to try the section out in a few minutes.
   */
  sampleSeconds: number;
}

export const USAGE =
  'usage: node packages/bench/dist/main.js [--quick] [--only=raw,apply,services,latency,http,list,timers,durability,peers,soak] [--peers]\n' +
  '         [--nats-server PATH [--nats-server PATH2 ...]] [--out=PATH] [--markdown=PATH] [--cpu-prof] [--nice=N] [--apply-keys=1,1000,100000]\n' +
  `         [--minutes=N]   (the soak's length, default ${DEFAULT_SOAK_MINUTES}; soak runs only with --only=soak)\n` +
  '         (services, one vs two services sharing the stream, runs only when --only names it: --only=raw,services)\n' +
  '       npm run bench -- [same options] [--servers=2.10,testing]   (scripts/bench.mjs finds or fetches each server)\n';

/** Parses the arguments; throws with a message that names the bad one. */
export function parseArgs(argv: readonly string[], root: string): Args {
  const args: Args = {
    quick: false,
    only: new Set(DEFAULT_SECTIONS),
    servers: [],
    out: join(root, 'bench-results/latest.json'),
    markdown: null,
    cpuProf: false,
    nice: null,
    applyKeys: null,
    minutes: DEFAULT_SOAK_MINUTES,
    sampleSeconds: 60,
  };
  let peers = false;
  let soakOption: string | undefined;
  let only: Section[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--quick') args.quick = true;
    else if (a === '--cpu-prof') args.cpuProf = true;
    else if (a === '--peers') peers = true;
    else if (a === '--nats-server' || a.startsWith('--nats-server=')) {
      const path = a === '--nats-server' ? argv[++i] : a.slice('--nats-server='.length);
      if (!path) throw new Error('--nats-server takes the path of a nats-server binary');
      args.servers.push(resolve(path));
    } else if (a.startsWith('--servers=')) {
      throw new Error('--servers= is resolved by `npm run bench` (scripts/bench.mjs), which finds or fetches each server; here, give --nats-server PATH once per server');
    } else if (a.startsWith('--nice=')) {
      const n = Number(a.slice('--nice='.length));
      if (!Number.isInteger(n) || n < -20 || n > 19) throw new Error(`--nice takes an integer from -20 to 19, got '${a.slice(7)}'`);
      args.nice = n;
    } else if (a.startsWith('--apply-keys=')) {
      const keys = a.slice('--apply-keys='.length).split(',').filter(Boolean).map(Number);
      if (keys.length === 0 || keys.some((k) => !Number.isInteger(k) || k < 1)) throw new Error(`--apply-keys takes key counts such as 1,1000,100000, got '${a.slice(13)}'`);
      args.applyKeys = keys;
    } else if (a.startsWith('--minutes=')) {
      const v = a.slice('--minutes='.length);
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < 1 || n > MAX_SOAK_MINUTES) throw new Error(`--minutes takes the soak's length in whole minutes, 1 to ${MAX_SOAK_MINUTES}, got '${v}'`);
      args.minutes = n;
      soakOption = '--minutes';
    } else if (a.startsWith('--sample-seconds=')) {
      const v = a.slice('--sample-seconds='.length);
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < 1 || n > 3600) throw new Error(`--sample-seconds takes whole seconds between two soak samples, 1 to 3600, got '${v}'`);
      args.sampleSeconds = n;
      soakOption = '--sample-seconds';
    } else if (a.startsWith('--only=')) {
      const wanted = a.slice('--only='.length).split(',').filter(Boolean);
      const bad = wanted.filter((w) => !(SECTIONS as readonly string[]).includes(w));
      if (bad.length > 0) throw new Error(`--only: unknown section ${bad.join(', ')} (sections: ${SECTIONS.join(', ')})`);
      only = wanted as Section[];
    } else if (a.startsWith('--out=')) args.out = resolve(a.slice('--out='.length));
    else if (a.startsWith('--markdown=')) args.markdown = resolve(a.slice('--markdown='.length));
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (try --help)`);
  }
  args.only = new Set(only ?? DEFAULT_SECTIONS);
  if (peers) args.only.add('peers');
  if (soakOption && !args.only.has('soak')) throw new Error(`${soakOption} is an option of the soak section, which runs only when asked for: add --only=soak`);
  if (args.only.has('soak') && args.minutes * 60 < args.sampleSeconds * 3) {
    throw new Error(`the soak needs at least three samples to compare its thirds: --minutes=${args.minutes} is shorter than three samples of ${args.sampleSeconds} s`);
  }
  return args;
}
