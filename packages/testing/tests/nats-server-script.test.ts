// scripts/nats-server.mjs: where the Debian package comes from (DEBIAN_MIRROR, else this
// machine's apt sources, else a clear error) and which suite. No network: only the choice
// of mirror is tested here; fetching and verifying runs in every bootstrap.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '../src/index.js';

interface Mirror {
  url: string;
  from: string;
}
interface NatsServerScript {
  debianMirrors(opts: { env: NodeJS.ProcessEnv; aptDir: string }): Promise<Mirror[]>;
  ensureNatsServer(opts: { env: NodeJS.ProcessEnv; aptDir: string; suite?: string; log?: (line: string) => void }): Promise<{ bin: string; version: string }>;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const script = (await import(pathToFileURL(join(repoRoot, 'scripts', 'nats-server.mjs')).href)) as NatsServerScript;

// Documentation addresses (RFC 5737): no real host is named, none is contacted.
const A = 'http://192.0.2.1/debian';
const B = 'https://192.0.2.2/debian';
const C = 'http://192.0.2.3/debian';

let dir: TempDir | undefined;
afterEach(async () => {
  await dir?.remove();
  dir = undefined;
});

/** An apt configuration folder holding `files` (relative path → content). */
async function aptDir(files: Record<string, string>): Promise<string> {
  dir = await tempDir('jetactor-apt-');
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir.path, rel)), { recursive: true });
    await writeFile(join(dir.path, rel), text);
  }
  return dir.path;
}

describe('the Debian mirror of scripts/nats-server.mjs', () => {
  it("comes from the machine's apt sources: one-line and deb822 files, in apt's order, release suites with main only", async () => {
    const apt = await aptDir({
      'sources.list': [
        '# a comment',
        `deb-src ${C} bookworm main`,
        `deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${A}/ bookworm main contrib # trailing comment`,
        `deb ${C}-security bookworm-security main`,
        `deb ${C} bookworm contrib`,
      ].join('\n'),
      'sources.list.d/b.sources': [
        'Types: deb',
        `# ${C}`,
        `URIs: ${B}`,
        '  ' + A,
        'Suites: trixie trixie-updates',
        'Components: main',
        '',
        'Types: deb',
        `URIs: ${C}-security`,
        'Suites: trixie-security',
        'Components: main',
        '',
        'Enabled: no',
        'Types: deb',
        `URIs: ${C}/off`,
        'Suites: trixie',
        'Components: main',
      ].join('\n'),
      'sources.list.d/a.list': `deb cdrom:[Debian 12]/ bookworm main\ndeb file:/srv/debian bookworm main\n`,
      'sources.list.d/c.list.disabled': `deb ${C}/disabled bookworm main\n`,
    });
    expect(await script.debianMirrors({ env: {}, aptDir: apt })).toEqual([
      { url: A, from: join(apt, 'sources.list') },
      { url: B, from: join(apt, 'sources.list.d', 'b.sources') },
    ]);
  });

  it('is DEBIAN_MIRROR alone when that is set', async () => {
    const apt = await aptDir({ 'sources.list': `deb ${A} bookworm main\n` });
    expect(await script.debianMirrors({ env: { DEBIAN_MIRROR: `${C}//` }, aptDir: apt })).toEqual([{ url: C, from: 'DEBIAN_MIRROR' }]);
  });

  it('missing, stops with how to provide a nats-server', async () => {
    const apt = await aptDir({ 'sources.list.d/other.list': `deb ${A} bookworm contrib\n` });
    // A suite nothing is cached for, so that the cache cannot answer first.
    await expect(script.ensureNatsServer({ env: {}, aptDir: apt, suite: 'jetactor-test-none', log: () => undefined })).rejects.toThrow(
      /DEBIAN_MIRROR is not set and this machine's apt sources .* name no Debian archive\. Provide a nats-server: install it with your package manager .* NATS_SERVER_BIN=/,
    );
  });

  it('takes only a suite name that is safe in a URL and a path', async () => {
    for (const suite of ['../stable', 'stable/x', 'Stable', '']) {
      await expect(script.ensureNatsServer({ env: {}, aptDir: '/nonexistent', suite })).rejects.toThrow(/--suite must be a Debian suite or codename/);
    }
    await expect(script.ensureNatsServer({ env: { NATS_SERVER_SUITE: 'a b' }, aptDir: '/nonexistent' })).rejects.toThrow(/NATS_SERVER_SUITE must be/);
  });
});
