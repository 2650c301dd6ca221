/**
 * The examples of the project's Markdown docs (README.md, docs/*.md, the published packages'
 * READMEs), as `docs-examples.test.ts` runs them. The convention (docs/README.md, "Examples"):
 *
 * - ```ts / ```js blocks are type-checked (ts) and executed; a `console.log(x); // shown`
 *   line checks that x prints as shown. `file=<name>` names the file a later block imports.
 * - ```sh / ```bash blocks run line by line, ```console blocks run each `$ ` line and check
 *   the lines under it against what the command printed.
 * - `no-run` in the info string (```ts no-run) marks a block that must not run: a fragment,
 *   or a command that needs another set-up (`npm start`, a fresh folder, a process meant to
 *   run until stopped). Other languages (```text, ```json …) are never run.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** One fenced code block. */
export interface DocBlock {
  /** Path of the Markdown file, relative to the repository. */
  readonly file: string;
  /** Line of the opening fence (1-based). */
  readonly line: number;
  /** The info string's first word (`ts`, `sh`, `console` …), lower-case. */
  readonly lang: string;
  /** The info string's other words (`no-run`, `file=greeter.mjs`). */
  readonly attrs: readonly string[];
  readonly code: string;
}

/** How a block is run. */
export type BlockKind = 'code' | 'shell' | 'console' | 'skip';

const CODE = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs']);
const SHELL = new Set(['sh', 'bash', 'shell']);

/** Every fenced block of `markdown` (fences of three or more backticks). */
export function parseBlocks(file: string, markdown: string): DocBlock[] {
  const blocks: DocBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})\s*(\S*)\s*(.*)$/.exec(lines[i] as string);
    if (!open) continue;
    const fence = open[1] as string;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] as string).startsWith(fence); i++) body.push(lines[i] as string);
    const attrs = (open[3] ?? '').split(/\s+/).filter((a) => a !== '');
    blocks.push({ file, line: start + 1, lang: (open[2] ?? '').toLowerCase(), attrs, code: body.join('\n') });
  }
  return blocks;
}

export function kindOf(block: DocBlock): BlockKind {
  if (block.attrs.includes('no-run')) return 'skip';
  if (CODE.has(block.lang)) return 'code';
  if (SHELL.has(block.lang)) return 'shell';
  if (block.lang === 'console') return 'console';
  return 'skip';
}

/** The `file=` attribute of a block, if any. */
export function fileAttr(block: DocBlock): string | undefined {
  return block.attrs.find((a) => a.startsWith('file='))?.slice('file='.length);
}

/** A command of a shell or console block, with the output the doc shows under it (console only). */
export interface DocCommand {
  readonly line: number;
  readonly command: string;
  readonly expected: readonly string[];
}

/** Joins `\`-continued lines; returns [text, lines consumed]. */
function continued(lines: readonly string[], at: number, first: string): [string, number] {
  let text = first;
  let n = 1;
  while (text.endsWith('\\') && at + n < lines.length) {
    text = `${text.slice(0, -1)}\n${lines[at + n] as string}`;
    n++;
  }
  return [text, n];
}

/** The commands of a shell (every line that is not blank or a comment) or console block (`$ ` lines). */
export function commandsOf(block: DocBlock): DocCommand[] {
  const lines = block.code.split('\n');
  const out: Array<{ line: number; command: string; expected: string[] }> = [];
  for (let i = 0; i < lines.length; ) {
    const raw = lines[i] as string;
    if (block.lang === 'console') {
      if (raw.startsWith('$ ')) {
        const [command, n] = continued(lines, i, raw.slice(2));
        out.push({ line: block.line + 1 + i, command, expected: [] });
        i += n;
        continue;
      }
      if (raw.trim() !== '') out.at(-1)?.expected.push(raw);
      i++;
      continue;
    }
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) {
      i++;
      continue;
    }
    const [command, n] = continued(lines, i, raw);
    out.push({ line: block.line + 1 + i, command, expected: [] });
    i += n;
  }
  return out;
}

/**
 * A matcher for the output a doc shows: `…` stands for any text, and the numbers of `"seq"`,
 * `"revision"` and `"dlqSeq"` for any number (they depend on what ran before on the stream), as
 * does a key made of a shown seq (the order `c1-12` of a checkout at seq 12); the seqs are its
 * capture groups.
 */
export function outputPattern(expected: readonly string[]): RegExp {
  const text = expected.join('\n').trim();
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const seqs = new Set(shownSeqs(expected));
  const source = escaped
    .replace(/(\b[A-Za-z][A-Za-z0-9_]*-)(\d+)\b/g, (all, p: string, n: string) => (seqs.has(Number(n)) ? `${p}\\d+` : all))
    .replace(/…/g, '[\\s\\S]*?')
    .replace(/"seq":\d+/g, '"seq":(\\d+)')
    .replace(/"(revision|dlqSeq)":\d+/g, '"$1":\\d+');
  return new RegExp(`^${source}$`);
}

/** The numbers of `"seq"` in the output a doc shows, in order (the capture groups of {@link outputPattern}). */
export function shownSeqs(expected: readonly string[]): number[] {
  return [...expected.join('\n').matchAll(/"seq":(\d+)/g)].map((m) => Number(m[1]));
}

/**
 * A command with the seqs a doc passes back (`?minSeq=N`, `--min-seq N`, and keys made of a
 * seq such as the order `c1-12` of a checkout at seq 12) replaced by those the stack answered
 * where the doc showed N (`seqs`: shown → answered, from earlier outputs).
 */
export function withSeqs(command: string, seqs: ReadonlyMap<number, number>): string {
  const answered = (all: string, p: string, n: string): string => {
    const actual = seqs.get(Number(n));
    return actual === undefined ? all : `${p}${actual}`;
  };
  return command.replace(/(minSeq=|--min-seq )(\d+)/g, answered).replace(/(\b[A-Za-z][A-Za-z0-9_]*-)(\d+)\b/g, answered);
}

/**
 * Whether a command only reads (a `curl` without `-X`, a `nats req` of a query): the state
 * follows a signal a few milliseconds later, so its output is awaited until it matches.
 */
export function readsOnly(command: string): boolean {
  return (/^curl\s/.test(command) && !/\s-X\s/.test(command)) || /^nats req actors\.query\./.test(command);
}

/** The Markdown files whose examples run: README.md, docs/*.md and the published packages' READMEs. */
export function docFiles(repoRoot: string): string[] {
  const docs = join(repoRoot, 'docs');
  const files = [join(repoRoot, 'README.md'), ...readdirSync(docs).filter((f) => f.endsWith('.md')).sort().map((f) => join(docs, f))];
  for (const pkg of ['actor-runtime', 'gateway', 'cli']) files.push(join(repoRoot, 'packages', pkg, 'README.md'));
  return files.map((f) => relative(repoRoot, f));
}

/** Every block of every doc file, in order. */
export function docBlocks(repoRoot: string): DocBlock[] {
  return docFiles(repoRoot).flatMap((f) => parseBlocks(f, readFileSync(join(repoRoot, f), 'utf8')));
}

/**
 * A code block prepared to run: each `console.log(x); // shown` line becomes a check that x
 * prints (as console.log would print it) as shown.
 */
export function withOutputChecks(code: string): string {
  return code
    .split('\n')
    .map((l) => {
      const m = /^(\s*)console\.log\((.*)\);\s*\/\/\s*(.+)$/.exec(l);
      return m ? `${m[1]}globalThis.__docExample.log((${m[2]}), ${JSON.stringify(m[3])});` : l;
    })
    .join('\n');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as `-`. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Markdown without its fenced blocks (their `#` lines are no headings, their `](…)` no links). */
function prose(markdown: string): string {
  return markdown.replace(/^(`{3,}).*\n[\s\S]*?^\1\s*$/gm, '');
}

/**
 * The links of the doc files that point nowhere: a repository file that does not exist, or an
 * `#anchor` that is no heading of its file. Relative links, and links into this repository on
 * GitHub (what the package READMEs use, so they work on the registry's page), are checked.
 */
export function brokenLinks(repoRoot: string): Array<{ file: string; link: string; target: string }> {
  const files = docFiles(repoRoot);
  const anchors = new Map<string, Set<string>>();
  const anchorsOf = (path: string): Set<string> => {
    let set = anchors.get(path);
    if (!set) {
      const text = prose(readFileSync(join(repoRoot, path), 'utf8'));
      set = new Set([...text.matchAll(/^#+\s+(.*)$/gm)].map((m) => headingAnchor(m[1] as string)));
      anchors.set(path, set);
    }
    return set;
  };
  const broken: Array<{ file: string; link: string; target: string }> = [];
  for (const file of files) {
    for (const m of prose(readFileSync(join(repoRoot, file), 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = m[1] as string;
      let target: string;
      let anchor: string | undefined;
      const github = /^https:\/\/github\.com\/jetactor\/jetactor\/(?:blob|tree)\/main\/([^#]+)(?:#(.*))?$/.exec(link);
      if (github) {
        target = github[1] as string;
        anchor = github[2] === 'readme' ? undefined : github[2];
      } else if (/^[a-z]+:/.test(link)) {
        continue;
      } else {
        const [path = '', hash] = link.split('#');
        target = path === '' ? file : relative(repoRoot, join(repoRoot, file, '..', path));
        anchor = hash;
      }
      if (existsSync(join(repoRoot, target)) && statSync(join(repoRoot, target)).isDirectory()) target = join(target, 'README.md');
      if (!existsSync(join(repoRoot, target))) broken.push({ file, link, target });
      else if (anchor !== undefined && target.endsWith('.md') && !anchorsOf(target).has(anchor)) broken.push({ file, link, target: `${target}#${anchor}` });
    }
  }
  return broken;
}
