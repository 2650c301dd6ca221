#!/usr/bin/env node
// @ts-check
// The public API report of @jetactor/actor-runtime: one file per public entry point under
// packages/actor-runtime/api/, made by API Extractor from the built declarations (dist/), so a
// change of the public surface is a visible diff in review.
//
//   node scripts/api-report.mjs           check: exit 1 (and say which) if a report is out of date
//   node scripts/api-report.mjs --update  write the reports (then commit them)
//
// The `./internal` entry is the project's own and has no report. Needs `npm run build` first.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig, ExtractorLogLevel } from '@microsoft/api-extractor';

const pkg = fileURLToPath(new URL('../packages/actor-runtime/', import.meta.url));

/** Public entry points: report name → declaration file in dist/. */
export const ENTRY_POINTS = {
  'actor-runtime': 'dist/index.d.ts',
  'actor-runtime.client': 'dist/client.d.ts',
  'actor-runtime.worker': 'dist/worker-host.d.ts',
  'actor-runtime.protocol': 'dist/protocol/index.d.ts',
};

/**
 * Runs API Extractor on every entry point; returns the names of the reports that differ from
 * the committed ones (none after an update).
 * @param {{ update: boolean }} options
 */
export function apiReport({ update }) {
  const temp = mkdtempSync(join(tmpdir(), 'jetactor-api-'));
  mkdirSync(join(pkg, 'api'), { recursive: true });
  /** @type {string[]} */
  const changed = [];
  try {
    for (const [name, entry] of Object.entries(ENTRY_POINTS)) {
      const config = ExtractorConfig.prepare({
        configObjectFullPath: join(pkg, 'api-extractor.json'),
        packageJsonFullPath: join(pkg, 'package.json'),
        configObject: {
          projectFolder: pkg,
          mainEntryPointFilePath: join(pkg, entry),
          compiler: { tsconfigFilePath: join(pkg, 'tsconfig.lib.json') },
          apiReport: { enabled: true, reportFileName: name, reportFolder: join(pkg, 'api'), reportTempFolder: temp },
          docModel: { enabled: false },
          dtsRollup: { enabled: false },
          tsdocMetadata: { enabled: false },
          messages: {
            compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
            extractorMessageReporting: {
              default: { logLevel: ExtractorLogLevel.None, addToApiReportFile: true },
              'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
              'ae-internal-missing-underscore': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
              'ae-unresolved-link': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
              // Its notes carry source line numbers: any edit above them would change the report.
              'ae-undocumented': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
            },
            tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None, addToApiReportFile: false } },
          },
        },
      });
      const result = Extractor.invoke(config, { localBuild: update, messageCallback: (m) => { m.handled = [ExtractorLogLevel.None, ExtractorLogLevel.Verbose, ExtractorLogLevel.Info].includes(m.logLevel); } });
      if (result.apiReportChanged) changed.push(name);
      if (result.errorCount > 0) throw new Error(`API Extractor reported ${result.errorCount} error(s) for ${entry}`);
    }
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
  return changed;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const update = process.argv.includes('--update');
  const changed = apiReport({ update });
  if (update) console.log(changed.length > 0 ? `updated: ${changed.join(', ')}` : 'API reports up to date');
  else if (changed.length > 0) {
    console.error(`the public API changed: ${changed.map((n) => `packages/actor-runtime/api/${n}.api.md`).join(', ')}; review and run \`npm run api-report -- --update\``);
    process.exitCode = 1;
  } else console.log('API reports up to date');
}
