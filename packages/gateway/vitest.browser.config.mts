// The dashboard in headless Chromium: `npm run test:browser` (not part of `npm test`,
// whose projects only include tests/**).
import { defineConfig } from 'vitest/config';
import base from '../../vitest.base.mjs';

export default defineConfig({
  ...base,
  root: import.meta.dirname,
  // Replaces base's include (mergeConfig would add to it).
  test: { ...base.test, name: 'gateway-browser', include: ['browser/**/*.browser.test.ts'] },
});
