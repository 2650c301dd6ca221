// scripts/nats-server.mjs: where the Debian package comes from (DEBIAN_MIRROR, else this
// machine's apt sources, else a clear error), which suite, the pinned fast path (a local HTTP
// mirror), and the signature check of the signed index against recorded copies of the
// archive's real files. No network.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '../src/index.js';

interface Mirror {
  url: string;
  from: string;
}
interface Verified {
  text: string;
  valid: string[];
  rejected: string[];
}
interface NatsServerScript {
  NEXT_STEP: string;
  DEBIAN_KEYRING: string;
  debianMirrors(opts: { env: NodeJS.ProcessEnv; aptDir: string }): Promise<Mirror[]>;
  ensureNatsServer(opts: {
    env: NodeJS.ProcessEnv;
    aptDir: string;
    suite?: string;
    log?: (line: string) => void;
    pinFile?: string;
    cacheRoot?: string;
  }): Promise<{ bin: string; version: string }>;
  verifyRelease(opts: { inRelease?: Buffer; release?: Buffer; releaseGpg?: Buffer }): Promise<Verified>;
  dearmor(armor: string): Buffer;
  splitPackets(buf: Buffer): Buffer[];
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
    const err = await script.ensureNatsServer({ env: {}, aptDir: apt, suite: 'jetactor-test-none', log: () => undefined }).catch((e: unknown) => e);
    expect(String(err)).toMatch(/DEBIAN_MIRROR is not set and this machine's apt sources .* name no Debian archive/);
    // The last line says what to do next.
    expect(String(err).split('\n').at(-1)).toBe(script.NEXT_STEP);
    expect(script.NEXT_STEP).toMatch(/NATS_SERVER_BIN=.*package manager.*NATS_SERVER_SUITE=testing/);
  });

  it('takes only a suite name that is safe in a URL and a path', async () => {
    for (const suite of ['../stable', 'stable/x', 'Stable', '']) {
      await expect(script.ensureNatsServer({ env: {}, aptDir: '/nonexistent', suite })).rejects.toThrow(/--suite must be a Debian suite or codename/);
    }
    await expect(script.ensureNatsServer({ env: { NATS_SERVER_SUITE: 'a b' }, aptDir: '/nonexistent' })).rejects.toThrow(/NATS_SERVER_SUITE must be/);
  });
});

// Copies of the archive's real files as served on 2026-12-06: stable's InRelease (three good
// signatures), stable's Release with a Release.gpg whose three signatures are all stale (made
// 2026-09-12 over an older Release: what broke every bootstrap that day), testing's Release
// with a Release.gpg of two good signatures.
const fixtures = join(repoRoot, 'packages', 'testing', 'tests', 'fixtures', 'debian-2026-12-06');
const fixture = (name: string) => readFile(join(fixtures, name));
const canVerify = existsSync('/usr/bin/gpgv') && existsSync(script.DEBIAN_KEYRING);

/** `buf` with the byte at `at` replaced by `by`. */
function tamper(buf: Buffer, at: number, by: string): Buffer {
  const copy = Buffer.from(buf);
  copy[at] = by.charCodeAt(0);
  return copy;
}

describe.skipIf(!canVerify)('the signature check of the signed index (gpgv, Debian archive keyring)', () => {
  it("accepts today's stable InRelease, and the text it returns is the signed Release", async () => {
    const verified = await script.verifyRelease({ inRelease: await fixture('stable-InRelease') });
    expect(verified.valid).toHaveLength(3);
    expect(verified.valid.join('\n')).toMatch(/13\/trixie/);
    expect(verified.rejected).toEqual([]);
    expect(verified.text).toBe((await fixture('stable-Release')).toString('utf8'));
  });

  it("accepts testing's Release with its Release.gpg", async () => {
    const verified = await script.verifyRelease({ release: await fixture('testing-Release'), releaseGpg: await fixture('testing-Release.gpg') });
    expect(verified.valid).toHaveLength(2);
    expect(verified.text).toMatch(/^Codename: forky$/m);
  });

  it('accepts a Release.gpg that holds a stale signature beside a good one, and reports the stale one', async () => {
    // The stale bookworm signature from stable's Release.gpg put in front of testing's two.
    const stale = script.splitPackets(script.dearmor((await fixture('stable-Release.gpg')).toString('utf8')))[0];
    const good = script.dearmor((await fixture('testing-Release.gpg')).toString('utf8'));
    const verified = await script.verifyRelease({ release: await fixture('testing-Release'), releaseGpg: Buffer.concat([stale as Buffer, good]) });
    expect(verified.valid).toHaveLength(2);
    expect(verified.rejected).toEqual([expect.stringMatching(/^BAD signature by Debian Archive Automatic Signing Key \(12\/bookworm\)/)]);
  });

  it("rejects today's stable Release.gpg: none of its signatures is valid", async () => {
    await expect(script.verifyRelease({ release: await fixture('stable-Release'), releaseGpg: await fixture('stable-Release.gpg') })).rejects.toThrow(
      /no valid signature by a key of .*BAD signature by .*12\/bookworm.*BAD signature by .*13\/trixie/,
    );
  });

  it('rejects a tampered InRelease and a tampered Release', async () => {
    const inRelease = await fixture('stable-InRelease');
    // One hex digit of a checksum changed, well inside the signed text.
    const at = inRelease.indexOf('main/binary-amd64/Packages.xz') - 30;
    await expect(script.verifyRelease({ inRelease: tamper(inRelease, at, inRelease[at] === 0x30 ? '1' : '0') })).rejects.toThrow(/no valid signature/);
    const release = await fixture('testing-Release');
    await expect(script.verifyRelease({ release: tamper(release, 20, 'X'), releaseGpg: await fixture('testing-Release.gpg') })).rejects.toThrow(
      /no valid signature/,
    );
  });

  it('rejects a file without a signature', async () => {
    await expect(script.verifyRelease({ inRelease: await fixture('stable-Release') })).rejects.toThrow(/not a cleartext-signed file/);
  });
});

/** A .deb whose usr/sbin/nats-server is a script that reports `version`. */
async function fakeDeb(root: string, version: string): Promise<Buffer> {
  const run = promisify(execFile);
  await mkdir(join(root, 'data', 'usr', 'sbin'), { recursive: true });
  await mkdir(join(root, 'control'), { recursive: true });
  await writeFile(join(root, 'data', 'usr', 'sbin', 'nats-server'), `#!/bin/sh\necho "nats-server: v${version}"\n`, { mode: 0o755 });
  await writeFile(join(root, 'control', 'control'), `Package: nats-server\nVersion: ${version}-1\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: test\n`);
  await run('tar', ['-czf', join(root, 'data.tar.gz'), '-C', join(root, 'data'), '.']);
  await run('tar', ['-czf', join(root, 'control.tar.gz'), '-C', join(root, 'control'), '.']);
  const member = (name: string, content: Buffer) => {
    const header = `${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(content.length).padEnd(10)}\`\n`;
    return Buffer.concat([Buffer.from(header, 'latin1'), content, content.length % 2 ? Buffer.from('\n') : Buffer.alloc(0)]);
  };
  return Buffer.concat([
    Buffer.from('!<arch>\n'),
    member('debian-binary', Buffer.from('2.0\n')),
    member('control.tar.gz', await readFile(join(root, 'control.tar.gz'))),
    member('data.tar.gz', await readFile(join(root, 'data.tar.gz'))),
  ]);
}

describe('the pinned package', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((done) => (server ? server.close(done) : done(undefined)));
    server = undefined;
  });

  /** A mirror on 127.0.0.1 serving `files` (path → content), 404 for anything else. */
  async function mirror(files: Record<string, Buffer>): Promise<{ url: string; asked: string[] }> {
    const asked: string[] = [];
    server = createServer((req, res) => {
      const path = (req.url ?? '').replace(/^\/debian\//, '');
      asked.push(path);
      const body = files[path];
      res.writeHead(body ? 200 : 404).end(body);
    });
    await new Promise<void>((done) => server?.listen(0, '127.0.0.1', done));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian`, asked };
  }

  /** A pin naming `deb` for this machine's architecture, written into the temp dir. */
  async function pinFor(root: string, deb: Buffer, sha256 = createHash('sha256').update(deb).digest('hex')): Promise<{ pinFile: string; filename: string }> {
    const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
    const filename = `pool/main/n/nats-server/nats-server_2.10.99-1_${arch}.deb`;
    const pinFile = join(root, 'pin.json');
    const pin = { default: 'stable', suites: { stable: { codename: 'trixie', version: '2.10.99-1', packages: { [arch]: { filename, size: deb.length, sha256 } } } } };
    await writeFile(pinFile, JSON.stringify(pin));
    return { pinFile, filename };
  }

  it('is trusted when its SHA-256 matches the pin: no index and no signature file is read; then it is cached', async () => {
    dir = await tempDir('jetactor-pin-');
    const deb = await fakeDeb(join(dir.path, 'build'), '2.10.99');
    const { pinFile, filename } = await pinFor(dir.path, deb);
    const { url, asked } = await mirror({ [filename]: deb });
    const cacheRoot = join(dir.path, 'cache');
    const got = await script.ensureNatsServer({ env: { DEBIAN_MIRROR: url }, aptDir: '/nonexistent', pinFile, cacheRoot, log: () => undefined });
    expect(got.version).toBe('2.10.99');
    expect(got.bin).toBe(join(cacheRoot, 'stable', `2.10.99-${process.arch === 'arm64' ? 'arm64' : 'amd64'}`, 'nats-server'));
    expect(asked).toEqual([filename]);
    // The second run asks nothing.
    expect(await script.ensureNatsServer({ env: { DEBIAN_MIRROR: url }, aptDir: '/nonexistent', pinFile, cacheRoot, log: () => undefined })).toEqual(got);
    expect(asked).toEqual([filename]);
  });

  it('is refused when its SHA-256 does not match the pin; nothing is cached', async () => {
    dir = await tempDir('jetactor-pin-');
    const deb = await fakeDeb(join(dir.path, 'build'), '2.10.99');
    const { pinFile, filename } = await pinFor(dir.path, deb, 'ab'.repeat(32));
    const { url } = await mirror({ [filename]: deb });
    const cacheRoot = join(dir.path, 'cache');
    const err = await script.ensureNatsServer({ env: { DEBIAN_MIRROR: url }, aptDir: '/nonexistent', pinFile, cacheRoot, log: () => undefined }).catch((e: unknown) => e);
    expect(String(err)).toMatch(/checksum mismatch for .*nats-server_2\.10\.99-1_.*expected sha256 (ab){32}, got [0-9a-f]{64}; refusing it/);
    expect(String(err).split('\n').at(-1)).toBe(script.NEXT_STEP);
    expect(existsSync(cacheRoot)).toBe(false);
  });

  it('gone from the archive: says loudly that the pin is stale and how to refresh it, then asks the signed index', async () => {
    dir = await tempDir('jetactor-pin-');
    const deb = await fakeDeb(join(dir.path, 'build'), '2.10.99');
    const { pinFile, filename } = await pinFor(dir.path, deb);
    // The mirror has the real, signed InRelease of stable, which is not the pinned codename's.
    const { url, asked } = await mirror({ 'dists/trixie/InRelease': await fixture('stable-InRelease') });
    const lines: string[] = [];
    const err = await script
      .ensureNatsServer({ env: { DEBIAN_MIRROR: url }, aptDir: '/nonexistent', pinFile, cacheRoot: join(dir.path, 'cache'), log: (l) => lines.push(l) })
      .catch((e: unknown) => e);
    expect(lines.join('\n')).toMatch(/WARNING: the pinned nats-server 2\.10\.99-1 .* is gone from the archive.*npm run nats-server -- --update-pin/);
    expect(asked.slice(0, 2)).toEqual([filename, 'dists/trixie/InRelease']);
    if (canVerify) {
      // Its signature and its codename are good; the package index it names is not served here.
      expect(String(err)).toMatch(/Packages\.(xz|gz): HTTP 404|cannot download .*Packages/);
    }
    expect(String(err).split('\n').at(-1)).toBe(script.NEXT_STEP);
  });
});
