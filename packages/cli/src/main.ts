#!/usr/bin/env node
// `jetactor` entry point (bin/jetactor.js runs this once built).
import { run } from './program.js';

try {
  await run(process.argv);
} catch (err) {
  console.error(`jetactor: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
