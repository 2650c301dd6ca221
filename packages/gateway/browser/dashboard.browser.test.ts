/**
 * The dashboard as a person sees it: headless Chromium (Debian's `chromium`, driven by
 * playwright-core) on a real nats-server, worker and gateway. Run with
 * `npm run test:browser`; the screenshot goes to test-results/dashboard.png.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWorker, type Worker } from '@jetactor/actor-runtime/worker';
import { registerActorTypes } from '@jetactor/actor-runtime/internal';
import { counter } from '@jetactor/counter-actor';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {} from '../src/plugins/actor-client.js';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const RESULTS = fileURLToPath(new URL('../../../test-results/', import.meta.url));
const SCREENSHOT = join(RESULTS, 'dashboard.png');

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer;
let nc: NatsConnection;
let workers: Worker[] = [];
let gateway: RunningGateway;
let context: BrowserContext;
let page: Page;
let profile: string;

const post = async (path: string, body?: unknown): Promise<Record<string, unknown>> => {
  const res = await fetch(`${gateway.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(res.status, path).toBeLessThan(300);
  return (await res.json()) as Record<string, unknown>;
};

/** The State cell of the dashboard row of `key`, or null while there is none. */
const stateOf = (key: string): Promise<string | null> =>
  page.evaluate((k) => document.querySelector(`#actors-body tr[data-key="${k}"] td.state`)?.textContent ?? null, key);

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  // Two workers, so the dashboard has partitions to share out.
  for (const id of ['worker-a', 'worker-b']) {
    const w = createWorker({ nc, id, actors: [counter], partitions: 8, leaseTtlMs: 2000, heartbeatMs: 300, logger: log });
    await w.start();
    // What runWorker does after start: the gateway learns the counter from this record.
    await registerActorTypes(nc, [counter], { workerId: id });
    workers.push(w);
  }
  await waitFor(() => workers.every((w) => w.settled() && w.ownedPartitions().length === 4), {
    timeoutMs: 20_000,
    message: 'two workers with 4 partitions each',
  });
  gateway = await runGateway({ env: { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1' }, logger: log });
  await gateway.nats.firstConnect;
  await waitFor(() => gateway.app.actorCatalog.get('counter') !== undefined, { timeoutMs: 15_000, message: 'the gateway to learn the counter type' });

  // A few actors before the page opens, so that the table has something to list.
  for (const [key, value] of [
    ['orders', 12],
    ['visits', 1043],
    ['likes', 7],
  ] as const) {
    await post(`/api/actors/counter/${key}/add?wait=true`, value);
  }

  profile = mkdtempSync(join(tmpdir(), 'jetactor-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
});

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await gateway?.close();
  for (const w of workers) await w.stop();
  workers = [];
  await nc?.close();
  await server?.stop();
});

describe('dashboard', () => {
  it('lists the counters and shows a change live after a signal', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${gateway.url}/`);
    await expect.poll(() => page.textContent('#conn-text'), { timeout: 10_000 }).toBe('live');
    await expect.poll(() => stateOf('visits'), { timeout: 10_000 }).toBe('1043');
    expect(await stateOf('orders')).toBe('12');

    // A signal from outside the page: the row changes without a reload.
    const before = performance.now();
    await post('/api/counter/orders/add?value=30');
    await expect.poll(() => stateOf('orders'), { timeout: 5_000, interval: 20 }).toBe('42');
    const seenAfterMs = performance.now() - before;
    expect(seenAfterMs).toBeLessThan(2_000);
    expect(pageErrors).toEqual([]);
  });

  it('signals from its own form, by keyboard', async () => {
    await page.fill('#signal-key', 'signups');
    await page.fill('#signal-op', 'add');
    await page.fill('#signal-input', '5');
    await page.focus('#signal-input');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.textContent('#signal-result'), { timeout: 5_000 }).toMatch(/^Signaled add to counter\/signups \(seq \d+\)\.$/);
    await expect.poll(() => stateOf('signups'), { timeout: 5_000 }).toBe('5');
    // Rows stay in key order.
    const keys = await page.$$eval('#actors-body tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.key));
    expect(keys).toEqual([...keys].sort());
  });

  it("shows an actor's timers when its key is chosen, and follows them", async () => {
    const scheduled = await post('/api/actors/counter/orders/add?delayMs=600000&id=nightly', 1);
    await page.click('#actors-body tr[data-key="orders"] button.key');
    await expect.poll(() => page.textContent('#timers-title'), { timeout: 5_000 }).toBe('Timers of counter/orders');
    const rows = (): Promise<string[][]> =>
      page.$$eval('#timers-body tr', (trs) => trs.map((tr) => [...(tr as HTMLTableRowElement).cells].map((c) => c.textContent ?? '')));
    await expect.poll(async () => (await rows()).map((r) => [r[0], r[2], r[3]]), { timeout: 5_000 }).toEqual([['nightly', 'add 1', 'this actor']]);
    expect(await page.getAttribute('#timers-body time', 'datetime')).toBe(scheduled.at);
    // Cancelled from outside the page: the list follows the actor's next commit.
    await fetch(`${gateway.url}/api/actors/counter/orders/timers/nightly?wait=true`, { method: 'DELETE' });
    await expect.poll(() => page.textContent('#timers-hint'), { timeout: 5_000 }).toBe('No timers.');
    expect(await rows()).toEqual([]);
  });

  it('shows each worker with the partitions it owns and their lag', async () => {
    for (const w of workers) {
      await expect.poll(() => page.locator('.worker h3', { hasText: w.id }).count(), { timeout: 10_000 }).toBe(1);
      const card = page.locator('.worker', { has: page.locator('h3', { hasText: w.id }) });
      const tiles = await card.locator('.tile .p').allTextContents();
      expect(tiles).toEqual(w.ownedPartitions().map((p) => `p${p}`));
      expect(await card.locator('.tile .lag').allTextContents()).toEqual(['0', '0', '0', '0']);
    }
  });

  it('lists a failed operation under recent errors', async () => {
    // A poison operation published raw, as `nats pub` would: it lands in the dead letters.
    nc.publish('actors.counter.likes.add', '"lots"');
    await expect
      .poll(() => page.locator('#errors-list li').allTextContents(), { timeout: 15_000 })
      .toEqual(expect.arrayContaining([expect.stringMatching(/INVALID_INPUT.*counter\/likes add/)]));
  });

  it('is usable by keyboard and labelled', async () => {
    const unlabelled = await page.$$eval('input, select', (inputs) => (inputs as Array<HTMLInputElement | HTMLSelectElement>).filter((i) => i.labels?.length === 0).map((i) => i.id));
    // The type picker lists the registered types (from /api/status), not a free-text box.
    await expect.poll(() => page.$$eval('#type-input option', (os) => (os as HTMLOptionElement[]).map((o) => o.value)), { timeout: 10_000 }).toContain('counter');
    expect(unlabelled).toEqual([]);
    expect(await page.textContent('h1')).toBe('jetactor');
    expect(await page.$$eval('h2', (hs) => hs.map((h) => h.textContent))).toEqual(['Actors', 'Workers', 'Recent errors']);
    // On a fresh load the first Tab reaches the skip link, the next ones the header links.
    await page.reload();
    await expect.poll(() => page.textContent('#conn-text'), { timeout: 10_000 }).toBe('live');
    const focused: Array<string | undefined> = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate(() => (document.activeElement?.tagName === 'SELECT' ? document.activeElement.id : document.activeElement?.textContent?.trim() || document.activeElement?.id)));
    }
    expect(focused).toEqual(['Skip to content', 'API docs', 'Metrics', 'type-input']);
    // The skip link is shown while it has focus... and moves focus to the content.
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    const box = await page.locator('.skip').boundingBox();
    expect(box?.x).toBeGreaterThanOrEqual(0);
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => location.hash)).toBe('#main');
    await expect.poll(() => stateOf('orders'), { timeout: 10_000 }).toBe('42');
  });

  it('saves a screenshot', async () => {
    mkdirSync(RESULTS, { recursive: true });
    // Live traffic first, so the picture shows streamed values with their commit times.
    for (const [key, value] of [
      ['likes', 3],
      ['signups', 2],
      ['visits', 57],
      ['orders', 8],
    ] as const) {
      await post(`/api/counter/${key}/add?value=${value}`);
    }
    await expect.poll(() => stateOf('orders'), { timeout: 5_000 }).toBe('50');
    await expect.poll(() => page.locator('#actors-body td:nth-child(4)', { hasText: '—' }).count(), { timeout: 5_000 }).toBe(0);
    // An actor with timers chosen, so the picture shows them too.
    await post(`/api/actors/counter/visits/reset?cron=${encodeURIComponent('0 0 * * *')}&id=daily-reset`);
    await post('/api/actors/counter/visits/add?delayMs=900000&id=promo', { value: 100 });
    await page.click('#actors-body tr[data-key="visits"] button.key');
    await expect.poll(() => page.locator('#timers-body tr').count(), { timeout: 5_000 }).toBe(2);
    await page.keyboard.press('Escape');
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`dashboard screenshot: ${SCREENSHOT}`);
  });
});
