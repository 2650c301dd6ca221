#!/usr/bin/env node
// `npm test`: bootstrap (dependencies, nats-server, build), lint and typecheck, then every
// Vitest project. Extra arguments go to vitest: `npm test -- packages/gateway`.
// The last line printed is `N passed, N failed` (`, N skipped` when any were skipped).

import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bootstrap, localBin, nxEnv, repoRoot, runInherit, say } from './lib/bootstrap.mjs';

const resultsFile = join(repoRoot, 'test-results', 'vitest.json');

async function main() {
  const { natsServer } = await bootstrap();
  // Every test process finds the server binary here (see @jetactor/testing natsServerBin).
  process.env.NATS_SERVER_BIN = natsServer?.bin;

  say('lint and typecheck (nx run-many -t lint typecheck)');
  const [nx, nxPre] = localBin('nx');
  const checks = await runInherit(nx, [...nxPre, 'run-many', '-t', 'lint', 'typecheck'], { env: nxEnv });
  if (checks !== 0) {
    console.error(`lint/typecheck failed (exit code ${checks}); no tests were run`);
    return 1;
  }

  mkdirSync(join(repoRoot, 'test-results'), { recursive: true });
  rmSync(resultsFile, { force: true });
  const [vitest, vitestPre] = localBin('vitest');
  const vitestArgs = [...vitestPre, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsFile}`, ...process.argv.slice(2)];
  say(`vitest ${vitestArgs.slice(vitestPre.length).join(' ')}`);
  const code = await runInherit(vitest, vitestArgs);

  const counts = readCounts();
  const passed = counts?.passed ?? 0;
  const failed = counts?.failed ?? 0;
  const skipped = counts?.skipped ?? 0;
  if (!counts) console.error(`vitest wrote no results to ${resultsFile} (exit code ${code})`);
  if (counts && counts.failedFiles > 0) {
    console.error(`${counts.failedFiles} test file(s) failed outside any test (import error or failing hook); each counted as one failure`);
  }
  if (passed + failed === 0) console.error('no test ran');
  else if (code !== 0 && failed === 0) console.error(`vitest exited with code ${code} although every test passed (an unhandled error?)`);
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  return code !== 0 || failed > 0 || passed === 0 ? 1 : 0;
}

/** Test counts from Vitest's JSON report (Jest's format), or undefined if unreadable. */
function readCounts() {
  if (!existsSync(resultsFile)) return undefined;
  try {
    /** @type {unknown} */
    const parsed = JSON.parse(readFileSync(resultsFile, 'utf8'));
    const report = /** @type {{ numPassedTests?: number, numFailedTests?: number, numPendingTests?: number, numTodoTests?: number, testResults?: { status?: string, assertionResults?: { status?: string }[] }[] }} */ (parsed);
    // A file that fails before or outside its tests (import error, beforeAll) has a failed
    // status but may have no failed test: count it once so the total cannot look green.
    const failedFiles = (report.testResults ?? []).filter(
      (f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'),
    ).length;
    return {
      passed: report.numPassedTests ?? 0,
      failed: (report.numFailedTests ?? 0) + failedFiles,
      skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
      failedFiles,
    };
  } catch (err) {
    console.error(`cannot read ${resultsFile}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`npm test: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
