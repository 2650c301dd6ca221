#!/usr/bin/env node
// `npm run test:browser`: the dashboard in headless Chromium (Debian's `chromium` package,
// driven by playwright-core; no browser download). Bootstraps like `npm test`
// (dependencies, nats-server, build), then runs packages/gateway/browser/*.browser.test.ts.
// Not part of `npm test`, so that needs no Chromium. Last line: `browser: N passed, N failed`.

import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { bootstrap, localBin, repoRoot, runInherit, say } from './lib/bootstrap.mjs';

const resultsFile = join(repoRoot, 'test-results', 'browser.json');

/** Chromium: `CHROMIUM_BIN`, else /usr/bin/chromium, else `chromium` on PATH. */
function findChromium() {
  const executable = (/** @type {string} */ p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (process.env.CHROMIUM_BIN) return executable(process.env.CHROMIUM_BIN) ? process.env.CHROMIUM_BIN : undefined;
  if (executable('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'chromium'))) return join(dir, 'chromium');
  }
  return undefined;
}

async function main() {
  const chromium = findChromium();
  if (!chromium) {
    console.error(
      [
        'test:browser: no Chromium found (looked at $CHROMIUM_BIN, /usr/bin/chromium and PATH).',
        "Install Debian's package, then run this again:",
        '',
        '    apt-get update && apt-get install -y chromium      (prefix each with sudo unless you are root)',
        '',
        '(or point CHROMIUM_BIN at a Chromium or Chrome binary). No browser is downloaded by this project.',
      ].join('\n'),
    );
    console.log('browser: 0 passed, 1 failed');
    return 1;
  }
  const { natsServer } = await bootstrap();
  process.env.NATS_SERVER_BIN = natsServer?.bin;
  process.env.CHROMIUM_BIN = chromium;

  mkdirSync(join(repoRoot, 'test-results'), { recursive: true });
  rmSync(resultsFile, { force: true });
  const [vitest, pre] = localBin('vitest');
  const args = [...pre, 'run', '--config', 'packages/gateway/vitest.browser.config.mts', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsFile}`, ...process.argv.slice(2)];
  say(`vitest ${args.slice(pre.length).join(' ')} (Chromium: ${chromium})`);
  const code = await runInherit(vitest, args);

  let passed = 0;
  let failed = 0;
  if (existsSync(resultsFile)) {
    /** @type {unknown} */
    const parsed = JSON.parse(readFileSync(resultsFile, 'utf8'));
    const report = /** @type {{ numPassedTests?: number, numFailedTests?: number, numPendingTests?: number, numTodoTests?: number, testResults?: { status?: string, assertionResults?: { status?: string }[] }[] }} */ (parsed);
    passed = report.numPassedTests ?? 0;
    const failedFiles = (report.testResults ?? []).filter(
      (f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'),
    ).length;
    failed = (report.numFailedTests ?? 0) + failedFiles;
  } else {
    console.error(`vitest wrote no results to ${resultsFile} (exit code ${code})`);
    failed = 1;
  }
  console.log(`browser: ${passed} passed, ${failed} failed`);
  return code !== 0 || failed > 0 || passed === 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`test:browser: ${err instanceof Error ? err.message : String(err)}`);
    console.log('browser: 0 passed, 1 failed');
    process.exitCode = 1;
  },
);
