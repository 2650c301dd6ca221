#!/usr/bin/env node
// The `jetactor` command: runs the built CLI (packages/cli/dist/main.js).
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('jetactor: the CLI is not built yet; run `npm run build` (or `npx nx run cli:build`) first');
  process.exit(1);
}
await import(main.href);
