#!/usr/bin/env node
// Finds or fetches a nats-server >= 2.10 for `npm start`, `npm test` and the benchmarks.
//
// Plain Node ESM with builtins only: it runs before `npm ci`.
//
//   node scripts/nats-server.mjs                  prints the binary's absolute path on stdout
//                                                 (progress goes to stderr)
//   node scripts/nats-server.mjs --suite testing  the same for Debian testing's package
//                                                 (NATS_SERVER_SUITE=testing does it for
//                                                 `npm test` and `npm start`)
//
// Order of preference:
//   1. NATS_SERVER_BIN, which must be a nats-server >= 2.10 (an error otherwise);
//   2. `nats-server` on PATH, if it is >= 2.10 (otherwise it is passed over);
//   3. the cache .cache/nats-server/<suite>/<version>-<arch>/nats-server under the repo root;
//   4. the official Debian package of the suite (default `stable`), downloaded from
//      DEBIAN_MIRROR or else from the Debian archive this machine's apt sources name
//      (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list and *.sources); with neither,
//      it stops and says how to provide a nats-server. The Release file's signature is
//      checked with gpgv when gpgv and debian-archive-keyring are installed, the package
//      index against the SHA256 in Release, the .deb against the SHA256 in the index; the
//      binary (usr/sbin/nats-server) is unpacked and copied into the cache (write, then rename).
// A suite asked for with --suite or NATS_SERVER_SUITE skips 2 (and --suite skips 1 too): you
// get that suite's package. Delete .cache/nats-server to pick up a newer Debian release.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

/** Repository root (this file lives in `<root>/scripts`). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Lowest nats-server version the project supports (stream subject transforms). */
export const MIN_VERSION = Object.freeze({ major: 2, minor: 10 });

/** The suite fetched unless another is asked for. */
export const DEFAULT_SUITE = 'stable';
/** A Debian suite or codename: it becomes part of a URL and of a cache path. */
const SUITE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const ARCHES = Object.freeze({ x64: 'amd64', arm64: 'arm64' });
const FETCH_TIMEOUT_MS = 120_000;

/**
 * Finds a usable nats-server (>= 2.10) or downloads one, and returns where it is.
 *
 * @param {{ log?: (line: string) => void, env?: NodeJS.ProcessEnv, suite?: string, aptDir?: string }} [opts]
 *   `log` receives progress lines (default `console.error`); `env` defaults to `process.env`;
 *   `suite` asks for that Debian suite's package whatever NATS_SERVER_BIN and PATH hold
 *   (default: NATS_SERVER_SUITE, which NATS_SERVER_BIN overrides, else `stable` after
 *   NATS_SERVER_BIN and PATH); `aptDir` is where the apt sources are (default `/etc/apt`).
 * @returns {Promise<{ bin: string, version: string }>} absolute path and `X.Y.Z` version.
 */
export async function ensureNatsServer({ log = (line) => console.error(line), env = process.env, suite: suiteOpt, aptDir = '/etc/apt' } = {}) {
  const suite = suiteOpt ?? (env.NATS_SERVER_SUITE || undefined);
  if (suite !== undefined && !SUITE_NAME.test(suite)) {
    throw new Error(`${suiteOpt === undefined ? 'NATS_SERVER_SUITE' : '--suite'} must be a Debian suite or codename such as stable or testing, got ${JSON.stringify(suite)}`);
  }
  // 1. An explicit choice must work: no silent fallback.
  const fromEnv = suiteOpt === undefined ? env.NATS_SERVER_BIN : undefined;
  if (fromEnv) {
    const bin = resolve(fromEnv);
    const version = await natsServerVersion(bin, `NATS_SERVER_BIN=${fromEnv}`);
    if (!isSupported(version)) {
      throw new Error(`nats-server ${version} at ${bin} is too old; need >= ${MIN_VERSION.major}.${MIN_VERSION.minor} (from NATS_SERVER_BIN)`);
    }
    log(`nats-server ${version} from NATS_SERVER_BIN: ${bin}`);
    return { bin, version };
  }

  // 2. PATH: use it when it is recent enough, otherwise fall through.
  const onPath = suite === undefined ? await findOnPath('nats-server', env.PATH ?? '') : undefined;
  if (onPath) {
    try {
      const version = await natsServerVersion(onPath, onPath);
      if (isSupported(version)) {
        log(`nats-server ${version} on PATH: ${onPath}`);
        return { bin: onPath, version };
      }
      log(`nats-server ${version} at ${onPath} is too old; need >= ${MIN_VERSION.major}.${MIN_VERSION.minor}; looking further`);
    } catch (err) {
      log(`ignoring ${onPath} on PATH: ${errorMessage(err)}`);
    }
  }

  const arch = ARCHES[/** @type {keyof typeof ARCHES} */ (process.arch)];
  if (process.platform !== 'linux' || !arch) {
    throw new Error(
      `unsupported platform ${process.platform}/${process.arch} for the automatic download (Debian packages, linux amd64/arm64 only); ` +
        `install nats-server >= ${MIN_VERSION.major}.${MIN_VERSION.minor} on PATH or set NATS_SERVER_BIN`,
    );
  }

  // 3. The cache: one folder per suite (stable's also where it was before suites, at the top).
  const wanted = suite ?? DEFAULT_SUITE;
  const cacheRoot = join(repoRoot, '.cache', 'nats-server');
  const cacheDir = join(cacheRoot, wanted);
  const cached = (await findCached(cacheDir, arch, log)) ?? (wanted === DEFAULT_SUITE ? await findCached(cacheRoot, arch, log) : undefined);
  if (cached) {
    log(`nats-server ${cached.version} (Debian ${wanted}) from cache: ${cached.bin}`);
    return cached;
  }

  // 4. The Debian package.
  const mirrors = await debianMirrors({ env, aptDir });
  if (mirrors.length === 0) {
    throw new Error(
      `no nats-server >= ${MIN_VERSION.major}.${MIN_VERSION.minor} found, and nowhere to fetch Debian's package from: DEBIAN_MIRROR is not set and ` +
        `this machine's apt sources (${aptDir}/sources.list, ${aptDir}/sources.list.d/*.list and *.sources) name no Debian archive. Provide a nats-server: ` +
        'install it with your package manager (apt, dnf, brew, ... package nats-server) so that it is on PATH, or set ' +
        'NATS_SERVER_BIN=/path/to/nats-server, or set DEBIAN_MIRROR to the URL of a Debian mirror (the folder that holds dists/ and pool/)',
    );
  }
  return downloadFromDebian({ mirrors, suite: wanted, arch, cacheDir, log });
}

/**
 * Where to fetch Debian packages from: DEBIAN_MIRROR when set (only it), otherwise every
 * http(s) archive of this machine's apt sources that serves `main` for a release suite (not
 * `-security`, `-updates` or `-backports` alone), in the order apt reads them. Whether one is
 * really a Debian archive shows when its Release file is read.
 *
 * @param {{ env?: NodeJS.ProcessEnv, aptDir?: string }} [opts]
 * @returns {Promise<{ url: string, from: string }[]>} mirror URLs without a trailing slash, and where each was found
 */
export async function debianMirrors({ env = process.env, aptDir = '/etc/apt' } = {}) {
  if (env.DEBIAN_MIRROR) return [{ url: env.DEBIAN_MIRROR.replace(/\/+$/, ''), from: 'DEBIAN_MIRROR' }];
  /** @type {string[]} */
  const files = [join(aptDir, 'sources.list')];
  try {
    const dir = join(aptDir, 'sources.list.d');
    // apt reads the files of sources.list.d in alphabetical order; other endings are ignored.
    for (const name of (await readdir(dir)).sort()) {
      if (name.endsWith('.list') || name.endsWith('.sources')) files.push(join(dir, name));
    }
  } catch {
    // no sources.list.d
  }
  /** @type {{ url: string, from: string }[]} */
  const mirrors = [];
  for (const file of files) {
    let text;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    const entries = file.endsWith('.sources') ? parseDeb822Sources(text) : parseOneLineSources(text);
    for (const { types, uris, suites, components } of entries) {
      if (!types.includes('deb') || !components.includes('main') || !suites.some((s) => SUITE_NAME.test(s) && !s.includes('-'))) continue;
      for (const uri of uris) {
        const url = uri.replace(/\/+$/, '');
        if (/^https?:\/\/[^\s/]+/.test(url) && !mirrors.some((m) => m.url === url)) mirrors.push({ url, from: file });
      }
    }
  }
  return mirrors;
}

/** @typedef {{ types: string[], uris: string[], suites: string[], components: string[] }} AptSource */

/**
 * Entries of a one-line-style sources.list: `deb [opt=value ...] uri suite component...`.
 *
 * @param {string} text
 * @returns {AptSource[]}
 */
export function parseOneLineSources(text) {
  /** @type {AptSource[]} */
  const entries = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^(deb|deb-src)\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)$/.exec(line);
    if (!m?.[1] || !m[2] || !m[3]) continue;
    entries.push({ types: [m[1]], uris: [m[2]], suites: [m[3]], components: (m[4] ?? '').trim().split(/\s+/).filter(Boolean) });
  }
  return entries;
}

/**
 * Entries of a deb822-style `.sources` file: stanzas of `Types:`, `URIs:`, `Suites:`,
 * `Components:` (and `Enabled: no` to skip one), separated by blank lines.
 *
 * @param {string} text
 * @returns {AptSource[]}
 */
export function parseDeb822Sources(text) {
  /** @type {AptSource[]} */
  const entries = [];
  for (const stanza of text.split(/\n[ \t]*\n/)) {
    /** @type {Map<string, string>} */
    const fields = new Map();
    let last;
    for (const line of stanza.split('\n')) {
      if (/^\s*#/.test(line)) continue;
      const m = /^([A-Za-z0-9-]+):(.*)$/.exec(line);
      if (m?.[1]) {
        last = m[1].toLowerCase();
        fields.set(last, (m[2] ?? '').trim());
      } else if (last && /^\s/.test(line)) {
        fields.set(last, `${fields.get(last) ?? ''} ${line.trim()}`); // a continuation line
      }
    }
    if (/^(no|false|0)$/i.test(fields.get('enabled') ?? '')) continue;
    const words = (/** @type {string} */ name) => (fields.get(name) ?? '').split(/\s+/).filter(Boolean);
    if (fields.has('types')) entries.push({ types: words('types'), uris: words('uris'), suites: words('suites'), components: words('components') });
  }
  return entries;
}

/**
 * Runs `<bin> --version` and returns the `X.Y.Z` it reports.
 *
 * @param {string} bin
 * @param {string} label how to name the binary in an error
 * @returns {Promise<string>}
 */
export async function natsServerVersion(bin, label = bin) {
  let out;
  try {
    out = await run(bin, ['--version'], { timeout: 15_000 });
  } catch (err) {
    const e = /** @type {{ code?: unknown, killed?: boolean, signal?: string, stdout?: string, stderr?: string }} */ (err);
    const detail = e.killed ? 'timed out' : typeof e.code === 'string' ? e.code : e.signal ? `killed by ${e.signal}` : `exit code ${String(e.code)}`;
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim();
    throw new Error(`${label} is not a working nats-server: \`${bin} --version\` failed (${detail})${output ? `: ${output.split('\n')[0]?.slice(0, 200)}` : ''}`, { cause: err });
  }
  // "nats-server: v2.10.27"; insist on the name so that e.g. `node --version` is refused.
  const m = /nats-server\b[^\n]*?\bv?(\d+\.\d+\.\d+)/.exec(out);
  if (!m?.[1]) {
    throw new Error(`${label} is not a nats-server: \`${bin} --version\` printed ${JSON.stringify(out.trim().split('\n')[0]?.slice(0, 200) ?? '')}`);
  }
  return m[1];
}

/** @param {string} version */
function isSupported(version) {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > MIN_VERSION.major || (major === MIN_VERSION.major && minor >= MIN_VERSION.minor);
}

/** @param {string} a @param {string} b */
function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** @param {string} name @param {string} pathVar */
async function findOnPath(name, pathVar) {
  for (const dir of pathVar.split(delimiter)) {
    if (!dir) continue;
    const candidate = resolve(dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Newest working cached binary for this arch, if any.
 *
 * @param {string} cacheRoot @param {string} arch @param {(line: string) => void} log
 */
async function findCached(cacheRoot, arch, log) {
  let entries;
  try {
    entries = await readdir(cacheRoot);
  } catch {
    return undefined;
  }
  const suffix = `-${arch}`;
  const versions = entries
    .filter((e) => e.endsWith(suffix) && /^\d+\.\d+\.\d+$/.test(e.slice(0, -suffix.length)))
    .map((e) => e.slice(0, -suffix.length))
    .sort((a, b) => compareVersions(b, a));
  for (const dirVersion of versions) {
    const bin = join(cacheRoot, `${dirVersion}${suffix}`, 'nats-server');
    try {
      await access(bin, fsConstants.X_OK);
    } catch {
      continue;
    }
    try {
      const version = await natsServerVersion(bin);
      if (isSupported(version)) return { bin, version };
    } catch (err) {
      log(`ignoring cached ${bin}: ${errorMessage(err)}`);
    }
  }
  return undefined;
}

/**
 * @param {{ mirrors: { url: string, from: string }[], suite: string, arch: string, cacheDir: string, log: (line: string) => void }} opts
 * @returns {Promise<{ bin: string, version: string }>}
 */
async function downloadFromDebian({ mirrors, suite, arch, cacheDir, log }) {
  const work = await mkdtemp(join(tmpdir(), 'jetactor-nats-server-'));
  try {
    // Release: which index files exist and their checksums. The first mirror whose Release
    // for the suite is Debian's is used (an apt source may be another distribution's).
    /** @type {string[]} */
    const refused = [];
    let found;
    for (const candidate of mirrors) {
      const releaseUrl = `${candidate.url}/dists/${suite}/Release`;
      log(`fetching Debian ${suite}'s nats-server package from ${candidate.url} (mirror from ${candidate.from})`);
      try {
        const release = await download(releaseUrl);
        const origin = /^Origin:\s*(.+?)\s*$/m.exec(release.toString('utf8'))?.[1];
        if (candidate.from !== 'DEBIAN_MIRROR' && origin !== 'Debian') {
          refused.push(`${releaseUrl}: Origin ${JSON.stringify(origin ?? '')}, not Debian`);
          continue;
        }
        found = { mirror: candidate.url, release };
        break;
      } catch (err) {
        if (candidate.from === 'DEBIAN_MIRROR') throw err;
        refused.push(errorMessage(err));
      }
    }
    if (!found) {
      throw new Error(
        `none of the apt sources' archives has Debian's ${suite} suite:\n  ${refused.join('\n  ')}\n` +
          'set DEBIAN_MIRROR to a Debian mirror, NATS_SERVER_BIN to a nats-server >= 2.10, or install nats-server with your package manager',
      );
    }
    const { mirror, release } = found;
    const releaseUrl = `${mirror}/dists/${suite}/Release`;
    await verifyReleaseSignature({ mirror, suite, release, work, log });
    const releaseText = release.toString('utf8');
    const codename = /^Codename:\s*(\S+)/m.exec(releaseText)?.[1] ?? suite;
    const sums = parseReleaseSha256(releaseText);

    const gzPath = `main/binary-${arch}/Packages.gz`;
    const xzPath = `main/binary-${arch}/Packages.xz`;
    const indexPath = sums.has(gzPath) ? gzPath : sums.has(xzPath) ? xzPath : undefined;
    if (!indexPath) {
      throw new Error(`${releaseUrl} lists neither ${gzPath} nor ${xzPath} (is ${arch} in Debian ${suite}?)`);
    }
    const indexUrl = `${mirror}/dists/${suite}/${indexPath}`;
    log(`fetching the ${codename} package index ${indexUrl}`);
    const compressed = await download(indexUrl);
    verifySha256(indexUrl, compressed, /** @type {string} */ (sums.get(indexPath)));
    const packages = indexPath.endsWith('.gz') ? gunzipSync(compressed).toString('utf8') : await unxz(compressed);

    const stanza = findPackageStanza(packages, 'nats-server');
    if (!stanza) throw new Error(`no nats-server package for ${arch} in ${indexUrl}`);
    const filename = stanza.get('Filename');
    const sha256 = stanza.get('SHA256');
    if (!filename || !sha256) throw new Error(`the nats-server entry in ${indexUrl} has no Filename or SHA256`);

    const debUrl = `${mirror}/${filename}`;
    log(`downloading nats-server ${stanza.get('Version') ?? '?'} (${formatSize(Number(stanza.get('Size')))}) from ${debUrl}`);
    const deb = await download(debUrl);
    verifySha256(debUrl, deb, sha256);
    const debFile = join(work, 'nats-server.deb');
    await writeFile(debFile, deb);

    const unpacked = join(work, 'root');
    await mkdir(unpacked);
    await unpackDeb(debFile, unpacked, work);
    // Debian ships it in usr/sbin (a daemon); accept usr/bin too in case that changes.
    let extracted;
    for (const rel of ['usr/sbin/nats-server', 'usr/bin/nats-server']) {
      try {
        await access(join(unpacked, rel));
        extracted = join(unpacked, rel);
        break;
      } catch {
        // try the next place
      }
    }
    if (!extracted) throw new Error(`${debUrl} has neither usr/sbin/nats-server nor usr/bin/nats-server`);

    const version = await natsServerVersion(extracted, `the binary from ${debUrl}`);
    if (!isSupported(version)) {
      throw new Error(`nats-server ${version} at ${debUrl} is too old; need >= ${MIN_VERSION.major}.${MIN_VERSION.minor}; install one on PATH or set NATS_SERVER_BIN`);
    }
    const dir = join(cacheDir, `${version}-${arch}`);
    await mkdir(dir, { recursive: true });
    const bin = join(dir, 'nats-server');
    // Copy under a unique name, then rename: a concurrent run never sees half a binary.
    const partial = `${bin}.partial-${process.pid}`;
    await copyFile(extracted, partial);
    await chmod(partial, 0o755);
    await rename(partial, bin);
    log(`nats-server ${version} cached at ${bin}`);
    return { bin, version };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * @param {string} url
 * @returns {Promise<Buffer>}
 */
async function download(url) {
  let res;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'follow' });
  } catch (err) {
    throw new Error(`cannot download ${url}: ${networkDetail(err)} (no network? set DEBIAN_MIRROR to a reachable Debian mirror, or NATS_SERVER_BIN to a nats-server >= 2.10)`, {
      cause: err,
    });
  }
  if (!res.ok) {
    throw new Error(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`);
  }
  try {
    return Buffer.from(await res.arrayBuffer());
  } catch (err) {
    throw new Error(`cannot download ${url}: ${networkDetail(err)}`, { cause: err });
  }
}

/** undici hides the useful part (ENOTFOUND, ECONNREFUSED...) in `cause`. */
function networkDetail(/** @type {unknown} */ err) {
  const parts = [];
  for (let e = err, depth = 0; e && depth < 4; e = /** @type {{ cause?: unknown }} */ (e).cause, depth++) {
    const x = /** @type {{ code?: string, message?: string, name?: string }} */ (e);
    const text = [x.code, x.message ?? String(e)].filter(Boolean).join(' ');
    if (text && !parts.includes(text)) parts.push(text);
  }
  return parts.join(': ') || String(err);
}

/**
 * Checks `Release.gpg` with gpgv against the Debian archive keyring when both are installed.
 * Over plain HTTP the checksums alone only catch corruption; the signature catches tampering.
 *
 * @param {{ mirror: string, suite: string, release: Buffer, work: string, log: (line: string) => void }} opts
 */
async function verifyReleaseSignature({ mirror, suite, release, work, log }) {
  const gpgv = await findOnPath('gpgv', process.env.PATH ?? '');
  let keyring = false;
  try {
    await access(DEBIAN_KEYRING, fsConstants.R_OK);
    keyring = true;
  } catch {
    // not installed
  }
  if (!gpgv || !keyring) {
    log(`warning: not checking the Release signature (needs gpgv and ${DEBIAN_KEYRING}); relying on SHA256 checksums only`);
    return;
  }
  const sigUrl = `${mirror}/dists/${suite}/Release.gpg`;
  const sig = await download(sigUrl);
  const releaseFile = join(work, 'Release');
  const sigFile = join(work, 'Release.gpg');
  await writeFile(releaseFile, release);
  await writeFile(sigFile, sig);
  try {
    const status = await run(gpgv, ['--status-fd', '1', '--keyring', DEBIAN_KEYRING, sigFile, releaseFile], { timeout: 30_000 });
    if (!/^\[GNUPG:\] VALIDSIG /m.test(status) || /^\[GNUPG:\] BADSIG /m.test(status)) {
      throw Object.assign(new Error('no valid signature'), { stdout: status });
    }
  } catch (err) {
    const e = /** @type {{ stdout?: string, stderr?: string }} */ (err);
    const detail = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim() || errorMessage(err);
    throw new Error(`signature check of ${mirror}/dists/${suite}/Release failed (gpgv, ${DEBIAN_KEYRING}):\n${detail}`, { cause: err });
  }
  log('Release signature verified with the Debian archive keyring');
}

/**
 * `path -> sha256` from the SHA256 section of a Release file.
 *
 * @param {string} text
 */
function parseReleaseSha256(text) {
  /** @type {Map<string, string>} */
  const sums = new Map();
  let inSection = false;
  for (const line of text.split('\n')) {
    if (/^SHA256:/.test(line)) {
      inSection = true;
      continue;
    }
    if (inSection) {
      const m = /^\s+([0-9a-f]{64})\s+\d+\s+(\S+)\s*$/.exec(line);
      if (m?.[1] && m[2]) {
        sums.set(m[2], m[1]);
      } else if (!/^\s/.test(line)) {
        inSection = false;
      }
    }
  }
  return sums;
}

/**
 * The fields of `Package: <name>`'s stanza (the highest version if there are several).
 *
 * @param {string} index @param {string} name
 */
function findPackageStanza(index, name) {
  /** @type {Map<string, string> | undefined} */
  let best;
  const header = `Package: ${name}\n`;
  let at = index.startsWith(header) ? 0 : index.indexOf(`\n${header}`);
  while (at !== -1) {
    const start = index[at] === '\n' ? at + 1 : at;
    let end = index.indexOf('\n\n', start);
    if (end === -1) end = index.length;
    /** @type {Map<string, string>} */
    const fields = new Map();
    for (const line of index.slice(start, end).split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m?.[1]) fields.set(m[1], m[2] ?? '');
    }
    if (!best || debVersionGreater(fields.get('Version') ?? '', best.get('Version') ?? '')) best = fields;
    at = index.indexOf(`\n${header}`, end);
  }
  return best;
}

/** Rough Debian version order, enough to pick between stanzas of one suite. */
function debVersionGreater(/** @type {string} */ a, /** @type {string} */ b) {
  return a.localeCompare(b, 'en', { numeric: true }) > 0;
}

/** @param {string} url @param {Buffer} data @param {string} expected */
function verifySha256(url, data, expected) {
  const got = createHash('sha256').update(data).digest('hex');
  if (got !== expected.toLowerCase()) {
    throw new Error(`checksum mismatch for ${url}: expected sha256 ${expected}, got ${got}`);
  }
}

/** @param {Buffer} data */
async function unxz(data) {
  const xz = await findOnPath('xz', process.env.PATH ?? '');
  if (!xz) {
    throw new Error('the Debian index is only available as .xz and the `xz` command is missing; install xz-utils, or set NATS_SERVER_BIN');
  }
  return new Promise((resolvePromise, reject) => {
    const child = execFile(xz, ['-dc'], { encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`xz -dc failed: ${stderr || err.message}`, { cause: err }));
      else resolvePromise(stdout);
    });
    child.stdin?.end(data);
  });
}

/**
 * Unpacks a .deb with dpkg-deb when present, otherwise reads the ar archive here and lets
 * tar extract data.tar.* (no binutils needed).
 *
 * @param {string} debFile @param {string} dest @param {string} work
 */
async function unpackDeb(debFile, dest, work) {
  const dpkgDeb = await findOnPath('dpkg-deb', process.env.PATH ?? '');
  if (dpkgDeb) {
    await run(dpkgDeb, ['-x', debFile, dest], { timeout: 120_000 });
    return;
  }
  const members = parseAr(await readFile(debFile));
  const data = members.find((m) => m.name.startsWith('data.tar'));
  if (!data) throw new Error(`${debFile} has no data.tar.* member`);
  const dataFile = join(work, data.name);
  await writeFile(dataFile, data.content);
  try {
    await run('tar', ['-xf', dataFile, '-C', dest], { timeout: 120_000 });
  } catch (err) {
    const hint = data.name.endsWith('.xz') ? ' (tar needs the `xz` command for data.tar.xz; install xz-utils)' : '';
    throw new Error(`cannot unpack ${data.name}${hint}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * Members of a Unix `ar` archive (the container of a .deb).
 *
 * @param {Buffer} buf
 * @returns {{ name: string, content: Buffer }[]}
 */
function parseAr(buf) {
  if (buf.subarray(0, 8).toString('latin1') !== '!<arch>\n') throw new Error('not a .deb (ar) archive');
  const members = [];
  let off = 8;
  while (off + 60 <= buf.length) {
    const header = buf.subarray(off, off + 60).toString('latin1');
    const name = header.slice(0, 16).trim().replace(/\/$/, '');
    const size = Number.parseInt(header.slice(48, 58).trim(), 10);
    if (!Number.isFinite(size) || header.slice(58, 60) !== '`\n') throw new Error('corrupt ar archive');
    const start = off + 60;
    members.push({ name, content: buf.subarray(start, start + size) });
    off = start + size + (size % 2); // members are 2-byte aligned
  }
  return members;
}

/**
 * execFile as a promise resolving to stdout; the rejection carries stdout/stderr.
 *
 * @param {string} cmd @param {string[]} args @param {{ timeout?: number }} [opts]
 * @returns {Promise<string>}
 */
function run(cmd, args, opts = {}) {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: opts.timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolvePromise(`${stdout}${stderr}`);
    });
  });
}

function formatSize(/** @type {number} */ bytes) {
  return Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : 'size unknown';
}

function errorMessage(/** @type {unknown} */ err) {
  return err instanceof Error ? err.message : String(err);
}

// CLI: print the path.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const args = process.argv.slice(2);
    /** @type {string | undefined} */
    let suite;
    for (let i = 0; i < args.length; i++) {
      const arg = /** @type {string} */ (args[i]);
      if (arg === '--suite' && i + 1 < args.length) suite = args[++i];
      else if (arg.startsWith('--suite=')) suite = arg.slice('--suite='.length);
      else throw new Error(`unknown argument ${JSON.stringify(arg)}; usage: node scripts/nats-server.mjs [--suite stable|testing|<codename>]`);
    }
    const { bin } = await ensureNatsServer({ suite });
    process.stdout.write(`${bin}\n`);
  } catch (err) {
    console.error(`error: ${errorMessage(err)}`);
    process.exitCode = 1;
  }
}
