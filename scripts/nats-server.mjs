#!/usr/bin/env node
// Finds or fetches the nats-server that `npm start`, `npm test` and the benchmarks run.
//
// Plain Node ESM with builtins only: it runs before `npm ci`.
//
//   node scripts/nats-server.mjs                  prints the binary's absolute path on stdout
//                                                 (progress goes to stderr)
//   node scripts/nats-server.mjs --suite testing  the same for Debian testing's package
//                                                 (NATS_SERVER_SUITE=testing does it for
//                                                 `npm test` and `npm start`)
//   node scripts/nats-server.mjs --update-pin     resolves every pinned suite through its signed
//                                                 index and rewrites scripts/nats-server.pin.json
//
// The server jetactor is tested with is pinned like a lock file: scripts/nats-server.pin.json
// names, per suite (`stable`, `testing`) and architecture, the exact Debian package (codename,
// version, pool file, size, SHA-256). Order of preference:
//   1. NATS_SERVER_BIN, which must be a nats-server >= 2.10 (an error otherwise);
//   2. the cache .cache/nats-server/<suite>/<X.Y.Z>-<arch>/nats-server of the pinned version;
//   3. the pinned .deb, downloaded from DEBIAN_MIRROR or else the Debian archive this machine's
//      apt sources name: a file whose SHA-256 matches the pin is trusted as it is, no signature
//      file is read (the fast path, independent of the archive's index and signatures);
//   4. only when the pinned file is gone from the archive (Debian replaced it): the package of
//      the pinned codename resolved through the signed index, as apt does (InRelease, else
//      Release + Release.gpg, each signature checked on its own with gpgv against the Debian
//      archive keyring; one valid signature is enough, stale ones are reported; then the
//      SHA-256 chain Release -> Packages -> .deb), with a loud note that the pin is stale;
//   5. when nothing can be downloaded: a nats-server >= 2.10 on PATH, with a warning.
// A suite that is not pinned (a codename, `unstable`) always takes the signed index.
// Whatever fails, the last line of the error says what to do next.

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

/** The pin file: which Debian package of nats-server each suite means (see the header). */
export const PIN_FILE = join(repoRoot, 'scripts', 'nats-server.pin.json');
/** The Debian archive keyring that signs the archive's Release files. */
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
/** A Debian suite or codename: it becomes part of a URL and of a cache path. */
const SUITE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const ARCHES = Object.freeze({ x64: 'amd64', arm64: 'arm64' });
const FETCH_TIMEOUT_MS = 120_000;

/** The one line every failure ends with: what to do next. */
export const NEXT_STEP =
  'to go on: set NATS_SERVER_BIN=/path/to/nats-server (>= 2.10), or install nats-server >= 2.10 with your package manager ' +
  '(apt, dnf, brew: it is then found on PATH), or try the other suite (NATS_SERVER_SUITE=testing, or stable)';

/**
 * @typedef {{ filename: string, size: number, sha256: string }} PinnedFile
 * @typedef {{ codename: string, version: string, packages: Record<string, PinnedFile> }} PinnedSuite
 * @typedef {{ default: string, suites: Record<string, PinnedSuite> }} Pin
 */

/** @param {string} file @returns {Promise<Pin>} */
export async function readPin(file = PIN_FILE) {
  /** @type {unknown} */
  const parsed = JSON.parse(await readFile(file, 'utf8'));
  const pin = /** @type {Pin} */ (parsed);
  for (const [suite, entry] of Object.entries(pin.suites ?? {})) {
    for (const [arch, p] of Object.entries(entry.packages ?? {})) {
      if (!/^pool\/[A-Za-z0-9+._/~-]+\.deb$/.test(p.filename ?? '') || p.filename.includes('..') || !/^[0-9a-f]{64}$/.test(p.sha256 ?? '')) {
        throw new Error(`${file}: the ${suite}/${arch} entry needs a pool/... .deb filename and a sha256 of 64 hex digits`);
      }
    }
  }
  return pin;
}

/**
 * Finds a usable nats-server (>= 2.10) or downloads one, and returns where it is.
 *
 * @param {{ log?: (line: string) => void, env?: NodeJS.ProcessEnv, suite?: string, aptDir?: string,
 *   pinFile?: string, cacheRoot?: string, keyring?: string }} [opts]
 *   `log` receives progress lines (default `console.error`); `env` defaults to `process.env`;
 *   `suite` asks for that Debian suite's package whatever NATS_SERVER_BIN holds (default:
 *   NATS_SERVER_SUITE, which NATS_SERVER_BIN overrides, else the pin's default suite);
 *   `aptDir` is where the apt sources are (default `/etc/apt`); `pinFile`, `cacheRoot` and
 *   `keyring` default to the repository's pin, `.cache/nats-server` and Debian's keyring.
 * @returns {Promise<{ bin: string, version: string }>} absolute path and `X.Y.Z` version.
 */
export async function ensureNatsServer({
  log = (line) => console.error(line),
  env = process.env,
  suite: suiteOpt,
  aptDir = '/etc/apt',
  pinFile = PIN_FILE,
  cacheRoot = join(repoRoot, '.cache', 'nats-server'),
  keyring = DEBIAN_KEYRING,
} = {}) {
  const suite = suiteOpt ?? (env.NATS_SERVER_SUITE || undefined);
  if (suite !== undefined && !SUITE_NAME.test(suite)) {
    throw new Error(
      `${suiteOpt === undefined ? 'NATS_SERVER_SUITE' : '--suite'} must be a Debian suite or codename such as stable or testing, got ${JSON.stringify(suite)}`,
    );
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
  try {
    return await fromDebian({ log, env, suite, aptDir, pinFile, cacheRoot, keyring });
  } catch (err) {
    // 5. Nothing could be fetched: a recent enough nats-server on PATH still runs everything.
    const onPath = suite === undefined ? await findOnPath('nats-server', env.PATH ?? '') : undefined;
    if (onPath) {
      try {
        const version = await natsServerVersion(onPath, onPath);
        if (isSupported(version)) {
          log(`warning: ${errorMessage(err).split('\n')[0]}`);
          log(`warning: using nats-server ${version} on PATH (${onPath}) instead of the pinned one`);
          return { bin: onPath, version };
        }
      } catch {
        // not a working nats-server: report the download's failure
      }
    }
    throw new Error(`${errorMessage(err)}\n${NEXT_STEP}`, { cause: err });
  }
}

/**
 * Steps 2-4: the pinned package (cached, or downloaded and checked against the pin), else the
 * package resolved through the signed index.
 *
 * @param {{ log: (line: string) => void, env: NodeJS.ProcessEnv, suite: string | undefined, aptDir: string,
 *   pinFile: string, cacheRoot: string, keyring: string }} opts
 */
async function fromDebian({ log, env, suite, aptDir, pinFile, cacheRoot, keyring }) {
  const arch = ARCHES[/** @type {keyof typeof ARCHES} */ (process.arch)];
  if (process.platform !== 'linux' || !arch) {
    throw new Error(`no Debian package for ${process.platform}/${process.arch} (linux amd64/arm64 only)`);
  }
  const pin = await readPin(pinFile);
  const wanted = suite ?? pin.default;
  const pinnedSuite = pin.suites[wanted];
  const pinned = pinnedSuite?.packages[arch];
  const cacheDir = join(cacheRoot, wanted);

  if (pinned && pinnedSuite) {
    const dir = join(cacheDir, `${upstreamVersion(pinnedSuite.version)}-${arch}`);
    const cached = await cachedBinary(join(dir, 'nats-server'), log);
    if (cached) {
      log(`nats-server ${cached.version} (Debian ${wanted}, pinned ${pinnedSuite.version}) from cache: ${cached.bin}`);
      return cached;
    }
  }
  const mirrors = await debianMirrors({ env, aptDir });
  if (mirrors.length === 0) {
    throw new Error(
      `no nats-server is cached, and nowhere to fetch Debian's package from: DEBIAN_MIRROR is not set and this machine's apt sources ` +
        `(${aptDir}/sources.list, ${aptDir}/sources.list.d/*.list and *.sources) name no Debian archive`,
    );
  }
  const work = await mkdtemp(join(tmpdir(), 'jetactor-nats-server-'));
  try {
    if (pinned && pinnedSuite) {
      const got = await downloadPinned({ mirrors, pinned, log });
      if (got) return await installDeb({ deb: got.deb, url: got.url, arch, cacheDir, work, log });
      // Debian replaced the package: say so loudly, then resolve it as apt would.
      log(
        `WARNING: the pinned nats-server ${pinnedSuite.version} (${pinned.filename}) is gone from the archive; Debian replaced it. ` +
          `Resolving Debian ${pinnedSuite.codename}'s current package through its signed index instead. Refresh the pin: ` +
          '`npm run nats-server -- --update-pin`, then commit scripts/nats-server.pin.json',
      );
      const other = await newestCached(cacheDir, arch, log);
      if (other) {
        log(`nats-server ${other.version} (Debian ${wanted}, resolved earlier) from cache: ${other.bin}`);
        return other;
      }
    } else {
      const cached = await newestCached(cacheDir, arch, log);
      if (cached) {
        log(`nats-server ${cached.version} (Debian ${wanted}, not pinned) from cache: ${cached.bin}`);
        return cached;
      }
    }
    const dist = pinnedSuite?.codename ?? wanted;
    const found = await resolveFromIndex({ mirrors, dist, arch, keyring, log });
    log(`downloading nats-server ${found.version} (${formatSize(found.size)}) from ${found.url}`);
    const deb = await download(found.url);
    verifySha256(found.url, deb, found.sha256);
    return await installDeb({ deb, url: found.url, arch, cacheDir, work, log });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The pinned file from the first mirror that has it. Undefined when every mirror answers 404
 * (the pin is stale); a file that does not match the pin is refused, never used.
 *
 * @param {{ mirrors: { url: string, from: string }[], pinned: PinnedFile, log: (line: string) => void }} opts
 * @returns {Promise<{ deb: Buffer, url: string } | undefined>}
 */
async function downloadPinned({ mirrors, pinned, log }) {
  /** @type {string[]} */
  const failures = [];
  for (const mirror of mirrors) {
    const url = `${mirror.url}/${pinned.filename}`;
    log(`downloading the pinned ${pinned.filename.split('/').pop()} (${formatSize(pinned.size)}) from ${mirror.url} (mirror from ${mirror.from})`);
    let deb;
    try {
      deb = await download(url);
    } catch (err) {
      if (/** @type {{ status?: number }} */ (err).status === 404) continue;
      failures.push(errorMessage(err));
      continue;
    }
    verifySha256(url, deb, pinned.sha256);
    log(`SHA-256 matches the pin (${pinned.sha256.slice(0, 16)}...)`);
    return { deb, url };
  }
  if (failures.length > 0) throw new Error(failures.join('\n'));
  return undefined;
}

/**
 * The nats-server package of `dist` (a codename or suite) for `arch`, resolved through the
 * archive's signed index: the first mirror whose signed Release names that dist.
 *
 * @param {{ mirrors: { url: string, from: string }[], dist: string, arch: string, keyring: string, log: (line: string) => void }} opts
 * @returns {Promise<{ url: string, filename: string, sha256: string, size: number, version: string, codename: string }>}
 */
export async function resolveFromIndex({ mirrors, dist, arch, keyring, log }) {
  /** @type {string[]} */
  const refused = [];
  for (const mirror of mirrors) {
    const base = `${mirror.url}/dists/${dist}`;
    let release;
    try {
      release = await fetchSignedRelease({ base, keyring, log });
    } catch (err) {
      refused.push(errorMessage(err));
      continue;
    }
    const fields = releaseFields(release);
    if (fields.get('Origin') !== 'Debian' || (fields.get('Codename') !== dist && fields.get('Suite') !== dist)) {
      refused.push(`${base}: a signed Release of Origin ${fields.get('Origin')}, Suite ${fields.get('Suite')}, Codename ${fields.get('Codename')}, not Debian's ${dist}`);
      continue;
    }
    const sums = parseReleaseSha256(release);
    const xz = await findOnPath('xz', process.env.PATH ?? '');
    const candidates = [...(xz ? [`main/binary-${arch}/Packages.xz`] : []), `main/binary-${arch}/Packages.gz`];
    const indexPath = candidates.find((p) => sums.has(p));
    if (!indexPath) throw new Error(`${base}/Release lists no ${candidates.join(' or ')}`);
    const indexUrl = `${base}/${indexPath}`;
    log(`fetching the ${fields.get('Codename')} package index ${indexUrl}`);
    const compressed = await download(indexUrl);
    verifySha256(indexUrl, compressed, /** @type {string} */ (sums.get(indexPath)));
    const packages = indexPath.endsWith('.gz') ? gunzipSync(compressed).toString('utf8') : await unxz(compressed, /** @type {string} */ (xz));
    const stanza = findPackageStanza(packages, 'nats-server');
    const filename = stanza?.get('Filename');
    const sha256 = stanza?.get('SHA256');
    if (!stanza || !filename || !sha256 || !filename.startsWith('pool/') || filename.includes('..')) {
      throw new Error(`no usable nats-server entry for ${arch} in ${indexUrl}`);
    }
    return {
      url: `${mirror.url}/${filename}`,
      filename,
      sha256,
      size: Number(stanza.get('Size')),
      version: stanza.get('Version') ?? '?',
      codename: fields.get('Codename') ?? dist,
    };
  }
  throw new Error(`no mirror has a validly signed Debian ${dist}:\n  ${refused.join('\n  ')}`);
}

/**
 * The text of `<base>/InRelease`, else of `<base>/Release` with `<base>/Release.gpg`, once a
 * signature by a key of the keyring verifies it.
 *
 * @param {{ base: string, keyring: string, log: (line: string) => void }} opts
 * @returns {Promise<string>}
 */
async function fetchSignedRelease({ base, keyring, log }) {
  /** @type {string[]} */
  const reasons = [];
  for (const files of [['InRelease'], ['Release', 'Release.gpg']]) {
    let result;
    try {
      const [first, second] = await Promise.all(files.map((f) => download(`${base}/${f}`)));
      result = await verifyRelease(second ? { release: first, releaseGpg: second, keyring } : { inRelease: first, keyring });
    } catch (err) {
      reasons.push(`${base}/${files.join(' + ')}: ${errorMessage(err)}`);
      continue;
    }
    for (const r of result.rejected) log(`note: ${base}/${files.at(-1)} also carries a signature that does not verify (ignored): ${r}`);
    log(`${base}/${files[0]} verified: ${result.valid.join('; ')}`);
    return result.text;
  }
  throw new Error(reasons.join('\n  '));
}

/**
 * Checks a Debian Release file's signatures with gpgv, each signature on its own (gpgv stops
 * at the first bad one of a file: a stale signature beside a good one must not hide it).
 * Accepted when at least one is a valid signature by a key of `keyring`.
 *
 * @param {{ inRelease?: Buffer, release?: Buffer, releaseGpg?: Buffer, keyring?: string }} opts
 *   either `inRelease` (inline-signed), or `release` with its detached `releaseGpg`
 * @returns {Promise<{ text: string, valid: string[], rejected: string[] }>} the signed text,
 *   the valid signatures and the others (each as gpgv names its key)
 */
export async function verifyRelease({ inRelease, release, releaseGpg, keyring = DEBIAN_KEYRING }) {
  const gpgv = await findOnPath('gpgv', process.env.PATH ?? '');
  if (!gpgv) throw new Error('gpgv is not installed: cannot check the signature (install gpgv and debian-archive-keyring)');
  try {
    await access(keyring, fsConstants.R_OK);
  } catch {
    throw new Error(`cannot read the keyring ${keyring} (install debian-archive-keyring)`);
  }
  /** @type {Buffer} */ let data;
  /** @type {Buffer[]} */ let signatures;
  /** @type {string} */ let text;
  if (inRelease) {
    const parsed = parseClearsigned(inRelease.toString('utf8'));
    // A cleartext signature covers the text without the line break before the armor.
    data = Buffer.from(parsed.text, 'utf8');
    text = `${parsed.text}\n`;
    signatures = splitPackets(dearmor(parsed.armor));
  } else if (release && releaseGpg) {
    data = release;
    text = release.toString('utf8');
    signatures = splitPackets(releaseGpg[0] !== undefined && releaseGpg[0] >= 0x80 ? releaseGpg : dearmor(releaseGpg.toString('utf8')));
  } else {
    throw new Error('verifyRelease needs inRelease, or release and releaseGpg');
  }
  if (signatures.length === 0) throw new Error('no signature');
  const work = await mkdtemp(join(tmpdir(), 'jetactor-gpgv-'));
  try {
    const dataFile = join(work, 'data');
    await writeFile(dataFile, data);
    /** @type {string[]} */ const valid = [];
    /** @type {string[]} */ const rejected = [];
    for (const [i, packet] of signatures.entries()) {
      const sigFile = join(work, `sig${i}`);
      await writeFile(sigFile, packet);
      let status;
      try {
        status = await run(gpgv, ['--status-fd', '1', '--keyring', keyring, sigFile, dataFile], { timeout: 30_000 });
      } catch (err) {
        status = /** @type {{ stdout?: string }} */ (err).stdout ?? '';
      }
      const line = (/** @type {string} */ tag) => new RegExp(`^\\[GNUPG:\\] ${tag} (.*)$`, 'm').exec(status)?.[1];
      const good = line('GOODSIG');
      if (line('VALIDSIG') && good) valid.push(`good signature by ${good.replace(/^\S+\s+/, '')}`);
      else {
        const bad = line('BADSIG');
        const missing = line('NO_PUBKEY') ?? line('ERRSIG');
        rejected.push(bad ? `BAD signature by ${bad.replace(/^\S+\s+/, '')}` : missing ? `signature by key ${missing.split(' ')[0]} not in ${keyring}` : 'unreadable signature');
      }
    }
    if (valid.length === 0) throw new Error(`no valid signature by a key of ${keyring} (${rejected.join('; ')})`);
    return { text, valid, rejected };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The signed text (dash-escaping undone) and the armored signature of a cleartext-signed file.
 *
 * @param {string} file
 */
function parseClearsigned(file) {
  const lines = file.replace(/\r\n/g, '\n').split('\n');
  if (lines[0] !== '-----BEGIN PGP SIGNED MESSAGE-----') throw new Error('not a cleartext-signed file');
  const blank = lines.indexOf('');
  const sigAt = lines.indexOf('-----BEGIN PGP SIGNATURE-----');
  if (blank < 1 || sigAt < blank) throw new Error('a cleartext-signed file without a signature');
  const text = lines
    .slice(blank + 1, sigAt)
    .map((l) => (l.startsWith('- ') ? l.slice(2) : l))
    .join('\n');
  return { text, armor: lines.slice(sigAt).join('\n') };
}

/** The bytes of an ASCII-armored OpenPGP block (headers and checksum skipped). @param {string} armor */
export function dearmor(armor) {
  const lines = armor.replace(/\r\n/g, '\n').split('\n');
  const begin = lines.findIndex((l) => /^-----BEGIN PGP [A-Z ]+-----$/.test(l));
  if (begin === -1) throw new Error('no PGP armor');
  const body = [];
  let i = begin + 1;
  while (i < lines.length && lines[i] !== '') i++; // armor headers
  for (i++; i < lines.length; i++) {
    const l = /** @type {string} */ (lines[i]);
    if (l.startsWith('=') || l.startsWith('-----END')) break;
    body.push(l.trim());
  }
  return Buffer.from(body.join(''), 'base64');
}

/**
 * OpenPGP packets of `buf`, each whole (header included): old and new formats (RFC 4880 4.2).
 *
 * @param {Buffer} buf
 * @returns {Buffer[]}
 */
export function splitPackets(buf) {
  const packets = [];
  let off = 0;
  while (off < buf.length) {
    const tag = /** @type {number} */ (buf[off]);
    if ((tag & 0x80) === 0) throw new Error('not an OpenPGP packet');
    let header;
    let length;
    if (tag & 0x40) {
      const b = buf[off + 1] ?? 0;
      if (b < 192) [header, length] = [2, b];
      else if (b < 224) [header, length] = [3, ((b - 192) << 8) + (buf[off + 2] ?? 0) + 192];
      else if (b === 255) [header, length] = [6, buf.readUInt32BE(off + 2)];
      else throw new Error('partial-length OpenPGP packets are not expected in a signature');
    } else {
      const type = tag & 3;
      if (type === 0) [header, length] = [2, buf[off + 1] ?? 0];
      else if (type === 1) [header, length] = [3, buf.readUInt16BE(off + 1)];
      else if (type === 2) [header, length] = [5, buf.readUInt32BE(off + 1)];
      else throw new Error('indeterminate-length OpenPGP packets are not expected in a signature');
    }
    if (off + header + length > buf.length) throw new Error('truncated OpenPGP packet');
    packets.push(buf.subarray(off, off + header + length));
    off += header + length;
  }
  return packets;
}

/** The single-line fields at the top of a Release file. @param {string} text */
function releaseFields(text) {
  /** @type {Map<string, string>} */
  const fields = new Map();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9-]+):\s*(\S.*?)\s*$/.exec(line);
    if (m?.[1] && m[2]) fields.set(m[1], m[2]);
  }
  return fields;
}

/**
 * Unpacks the .deb, checks the binary's version and copies it into `cacheDir` (write, then
 * rename: a concurrent run never sees half a binary).
 *
 * @param {{ deb: Buffer, url: string, arch: string, cacheDir: string, work: string, log: (line: string) => void }} opts
 * @returns {Promise<{ bin: string, version: string }>}
 */
async function installDeb({ deb, url, arch, cacheDir, work, log }) {
  const debFile = join(work, 'nats-server.deb');
  await writeFile(debFile, deb);
  const unpacked = join(work, 'root');
  await mkdir(unpacked, { recursive: true });
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
  if (!extracted) throw new Error(`${url} has neither usr/sbin/nats-server nor usr/bin/nats-server`);
  const version = await natsServerVersion(extracted, `the binary from ${url}`);
  if (!isSupported(version)) throw new Error(`nats-server ${version} at ${url} is too old; need >= ${MIN_VERSION.major}.${MIN_VERSION.minor}`);
  const dir = join(cacheDir, `${version}-${arch}`);
  await mkdir(dir, { recursive: true });
  const bin = join(dir, 'nats-server');
  const partial = `${bin}.partial-${process.pid}`;
  await copyFile(extracted, partial);
  await chmod(partial, 0o755);
  await rename(partial, bin);
  log(`nats-server ${version} cached at ${bin}`);
  return { bin, version };
}

/**
 * Rewrites the pin: every suite it names (or `suites`), resolved through the signed index
 * for amd64 and arm64.
 *
 * @param {{ pinFile?: string, suites?: string[], env?: NodeJS.ProcessEnv, aptDir?: string, keyring?: string, log?: (line: string) => void }} [opts]
 */
export async function updatePin({ pinFile = PIN_FILE, suites, env = process.env, aptDir = '/etc/apt', keyring = DEBIAN_KEYRING, log = (line) => console.error(line) } = {}) {
  const pin = await readPin(pinFile);
  const mirrors = await debianMirrors({ env, aptDir });
  if (mirrors.length === 0) throw new Error('DEBIAN_MIRROR is not set and the apt sources name no Debian archive');
  for (const suite of suites ?? Object.keys(pin.suites)) {
    if (!SUITE_NAME.test(suite)) throw new Error(`not a suite name: ${JSON.stringify(suite)}`);
    /** @type {Record<string, PinnedFile>} */
    const packages = {};
    let codename = suite;
    let version = '';
    for (const arch of Object.values(ARCHES)) {
      const found = await resolveFromIndex({ mirrors, dist: suite, arch, keyring, log });
      if (version && found.version !== version) throw new Error(`${suite}: amd64 has ${version}, ${arch} has ${found.version}; try again later`);
      ({ codename, version } = found);
      packages[arch] = { filename: found.filename, size: found.size, sha256: found.sha256 };
    }
    const before = pin.suites[suite]?.version;
    pin.suites[suite] = { codename, version, packages };
    log(`${suite}: ${codename} nats-server ${version}${before && before !== version ? ` (was ${before})` : before ? ' (unchanged)' : ' (new)'}`);
  }
  await writeFile(pinFile, `${JSON.stringify(pin, null, 2)}\n`);
  log(`wrote ${pinFile}; commit it`);
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

/**
 * Orders X.Y.Z versions (negative if a < b). Not the `semver` package, which the runtime and the
 * test harness use: this script runs before node_modules exists (`node scripts/nats-server.mjs`
 * on a fresh clone, and bootstrap.mjs imports it before `npm ci`), so it imports builtins only.
 * It sees only the plain X.Y.Z names of the cache's folders.
 *
 * @param {string} a @param {string} b
 */
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

/** `2.10.27` of a Debian version such as `2.10.27-1+b2` (or `1:2.10.27-1`). @param {string} debVersion */
function upstreamVersion(debVersion) {
  return debVersion.replace(/^\d+:/, '').replace(/-[^-]*$/, '');
}

/** The binary at `bin` if it is a working, supported nats-server. @param {string} bin @param {(line: string) => void} log */
async function cachedBinary(bin, log) {
  try {
    await access(bin, fsConstants.X_OK);
  } catch {
    return undefined;
  }
  try {
    const version = await natsServerVersion(bin);
    if (isSupported(version)) return { bin, version };
  } catch (err) {
    log(`ignoring cached ${bin}: ${errorMessage(err)}`);
  }
  return undefined;
}

/** Newest working cached binary for this arch under `cacheDir`, if any. @param {string} cacheDir @param {string} arch @param {(line: string) => void} log */
async function newestCached(cacheDir, arch, log) {
  let entries;
  try {
    entries = await readdir(cacheDir);
  } catch {
    return undefined;
  }
  const suffix = `-${arch}`;
  const versions = entries
    .filter((e) => e.endsWith(suffix) && /^\d+\.\d+\.\d+$/.test(e.slice(0, -suffix.length)))
    .map((e) => e.slice(0, -suffix.length))
    .sort((a, b) => compareVersions(b, a));
  for (const version of versions) {
    const found = await cachedBinary(join(cacheDir, `${version}${suffix}`, 'nats-server'), log);
    if (found) return found;
  }
  return undefined;
}

/**
 * @param {string} url
 * @returns {Promise<Buffer>} the body; a failure carries the HTTP `status` when there was one
 */
async function download(url) {
  let res;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'follow' });
  } catch (err) {
    throw new Error(`cannot download ${url}: ${networkDetail(err)}`, { cause: err });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw Object.assign(new Error(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`), { status: res.status });
  }
  try {
    return Buffer.from(await res.arrayBuffer());
  } catch (err) {
    throw new Error(`cannot download ${url}: ${networkDetail(err)}`, { cause: err });
  }
}

/** undici hides the useful part (ENOTFOUND, ECONNREFUSED...) in `cause`. */
function networkDetail(/** @type {unknown} */ err) {
  /** @type {string[]} */
  const parts = [];
  for (let e = err, depth = 0; e && depth < 4; e = /** @type {{ cause?: unknown }} */ (e).cause, depth++) {
    const x = /** @type {{ code?: string, message?: string, name?: string }} */ (e);
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a thrown non-Error (a string) is its own text
    const text = [x.code, x.message ?? String(e)].filter(Boolean).join(' ');
    if (text && !parts.includes(text)) parts.push(text);
  }
  return parts.join(': ') || String(err);
}

/**
 * `path -> sha256` from the SHA256 section of a Release file.
 *
 * @param {string} text
 */
export function parseReleaseSha256(text) {
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
      if (m?.[1] && m[2]) sums.set(m[2], m[1]);
      else if (!/^\s/.test(line)) inSection = false;
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
    // Rough Debian version order, enough to pick between stanzas of one suite.
    if (!best || (fields.get('Version') ?? '').localeCompare(best.get('Version') ?? '', 'en', { numeric: true }) > 0) best = fields;
    at = index.indexOf(`\n${header}`, end);
  }
  return best;
}

/** @param {string} url @param {Buffer} data @param {string} expected */
export function verifySha256(url, data, expected) {
  const got = createHash('sha256').update(data).digest('hex');
  if (got !== expected.toLowerCase()) {
    throw new Error(`checksum mismatch for ${url}: expected sha256 ${expected}, got ${got}; refusing it`);
  }
}

/** @param {Buffer} data @param {string} xz @returns {Promise<string>} */
function unxz(data, xz) {
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
 * execFile as a promise resolving to stdout and stderr; the rejection carries both.
 *
 * @param {string} cmd @param {string[]} args @param {{ timeout?: number }} [opts]
 * @returns {Promise<string>}
 */
function run(cmd, args, opts = {}) {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: opts.timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(/** @type {Error} */ (err), { stdout, stderr }));
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

// CLI: print the path, or rewrite the pin.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const usage = 'usage: node scripts/nats-server.mjs [--suite stable|testing|<codename>] | --update-pin [suite...]';
  try {
    const args = process.argv.slice(2);
    if (args[0] === '--update-pin') {
      await updatePin({ suites: args.length > 1 ? args.slice(1) : undefined });
    } else {
      /** @type {string | undefined} */
      let suite;
      for (let i = 0; i < args.length; i++) {
        const arg = /** @type {string} */ (args[i]);
        if (arg === '--suite' && i + 1 < args.length) suite = args[++i];
        else if (arg.startsWith('--suite=')) suite = arg.slice('--suite='.length);
        else throw new Error(`unknown argument ${JSON.stringify(arg)}; ${usage}`);
      }
      const { bin } = await ensureNatsServer({ suite });
      process.stdout.write(`${bin}\n`);
    }
  } catch (err) {
    console.error(`error: ${errorMessage(err)}`);
    process.exitCode = 1;
  }
}
