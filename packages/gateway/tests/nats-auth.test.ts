/**
 * Auth to NATS: the worker process and the gateway connect to nats-servers that require
 * credentials and TLS, configured only through the environment that
 * `connectionOptionsFromEnv` reads. A throwaway CA, server and client certificates are
 * made with `openssl` in a temp dir at test time, and an nkey with `@nats-io/nkeys`.
 *
 * - server A: mutual TLS (`verify: true`) and users: user/password for the gateway, an
 *   nkey for the worker;
 * - server B: TLS (server certificate only) and a token.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { jsonLines, spawnWorker, startNatsServer, tempDir, waitFor, type ManagedProcess, type NatsServer, type TempDir } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { waitForTypes } from './support/registry.js';

const TOKEN = 'nats-auth-gateway-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let dir: TempDir;
let pki: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; otherCa: string };
let cleanup: Array<() => Promise<unknown>> = [];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir.path, stdio: 'pipe' });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all EC P-256, valid one day. */
function makePki(): typeof pki {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=jetactor test CA']);
  openssl(['req', '-x509', ...ec, '-keyout', 'other-ca-key.pem', '-out', 'other-ca.pem', '-days', '1', '-subj', '/CN=some other CA']);
  writeFileSync(join(dir.path, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir.path, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, ext] of [['server', 'server.ext'], ['client', 'client.ext']] as const) {
    openssl(['req', ...ec, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=jetactor test ${name}`]);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', ext]);
  }
  const p = (f: string) => join(dir.path, f);
  return {
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server-key.pem'),
    clientCert: p('client.pem'),
    clientKey: p('client-key.pem'),
    otherCa: p('other-ca.pem'),
  };
}

beforeAll(async () => {
  dir = await tempDir('jetactor-nats-auth-');
  pki = makePki();
});

afterEach(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  cleanup = [];
});

afterAll(async () => {
  await dir?.remove();
});

function tlsBlock(verify: boolean): string {
  return [
    'tls {',
    `  cert_file: ${JSON.stringify(pki.serverCert)}`,
    `  key_file: ${JSON.stringify(pki.serverKey)}`,
    `  ca_file: ${JSON.stringify(pki.ca)}`,
    `  verify: ${verify}`,
    '  timeout: 2',
    '}',
  ].join('\n');
}

async function startServer(config: string): Promise<NatsServer> {
  const server = await startNatsServer({ config });
  cleanup.push(() => server.stop());
  return server;
}

function startWorker(server: NatsServer, env: Record<string, string>): ManagedProcess {
  const worker = spawnWorker({ id: 'w-auth', natsUrl: server.url, partitions: 8, env });
  cleanup.push(() => worker.stop());
  return worker;
}

async function startGateway(server: NatsServer, env: Record<string, string>): Promise<RunningGateway> {
  const gateway = await runGateway({ env: { NATS_URL: server.url, PORT: '0', GATEWAY_AUTH_TOKENS: TOKEN, ...env }, logger: pino({ level: 'silent' }) });
  cleanup.push(() => gateway.close());
  return gateway;
}

/** A call through the gateway that a worker must apply: proves both are connected. */
async function expectRoundTrip(gateway: RunningGateway, key: string): Promise<void> {
  await gateway.nats.firstConnect;
  await waitForTypes(gateway.app, ['counter']);
  const res = await waitFor(
    async () => {
      const r = await gateway.app.inject({ method: 'POST', url: `/api/counter/${key}/add?value=5&wait=true&timeoutMs=2000`, headers: { ...AUTH, 'idempotency-key': `${key}-1` } });
      return r.statusCode === 200 ? r : undefined;
    },
    { timeoutMs: 30_000, message: 'a call through the gateway to be applied by the worker' },
  );
  expect(res.json()).toMatchObject({ seq: expect.any(Number) as number });
  const read = await gateway.app.inject({ method: 'GET', url: `/api/counter/${key}`, headers: AUTH });
  expect(read.json()).toEqual({ value: 5 });
}

describe('NATS credentials and TLS from the environment', () => {
  it('mutual TLS with user/password (gateway) and an nkey (worker)', async () => {
    const nkey = createUser();
    const seedFile = join(dir.path, 'worker.nk');
    writeFileSync(seedFile, new TextDecoder().decode(nkey.getSeed()), { mode: 0o600 });
    const server = await startServer(
      [tlsBlock(true), 'authorization {', '  users: [', '    { user: "gw", password: "gw-Secret-1" }', `    { nkey: "${nkey.getPublicKey()}" }`, '  ]', '}'].join('\n'),
    );
    const tls = { NATS_TLS_CA: pki.ca, NATS_TLS_CERT: pki.clientCert, NATS_TLS_KEY: pki.clientKey };
    const worker = startWorker(server, { ...tls, NATS_NKEY_SEED: seedFile });
    await worker.waitForLine(/"msg":"ownership changed"/, 30_000);
    const gateway = await startGateway(server, { ...tls, NATS_USER: 'gw', NATS_PASS: 'gw-Secret-1' });
    await expectRoundTrip(gateway, 'mtls');
    const connected = jsonLines(worker).find((l) => l.msg === 'connected to NATS');
    expect(connected).toBeDefined();

    // Without the client certificate, with a wrong password, or trusting another CA: refused, and /readyz says so.
    for (const env of [
      { NATS_TLS_CA: pki.ca, NATS_USER: 'gw', NATS_PASS: 'gw-Secret-1' },
      { ...tls, NATS_USER: 'gw', NATS_PASS: 'wrong' },
      { ...tls, NATS_TLS_CA: pki.otherCa, NATS_USER: 'gw', NATS_PASS: 'gw-Secret-1' },
    ]) {
      const since = server.logs.length;
      const refused = await startGateway(server, env);
      await waitFor(() => server.logs.slice(since).some((l) => /TLS handshake error|authorization violation|authentication error/i.test(l)), {
        timeoutMs: 15_000,
        message: `nats-server to refuse the gateway (${Object.keys(env).join(', ')})`,
      });
      expect((await refused.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
      const res = await refused.app.inject({ method: 'POST', url: '/api/counter/x/add', headers: AUTH });
      expect(res.json()).toMatchObject({ error: { code: 'NATS_UNAVAILABLE' } });
      await refused.close();
    }
  }, 90_000);

  it('TLS with a token, verifying the server against the CA', async () => {
    const server = await startServer([tlsBlock(false), 'authorization {', '  token: "nats-Token-2"', '}'].join('\n'));
    const env = { NATS_TLS_CA: pki.ca, NATS_TOKEN: 'nats-Token-2' };
    const worker = startWorker(server, env);
    await worker.waitForLine(/"msg":"ownership changed"/, 30_000);
    const gateway = await startGateway(server, env);
    await expectRoundTrip(gateway, 'token');

    // A worker without the token does not get in.
    const intruder = spawnWorker({ id: 'w-intruder', natsUrl: server.url, partitions: 8, env: { NATS_TLS_CA: pki.ca } });
    cleanup.push(() => intruder.stop());
    await waitFor(() => intruder.lines.some((l) => /authorization violation/i.test(l)) || !intruder.running, {
      timeoutMs: 15_000,
      message: 'the worker without a token to be refused',
    });
    expect(intruder.lines.some((l) => /ownership changed/.test(l))).toBe(false);
  }, 90_000);
});
